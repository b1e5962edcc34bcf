"""The one error shape: its handlers, the small exceptions rules raise, the request guards."""

import logging
import uuid
from http import HTTPStatus

from flask import jsonify, request
from sqlalchemy.exc import DataError, IntegrityError, InternalError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

import schemas as s
from models import db

log = logging.getLogger("cinema")

# Methods that change data: write locks, 415 checks, and the errors the OpenAPI document lists.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Endpoints that take a body other than JSON.
NON_JSON_ENDPOINTS = frozenset({"movies.upload_poster", "movies.upload_movie_poster"})


class Refused(Exception):
    """A rule said no: a status, a message for the client, and optionally errors per field."""

    status = 400

    def __init__(self, message: str, errors=None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class Invalid(Refused):
    status = 400


class NotFound(Refused):
    status = 404


class Conflict(Refused):
    status = 409


class UpstreamFailed(Refused):
    """A service the request depends on (the image host) failed; nothing changed."""

    status = 502


def error_body(status: int, message: str, **extra) -> dict:
    return {"status": status, "error": HTTPStatus(status).phrase, "message": message, **extra}


def error_response(status: int, message: str, headers=None, **extra):
    response = jsonify(error_body(status, message, **extra))
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def flatten_validation_messages(messages) -> dict:
    """webargs groups errors by location ({"json": {...}}); clients want fields."""
    errors = {}
    for location, detail in messages.items():
        if isinstance(detail, dict):
            errors.update(detail)
        else:
            errors.setdefault("_schema", []).extend(detail)
    return errors


def http_error(error: HTTPException):
    data = getattr(error, "data", None) or {}
    extra, headers = {}, dict(data.get("headers") or {})
    message = data.get("message") or error.description
    if "messages" in data:  # a webargs validation error
        errors = flatten_validation_messages(data["messages"])
        if errors.get("_schema") == ["Invalid JSON body."] and len(errors) == 1:
            message = "The request body is not valid JSON."
        else:
            message = "The request has invalid fields: " + ", ".join(sorted(errors)) + "."
        extra["errors"] = errors
    elif "errors" in data:
        extra["errors"] = data["errors"]
    if error.code == 404 and not data.get("message") and request.url_rule is None:
        message = f"Nothing here: {request.method} {request.path} is not a route of this API."
    if error.code == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    if error.code == 500:
        original = getattr(error, "original_exception", None)
        return internal_error(original or error)
    return error_response(error.code or 500, message, headers, **extra)


def internal_error(exception):
    error_id = uuid.uuid4().hex[:12]
    log.error("Unhandled error %s", error_id, exc_info=exception)
    db.session.rollback()
    return error_response(
        500, f"Something went wrong on our side (error id {error_id}).", error_id=error_id
    )


# PostgreSQL aborts one of two colliding transactions with these: a lost race, not an outage.
CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
# A server that takes no writes (a standby, or default_transaction_read_only): an outage.
READ_ONLY_SQLSTATE = "25006"


def register_error_handlers(app):
    @app.errorhandler(Refused)
    def refused(error):
        db.session.rollback()
        extra = {} if error.errors is None else {"errors": error.errors}
        return error_response(error.status, error.message, **extra)

    @app.errorhandler(IntegrityError)
    def integrity_error(error):
        # A uniqueness or reference rule enforced by the database was hit,
        # typically by two requests racing: report it, never a 500.
        db.session.rollback()
        log.info("Integrity error: %s", error.orig)
        return error_response(409, "The request conflicts with data that already exists.")

    @app.errorhandler(DataError)
    def unstorable_value(error):
        # A value the database cannot hold that validation let through.
        db.session.rollback()
        log.info("Data error: %s", error.orig)
        return error_response(400, "A value in the request cannot be stored.")

    @app.errorhandler(OperationalError)
    def database_unavailable(error):
        db.session.rollback()
        if getattr(error.orig, "sqlstate", None) in CONFLICT_SQLSTATES:
            log.info("Transaction conflict: %s", error.orig)
            return error_response(
                409, "The request collided with a concurrent one and changed nothing; try again."
            )
        log.warning("Database error: %s", error.orig)
        return error_response(
            503, "The database is busy or unreachable; try again.", {"Retry-After": "1"}
        )

    @app.errorhandler(InternalError)
    def database_read_only(error):
        if getattr(error.orig, "sqlstate", None) != READ_ONLY_SQLSTATE:
            return internal_error(error)
        db.session.rollback()
        log.warning("Database refused a write: %s", error.orig)
        return error_response(
            503, "The database is read-only right now; nothing was changed. Try again later.", {"Retry-After": "30"}
        )

    @app.errorhandler(InternalServerError)
    def server_error(error):
        return internal_error(getattr(error, "original_exception", None) or error)


def refuse_non_json_bodies():
    """A JSON endpoint given a body of another type answers 415."""
    if request.url_rule is None:
        return None  # an unknown route or method: its 404 or 405 comes first
    if request.method not in WRITE_METHODS or request.endpoint in NON_JSON_ENDPOINTS:
        return None
    has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
    if has_body and not request.is_json:
        return error_response(415, "Send the body as JSON (Content-Type: application/json).")
    return None


def refuse_ids_out_of_range():
    """An id in a path beyond what the database stores names nothing: 404, not an overflow."""
    for name, value in (request.view_args or {}).items():
        if name.endswith("_id") and isinstance(value, int) and not 1 <= value <= s.MAX_ID:
            return error_response(404, f"{name.removesuffix('_id').capitalize()} {value} not found.")
    return None


def refuse_nul_characters():
    """PostgreSQL cannot store NUL characters: refuse them up front, on every database alike."""
    if request.url_rule is None:
        return None  # an unknown route or method: its 404 or 405 comes first
    query = [value for pair in request.args.items(multi=True) for value in pair]
    # Poster uploads read their (base64) body later, under their own size limit.
    check_body = request.is_json and request.endpoint not in NON_JSON_ENDPOINTS
    if contains_nul(query) or (check_body and contains_nul(request.get_json(silent=True))):
        return error_response(400, "Text may not contain NUL (\\u0000) characters.")
    return None


def contains_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return contains_nul(list(value)) or contains_nul(list(value.values()))
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


def register_request_guards(app):
    app.before_request(refuse_non_json_bodies)
    app.before_request(refuse_ids_out_of_range)
    app.before_request(refuse_nul_characters)
