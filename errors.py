"""The one error shape: its handlers, the small exceptions rules raise, the request guards."""

import gc
import json
import logging
import math
import sys
import uuid
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

from flask import Request, jsonify, request
from flask.json.provider import DefaultJSONProvider
from sqlalchemy.exc import DataError, IntegrityError, InternalError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

import schemas as s
from models import db

log = logging.getLogger("cinema")

# Methods that change data: write locks, 415 checks, and the errors the OpenAPI document lists.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Endpoints that take a body other than JSON.
NON_JSON_ENDPOINTS = frozenset({"movies.upload_poster", "movies.upload_movie_poster"})
# How deep arrays and objects may nest in a JSON body; the API's own bodies need 2.
MAX_JSON_DEPTH = 32
# The charsets a JSON body may declare: JSON is UTF-8 (RFC 8259).
UTF8_NAMES = frozenset({"utf-8", "utf8"})
NUL_REFUSED = "Text may not contain NUL (\\u0000) characters."


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
        log.info("Integrity error: %r", error.orig)  # repr: the values in it stay on one line
        return error_response(409, "The request conflicts with data that already exists.")

    @app.errorhandler(DataError)
    def unstorable_value(error):
        # A value the database cannot hold that validation let through.
        db.session.rollback()
        log.info("Data error: %r", error.orig)
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


def json_body_expected() -> bool:
    """Whether the request writes to a known JSON endpoint (unknown routes answer 404/405 first)."""
    return (
        request.url_rule is not None
        and request.method in WRITE_METHODS
        and request.endpoint not in NON_JSON_ENDPOINTS
    )


def refuse_non_json_bodies():
    """A JSON endpoint given a body of another type, or JSON in another charset, answers 415."""
    if not json_body_expected():
        return None
    has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
    if has_body and not request.is_json:
        return error_response(415, "Send the body as JSON (Content-Type: application/json).")
    if has_body and request.mimetype_params.get("charset", "utf-8").lower() not in UTF8_NAMES:
        return error_response(415, "Send JSON in UTF-8 (charset=utf-8, or no charset).")
    return None


def receive_json_body():
    """Read a JSON body now, before a query can take SQLite's write lock.

    Reading costs no CPU to speak of; parsing waits until the view asks for the
    body (``get_json``), after its auth check.
    """
    if not (json_body_expected() and request.is_json):
        return None
    limit = request.max_content_length
    if request.content_length is None and limit is not None:
        # Werkzeug cuts a streamed body (no Content-Length) at the limit instead of
        # refusing it: read one byte more, and a body that reaches it is too large.
        request.max_content_length = limit + 1
        if len(request.get_data()) > limit:
            raise RequestEntityTooLarge()
    request.get_data()
    return None


def refuse_ids_out_of_range():
    """An id in a path beyond what the database stores names nothing: 404, not an overflow."""
    for name, value in (request.view_args or {}).items():
        if name.endswith("_id") and isinstance(value, int) and not 1 <= value <= s.MAX_ID:
            return error_response(404, f"{name.removesuffix('_id').capitalize()} {value} not found.")
    return None


def refuse_bad_query_strings():
    """A query string must decode as UTF-8 and hold no NUL characters (PostgreSQL cannot store them)."""
    if request.url_rule is None:
        return None  # an unknown route or method: its 404 or 405 comes first
    try:
        # Werkzeug fails on raw bytes that are not UTF-8 and keeps "%FF" as text.
        unquote_to_bytes(request.query_string).decode()
    except UnicodeDecodeError:
        return error_response(400, "The query string is not valid UTF-8.")
    query = [value for pair in request.args.items(multi=True) for value in pair]
    if contains_nul(query):
        return error_response(400, NUL_REFUSED)
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
    app.before_request(receive_json_body)
    app.before_request(refuse_ids_out_of_range)
    app.before_request(refuse_bad_query_strings)


# ---- JSON bodies ------------------------------------------------------------------


class BadJson(ValueError):
    """A JSON body refused for a reason the client is told."""


def parse_json(data: bytes):
    """A request body as JSON: UTF-8, nested at most MAX_JSON_DEPTH deep, finite numbers only.

    Raises BadJson, or json.JSONDecodeError for text that is not JSON at all.
    """
    try:
        text = data.decode()  # strict: no invalid bytes, no encoded surrogates, no UTF-16
    except UnicodeDecodeError:
        raise BadJson("The request body is not valid UTF-8.") from None
    if nests_deeper_than(data, MAX_JSON_DEPTH):
        raise BadJson(f"The request body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels.")
    # Every new array counts towards a run of the cyclic garbage collector, which
    # walks the whole heap: for a body of many small arrays, over ten times the
    # cost of the parse itself. A parsed body holds no cycles; collect afterwards.
    collecting = gc.isenabled()
    gc.disable()
    try:
        body = JSON_DECODER.decode(text)
    except (BadJson, json.JSONDecodeError):
        raise
    except ValueError:  # an integer longer than int() converts (sys.get_int_max_str_digits)
        raise BadJson(f"Numbers may have at most {sys.get_int_max_str_digits()} digits.") from None
    finally:
        if collecting:
            gc.enable()
    # A NUL can only come from its escape (JSON refuses the raw character): only
    # then is the body walked.
    if b"\\u0000" in data and contains_nul(body):
        raise BadJson(NUL_REFUSED)
    return body


def refuse_constant(name: str):
    """Python's json reads NaN, Infinity and -Infinity; JSON has no such numbers."""
    raise BadJson(f"{name} is not a JSON number.")


def finite_float(literal: str) -> float:
    """A number like 1e400 would become infinity."""
    number = float(literal)
    if math.isinf(number):
        raise BadJson("A number in the request body is too large.")
    return number


JSON_DECODER = json.JSONDecoder(parse_constant=refuse_constant, parse_float=finite_float)


# Once the strings are gone: brackets as parentheses, everything else dropped.
BRACKETS_AS_PARENTHESES = bytes.maketrans(b"[{]}", b"(())")
NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def nests_deeper_than(data: bytes, limit: int) -> bool:
    """Whether a JSON text's arrays and objects nest deeper than ``limit``, found without parsing it.

    json.loads recurses once per level and would run into Python's recursion
    limit (a RecursionError) on a body of a few thousand brackets.
    """
    nesting = text_outside_strings(data).translate(BRACKETS_AS_PARENTHESES, NOT_BRACKETS)
    too_deep = b"(" * (limit + 1)
    if too_deep in nesting:
        return True
    for _ in range(limit + 1):
        # Each pass takes away the innermost level: every "()" there is.
        shallower = nesting.replace(b"()", b"")
        if shallower == nesting:
            # Empty; or unbalanced, which json.loads refuses before recursing deeper
            # than the levels taken away so far plus the brackets still open.
            return too_deep in nesting
        nesting = shallower
    return True


def text_outside_strings(data: bytes) -> bytes:
    """A JSON text without its strings."""
    # Escaped backslashes first, then escaped quotes: each quote left opens or closes a string.
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(unescaped.split(b'"')[::2])


class JsonProvider(DefaultJSONProvider):
    """Flask's JSON, reading with parse_json() (request.get_json() among others)."""

    def loads(self, s, **kwargs):
        return parse_json(s.encode() if isinstance(s, str) else s)


class ApiRequest(Request):
    """Flask's request, with a 400 in the error shape for a body parse_json() refuses."""

    def on_json_loading_failed(self, e):
        if e is None:
            return super().on_json_loading_failed(e)  # not a JSON content type
        if isinstance(e, BadJson):
            raise Invalid(str(e))
        raise Invalid("The request body is not valid JSON.", {"_schema": ["Invalid JSON body."]})
