"""What the OpenAPI document says beyond the schemas: errors, headers, security, examples."""

import base64
import hashlib
import re
from copy import deepcopy
from http import HTTPStatus

from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import IntegerConverter

import schemas as s
from errors import WRITE_METHODS, http_error

API_DESCRIPTION = """\
Book seats at a movie cinema. JSON in and out; times are ISO 8601 with an offset.

**Auth**: `POST /login` returns an `access_token` (1 hour) and a `refresh_token` (30 days).
Send `Authorization: Bearer <access_token>` ("Authorize" on this page). Admin endpoints
answer 403 to other users.

**Errors** always look like `{"status": 404, "error": "Not Found", "message": "..."}`;
validation errors (400) add `errors` by field, and a 500 adds the `error_id` it was logged
under.

**Lists** take `page` and `per_page` (1-100) and answer a bare array, with the total in
`X-Total-Count` and the neighbouring pages in `Link`.
"""

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token from POST /login (POST /refresh takes the refresh token).",
}
SECURITY = [{"bearerAuth": []}]

PAGE_HEADERS = {
    "X-Total-Count": {
        "description": "How many items all pages hold together",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Link": {
        "description": 'RFC 8288 links to the first, prev, next and last pages, e.g. '
        '`</movies?page=2&per_page=20>; rel="next"`',
        "schema": {"type": "string"},
    },
}
CREATED_HEADERS = {
    "Location": {"description": "Where the new resource can be read", "schema": {"type": "string"}},
}
RETRY_HEADERS = {
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}},
}

IDEMPOTENCY_HEADERS = ("Idempotency-Key", "X-Idempotency-Key")
IDEMPOTENCY_PARAMETERS = [
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Any 1-255 printable ASCII characters (a UUID will do), new for each "
        "booking or cancellation: a retry with the same key within IDEMPOTENCY_KEY_HOURS gets "
        "the first answer back, and changes nothing.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    },
    {
        "name": "X-Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Another name for Idempotency-Key (both at once must agree).",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    },
]
REPLAYED_HEADERS = {
    "Idempotent-Replayed": {
        "description": "`true` on the answer to a retry: the first answer again; nothing changed",
        "schema": {"type": "string", "enum": ["true"]},
    },
}

ERROR_MESSAGES = {
    400: "The request has invalid fields: title.",
    401: "Missing token: Missing Authorization Header.",
    403: "Admins only.",
    404: "Movie 7 not found.",
    409: "Seats A1 are already booked; nothing was booked.",
    413: "The data value transmitted exceeds the capacity limit.",
    415: "Send the body as JSON (Content-Type: application/json).",
    429: "10 per 1 minute",
    500: "Something went wrong on our side (error id 3f2a9c1b7d4e).",
    503: "The database is busy or unreachable; try again.",
}
ERROR_EXTRAS = {
    400: {"errors": {"title": ["Missing data for required field."]}},
    409: {"errors": {"seats": ["A1"]}},
    500: {"error_id": "3f2a9c1b7d4e"},
}


def error_example(status: int, message: str | None = None, **extra) -> dict:
    """An error body in the contract's shape: ``status``'s shared one, or ``message`` and ``extra``."""
    if message is None:
        message = ERROR_MESSAGES.get(status, HTTPStatus(status).description)
        extra = deepcopy(ERROR_EXTRAS.get(status, {}))
    return {"status": status, "error": HTTPStatus(status).phrase, "message": message, **extra}


# What particular operations answer, where the shared example of the status would mislead.
ERROR_EXAMPLES = {
    "wrong_password": error_example(401, "Wrong username or password."),
    "register_limit": error_example(429, "20 per 1 hour"),
    "name_taken": error_example(409, "That username is already registered."),
    "user_not_found": error_example(404, "User 7 not found."),
    "hall_taken": error_example(
        409, "Hall 'Main' is taken by showtime 7 starting 2030-05-01T18:00:00+00:00."
    ),
    "movie_booked": error_example(409, "Movie 7 has upcoming showtimes with bookings; cancel them first."),
    "not_an_image": error_example(
        400,
        "The file is not a JPEG, PNG, WebP or GIF image.",
        errors={"image": ["The file is not a JPEG, PNG, WebP or GIF image."]},
    ),
    "not_an_upload": error_example(415, "Send the image as multipart/form-data or as JSON with base64."),
    "image_host_failed": error_example(502, "The image host did not accept the poster; nothing was changed."),
    "poster_not_found": error_example(404, "Poster not found."),
    "showtime_not_found": error_example(404, "Showtime 7 not found."),
    "showtime_booked": error_example(409, "Showtime 7 has bookings; cancel them first."),
    "showtime_booked_unchangeable": error_example(409, "Showtime 7 has bookings; it cannot change."),
    "seats_exist": error_example(409, "Seats already exist: A1. None were added.", errors={"seats": ["A1"]}),
    "not_admin_all": error_example(403, "Only admins may list every reservation."),
    "reservation_not_found": error_example(404, "Reservation 7 not found."),
    "already_cancelled": error_example(409, "Reservation 7 is already cancelled."),
    "not_a_seat_of_it": error_example(
        400, "Reservation 7 has no seats C9.", errors={"seats": ["Not a seat of this reservation: C9"]}
    ),
    "reissue_cancelled": error_example(409, "Reservation 7 is cancelled; it has no tickets."),
    "own_role": error_example(409, "You cannot change your own role; ask another admin."),
    "not_staff": error_example(403, "Door staff and admins only."),
    "unknown_ticket": error_example(404, "Unknown ticket."),
    "check_in_not_open": error_example(409, "Check-in for this showtime opens at 17:00."),
    "seat_booked_block": error_example(
        409, "Seats E5 are booked or held; cancel those bookings before blocking them.", errors={"seats": ["E5"]}
    ),
    "hold_not_found": error_example(404, "Hold 7 not found."),
    "hold_expired": error_example(409, "Hold 7 expired at 18:02:05; nothing was booked. Hold the seats again."),
    "seat_limit": error_example(
        409,
        "At most 10 seats of one showtime per guest, held or booked: you have 2, so 8 more at most.",
        errors={"seats": ["limit 10, have 2, asked 9"]},
    ),
    "no_seats_together": error_example(
        409, "No 4 seats together are free; send allow_split: true to accept seats apart."
    ),
    "hall_name_taken": error_example(409, "A hall named 'Studio 2' exists already."),
    "hall_not_found": error_example(404, "Hall 7 not found."),
    "ticket_type_exists": error_example(409, "Ticket type 'child' exists already."),
    "default_ticket_type": error_example(
        409, "'adult' is the ticket type of bookings that name only seats; it stays active."
    ),
    "ticket_type_not_found": error_example(404, "Ticket type 'vip' not found."),
    "idempotency_key_reused": error_example(
        422, "This Idempotency-Key was used for another request (method, path or body); send a new key."
    ),
    "database_unreachable": error_example(
        503, "The database is unreachable.", errors={"database": ["unreachable"]}
    ),
}


def document_error(view, status: int):
    """Add the shared component response of ``status`` to a view's documentation."""
    view._apidoc = deepcopy(getattr(view, "_apidoc", {}))
    responses = view._apidoc.setdefault("response", {}).setdefault("responses", {})
    if status not in responses:
        responses[status] = [HTTPStatus(status).name]
    return view


def document_security(view, *statuses):
    """Mark a view as needing a bearer token, with the errors that brings."""
    view._apidoc = deepcopy(getattr(view, "_apidoc", {}))
    view._apidoc.setdefault("manual_doc", {})["security"] = SECURITY
    for status in statuses:
        document_error(view, status)
    return view


def add_common_errors(doc, doc_info, *, method, **kwargs):
    """Errors any operation can meet: 500 and 503; 415 (and 413) for writes (with bodies)."""
    responses = doc_info.setdefault("response", {}).setdefault("responses", {})
    statuses = [500, 503]
    if method.upper() in WRITE_METHODS:
        statuses.append(415)
        if any(
            argument.get("location", "json") == "json"
            for argument in doc_info.get("arguments", {}).get("parameters", [])
        ):
            statuses.append(413)
    for status in statuses:
        responses.setdefault(status, [HTTPStatus(status).name])
    return doc


def add_idempotency_doc(doc, doc_info, **kwargs):
    """The Idempotency-Key headers, Idempotent-Replayed, 422 and the 409's Retry-After of an @idempotent view."""
    if not doc_info.get("idempotent"):
        return doc
    manual_doc = doc_info.setdefault("manual_doc", {})
    manual_doc["parameters"] = manual_doc.get("parameters", []) + deepcopy(IDEMPOTENCY_PARAMETERS)
    responses = doc_info.setdefault("response", {}).setdefault("responses", {})
    for status, entries in responses.items():
        for entry in entries:
            if isinstance(entry, dict) and int(status) < 300:
                entry["headers"] = {**entry.get("headers", {}), **REPLAYED_HEADERS}
            if isinstance(entry, dict) and int(status) == 409:
                entry["headers"] = {**entry.get("headers", {}), **RETRY_HEADERS}
    responses.setdefault(400, [HTTPStatus(400).name])
    responses.setdefault(422, []).append(
        {
            "schema": s.ErrorSchema,
            "description": "The Idempotency-Key was used for another request",
            "example": ERROR_EXAMPLES["idempotency_key_reused"],
            "content_type": None,
        }
    )
    return doc


# A reservation as the API shows it (demo_user's, on the demo data).
RESERVATION_EXAMPLE = {
    "id": 10,
    "reference": "7KQ3M9XD",
    "showtime_id": 3,
    "user_id": 2,
    "seats": ["A1", "A2"],
    "lines": [
        {"seat": "A1", "seat_type": "accessible", "ticket_type": "adult", "price": 12.0, "cancelled_at": None},
        {"seat": "A2", "seat_type": "companion", "ticket_type": "child", "price": 7.2, "cancelled_at": None},
    ],
    "total_price": 19.2,
    "status": "confirmed",
    "created_at": "2030-04-20T12:00:00+00:00",
    "cancelled_at": None,
    "confirmed_at": "2030-04-20T12:00:00+00:00",
    "movie_title": "Inception",
    "start_time": "2030-05-01T18:00:00+00:00",
    "hall": "Main",
    "email_status": "sent",
    "booked_ago": "2 hours ago",
}

# A hold as the API shows it: the best two seats, held for ten minutes.
HOLD_EXAMPLE = {
    "id": 11,
    "showtime_id": 3,
    "user_id": 2,
    "status": "active",
    "seats": ["G6", "G7"],
    "lines": [
        {"seat": "G6", "seat_type": "standard", "ticket_type": "adult", "price": 12.0, "cancelled_at": None},
        {"seat": "G7", "seat_type": "standard", "ticket_type": "adult", "price": 12.0, "cancelled_at": None},
    ],
    "total_price": 24.0,
    "created_at": "2030-04-20T12:00:00+00:00",
    "expires_at": "2030-04-20T12:10:00+00:00",
    "expires_in_seconds": 600,
    "movie_title": "Inception",
    "start_time": "2030-05-01T18:00:00+00:00",
    "hall": "Main",
}

# One showtime's figures in the report's example, which is also its movie's and its day's.
REPORT_FIGURES_EXAMPLE = {
    "seats_total": 120,
    "tickets_sold": 3,
    "utilization_percent": 2.5,
    "reservations": 2,
    "revenue": 30.0,
    "cancelled_reservations": 1,
    "cancelled_tickets": 2,
    "cancelled_revenue": 20.0,
    "partly_cancelled_reservations": 0,
    "holds_created": 2,
    "holds_confirmed": 1,
    "hold_conversion_percent": 50.0,
    "checked_in": 2,
    "attendance_percent": 66.7,
}

# Examples from the HTTP contract, shown by the docs page and tried by "Try it out";
# the requests work on the demo data (flask --app app seed-demo).
EXAMPLES = {
    "register": {"username": "john_doe", "email": "john@example.com", "password": "password123"},
    "registered": {
        "message": "User registered successfully",
        "user": {"id": 1, "username": "john_doe", "email": "john@example.com", "is_admin": False},
    },
    "login": {"username": "demo_user", "password": "demo-user-pass"},
    "logged_in": {
        "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
        "refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
        "user": {"id": 2, "username": "demo_user", "is_admin": False, "role": "user"},
    },
    "promoted": {
        "message": "User promoted to admin successfully",
        "user": {
            "id": 2,
            "username": "jane",
            "email": "jane@example.com",
            "is_admin": True,
            "role": "admin",
            "created_at": "2025-04-01T09:30:00+00:00",
        },
    },
    "movie": {
        "title": "Inception",
        "genre": "Sci-Fi",
        "description": "A thief who steals corporate secrets...",
        "poster_url": "https://res.cloudinary.com/demo/image/upload/inception.jpg",
        "duration_minutes": 148,
    },
    "showtime": {"movie_id": 5, "start_time": "2030-05-01T18:00:00", "hall": "Main", "price": 10},
    "seats": {"showtime_id": 3, "rows": "A-J", "seats_per_row": 12},
    "seats_added": {"message": "Seats added successfully", "seats": ["A1", "A2", "A3"]},
    "reservation": {"showtime_id": 3, "seats": ["A1", "A2"]},
    "reserved": {"message": "Reservation confirmed", "reservation": RESERVATION_EXAMPLE},
    "reservation_detail": RESERVATION_EXAMPLE,
    "hold": {"showtime_id": 3, "quantity": 2},
    "held": {"message": "Seats held", "hold": HOLD_EXAMPLE},
    "hold_detail": HOLD_EXAMPLE,
    "seat_map": {
        "showtime_id": 3,
        "movie_title": "Inception",
        "start_time": "2030-05-01T18:00:00+00:00",
        "hall": "Main",
        "price": 10.0,
        "seats_total": 4,
        "seats_available": 2,
        "rows": [
            {
                "row": "A",
                "gaps": [2],
                "seats": [
                    {"label": "A1", "status": "yours", "type": "accessible", "price": 10.0, "column": 1},
                    {"label": "A2", "status": "booked", "type": "companion", "price": 10.0, "column": 3},
                ],
            },
            {
                "row": "B",
                "gaps": [2],
                "seats": [
                    {"label": "B1", "status": "blocked", "type": "premium", "price": 14.0, "column": 1},
                    {"label": "B2", "status": "available", "type": "premium", "price": 14.0, "column": 3},
                ],
            },
        ],
    },
    "cancelled": {"message": "Reservation cancelled successfully"},
    "report": {
        "total_reservations": 2,
        "tickets_sold": 3,
        "revenue_estimate": 30.0,
        "cancelled_reservations": 1,
        "seats_total": 120,
        "utilization_percent": 2.5,
        "cancelled_tickets": 2,
        "cancelled_revenue": 20.0,
        "partly_cancelled_reservations": 0,
        "holds_created": 2,
        "holds_confirmed": 1,
        "hold_conversion_percent": 50.0,
        "checked_in": 2,
        "attendance_percent": 66.7,
        "showtime_count": 1,
        "time_zone": "UTC",
        "movies": [{"movie_id": 1, "movie_title": "Inception", "showtime_count": 1, **REPORT_FIGURES_EXAMPLE}],
        "days": [{"day": "2030-05-01", "showtime_count": 1, **REPORT_FIGURES_EXAMPLE}],
        "seat_types": [{"seat_type": "standard", "tickets_sold": 3, "revenue": 30.0}],
        "ticket_types": [{"ticket_type": "adult", "tickets_sold": 3, "revenue": 30.0}],
        "showtimes": [
            {
                "showtime_id": 3,
                "movie_id": 1,
                "movie_title": "Inception",
                "start_time": "2030-05-01T18:00:00+00:00",
                "day": "2030-05-01",
                "hall": "Main",
                "seats_booked": 3,
                **{name: value for name, value in REPORT_FIGURES_EXAMPLE.items() if name != "tickets_sold"},
            }
        ],
    },
    "health": {"status": "ok", "database": "ok"},
}


# GET /admin/report?format=csv: the rows of the example above, as a spreadsheet opens them.
REPORT_CSV_CONTENT = {
    "schema": {"type": "string", "description": "UTF-8 with a byte order mark, CRLF line ends, a header row"},
    "example": "showtime_id,movie_id,movie_title,start_time,day,hall,seats_total,seats_booked,"
    "utilization_percent,reservations,revenue,cancelled_reservations,cancelled_tickets,cancelled_revenue,"
    "partly_cancelled_reservations,holds_created,holds_confirmed,hold_conversion_percent,checked_in,attendance_percent\r\n"
    "3,1,Inception,2030-05-01T18:00:00+00:00,2030-05-01,Main,120,3,2.5,2,30.00,1,2,20.00,0,2,1,50.0,2,66.7\r\n",
}


DOCS_URL = "/docs"
# Everything the page needs comes from this server. Its one inline script (the
# Swagger UI set-up in flask-swagger-ui's page) is allowed by its hash, filled in
# at start-up. Styles come from the stylesheets, plus one <style> by hash rather
# than 'unsafe-inline' (Swagger UI sets element styles from script, which a policy
# does not restrict). Icons are data: URLs in its CSS; "Try it out" shows images
# from blob: URLs.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' {script_hashes}; "
    # The <style> in Swagger UI's logo (swagger-ui-standalone-preset.js): should an
    # update change it, the logo loses its colours and e2e/ reports the violation.
    "style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; "
    "img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
INLINE_SCRIPT_RE = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_blueprint():
    """Swagger UI at /docs, from the files the flask-swagger-ui package installs."""
    from flask_swagger_ui import get_swaggerui_blueprint

    blueprint = get_swaggerui_blueprint(
        DOCS_URL,
        "/openapi.json",
        config={
            "app_name": "Movie Cinema Booking API",
            "validatorUrl": None,  # the default badge would call an outside validator
            "persistAuthorization": True,
            "displayRequestDuration": True,
            # Left out, it is built from the request's Host, and the inline script
            # would differ (and need another hash) for every host name.
            "oauth2RedirectUrl": DOCS_URL + "/oauth2-redirect.html",
        },
    )
    headers = {"X-Frame-Options": "DENY"}

    @blueprint.record_once
    def hash_the_inline_script(state):
        # The page as flask-swagger-ui renders it, so an update of its template cannot
        # leave a stale hash behind. No request changes the script (see oauth2RedirectUrl);
        # were one to, the browser would block it rather than run it.
        with state.app.test_request_context(DOCS_URL + "/"):
            page = state.app.view_functions[f"{blueprint.name}.show"]()
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
            for script in INLINE_SCRIPT_RE.findall(page)
        )
        headers["Content-Security-Policy"] = DOCS_POLICY.format(script_hashes=hashes)

    @blueprint.after_request
    def forbid_framing_and_foreign_content(response):
        response.headers.update(headers)
        return response

    return blueprint


def ecma_pattern(converter, field, ret, **kwargs):
    """Python's end-of-text anchor \\Z is $ in the regex dialect OpenAPI uses."""
    if "pattern" in ret:
        return {"pattern": ret["pattern"].replace("\\Z", "$")}
    return {}


def id_parameter(converter):
    """Every integer in a path is an id."""
    return {"type": "integer", "minimum": 1, "maximum": s.MAX_ID}


# ---- flask-smorest, with the contract's errors ----------------------------------


class JsonErrorApi(Api):
    """flask-smorest's Api, with every HTTP error in the contract's shape."""

    ERROR_SCHEMA = s.ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # each operation lists the errors it can return

    def handle_http_exception(self, error):
        return http_error(error)

    def _init_spec(self, **kwargs):
        super()._init_spec(**kwargs)
        self.spec.components.security_scheme("bearerAuth", BEARER_SCHEME)
        self.ma_plugin.converter.add_attribute_function(ecma_pattern)
        self.register_converter(IntegerConverter, id_parameter)

    def _register_responses(self):
        """One component response per error status, in the contract's shape."""
        headers = {401: {"WWW-Authenticate": {"schema": {"type": "string"}}}}
        headers.update(dict.fromkeys((429, 503), RETRY_HEADERS))
        for status in ERROR_MESSAGES:
            response = {
                "description": HTTPStatus(status).phrase,
                "schema": self.ERROR_SCHEMA,
                "example": error_example(status),
            }
            if status in headers:
                response["headers"] = headers[status]
            prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(HTTPStatus(status).name, response, lazy=True)


class ValidationParser(FlaskParser):
    # The contract says 400 for validation failures (webargs defaults to 422).
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req):
        """The body parsed by the request's own rules (errors.ApiRequest), after the view's auth check."""
        if not is_json_request(req) or not req.get_data():
            return core.missing  # no body: the schema names the fields it needs
        return req.get_json()


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = ValidationParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Before flask-smorest turns the collected responses into the document.
        self._prepare_doc_cbks.insert(0, add_common_errors)
        self._prepare_doc_cbks.insert(1, add_idempotency_doc)

    def arguments(self, schema, *args, **kwargs):
        """One schema instance per route: webargs would build one from a class on every request."""
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)

    def alt_response(self, status_code, response=None, *, schema=None, example=None, **kwargs):
        """Error responses default to the contract's error shape."""
        if response is None and schema is None and int(status_code) >= 400:
            schema = s.ErrorSchema
            example = example or error_example(int(status_code))
        return super().alt_response(status_code, response, schema=schema, example=example, **kwargs)


def schema_name(schema):
    """OpenAPI component names: "Movie", "MoviePartial", ... one per schema variant."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    if not isinstance(schema, type):
        if schema.partial:
            name += "Partial"
        if schema.only:
            name += "Brief"
    return name


def poster_request_body(with_movie_id: bool) -> dict:
    """The OpenAPI request body of a poster upload, multipart or JSON."""
    fields = {"image": {"type": "string", "format": "binary"}}
    if with_movie_id:
        fields["movie_id"] = {"type": "integer", "description": "Make the image this movie's poster_url"}
    json_fields = {**fields, "image": {"type": "string", "description": "base64 or a data: URL"}}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": fields}},
            "application/json": {"schema": {"type": "object", "required": ["image"], "properties": json_fields}},
        },
    }
