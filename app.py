"""Movie cinema booking API: the application factory and every route."""

import base64
import binascii
import logging
import os
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from functools import wraps
from http import HTTPStatus
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from apispec.ext.marshmallow import MarshmallowPlugin
from dotenv import load_dotenv
from flask import (
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    jsonify,
    request,
    send_from_directory,
    url_for,
)
from flask.cli import with_appcontext
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    current_user,
    get_jwt,
    jwt_required,
)
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate, stamp
from flask_migrate import upgrade as upgrade_database
from flask_smorest import Api, Blueprint, abort
from flask_smorest.utils import prepare_response
from marshmallow import ValidationError
from sqlalchemy import bindparam, case, event, exists, func, insert, inspect, or_, select, text, true, update
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import joinedload, selectinload
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import IntegerConverter
from werkzeug.security import check_password_hash, generate_password_hash

import apidoc
import posters
import schemas as s
from demo import seed_demo_command
from emails import resend_failed, send_booking_confirmation, send_cancellation
from models import (
    CANCELLED,
    CONFIRMED,
    Movie,
    Reservation,
    RevokedToken,
    Seat,
    Showtime,
    User,
    db,
    reservation_seats,
    seat_sort_key,
    utcnow,
)

log = logging.getLogger("cinema")  # emails.py logs under "cinema.emails"

# ---- configuration ----------------------------------------------------------------

DEFAULTS = {
    "SQLALCHEMY_DATABASE_URI": None,  # instance/cinema.db unless DATABASE_URL is set
    "JWT_SECRET_KEY": None,  # generated and kept in the instance folder when unset
    "JWT_ACCESS_TOKEN_EXPIRES": timedelta(hours=1),
    "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=30),
    "JWT_TOKEN_LOCATION": ["headers"],
    "CINEMA_TIMEZONE": "UTC",
    "SEAT_PRICE": 10,
    "CLEANING_MINUTES": 15,
    "MAX_SEATS_PER_RESERVATION": 10,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "LOGIN_RATE_LIMIT": "10 per minute",
    "REGISTER_RATE_LIMIT": "20 per hour",
    "RATELIMIT_STORAGE_URI": "memory://",
    # Every other route, per client address; generous, against runaway clients.
    "DEFAULT_RATE_LIMIT": "600 per minute",
    "RATELIMIT_KEY_PREFIX": "cinema",
    # When Redis is down, count in memory instead of failing requests.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    # Bearer tokens, not cookies: any origin may call the API unless narrowed.
    "CORS_ORIGINS": "*",
    "CORS_EXPOSE_HEADERS": ["X-Total-Count", "Link", "Location"],
    "CORS_SEND_WILDCARD": True,  # "*" itself rather than the caller's origin echoed back
    "RATELIMIT_HEADERS_ENABLED": True,
    "PASSWORD_HASH_METHOD": "scrypt",
    "LOG_LEVEL": "INFO",
    "ADMIN_USERNAME": None,
    "ADMIN_EMAIL": None,
    "ADMIN_PASSWORD": None,
    "RESEND_API_KEY": None,
    "RESEND_FROM": "Cinema <onboarding@resend.dev>",
    "RESEND_API_URL": "https://api.resend.com",
    "EMAIL_TIMEOUT": 5,
    "MAX_POSTER_BYTES": 5 * 1024 * 1024,
    "POSTER_FOLDER": None,  # instance/posters when unset
    "CLOUDINARY_URL": None,
    "CLOUDINARY_CLOUD_NAME": None,
    "CLOUDINARY_API_KEY": None,
    "CLOUDINARY_API_SECRET": None,
    "CLOUDINARY_UPLOAD_PREFIX": None,
    "CLOUDINARY_TIMEOUT": 20,
    # OpenAPI, read by flask-smorest.
    "API_TITLE": "Movie Cinema Booking API",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {"info": {"description": apidoc.API_DESCRIPTION}},
    # Upgrade the database to the newest migration at start-up (`python app.py` turns it on).
    "AUTO_MIGRATE": False,
    # Build the tables straight from the models instead (tests only).
    "CREATE_TABLES": False,
}

# Environment variable -> (config key, parser). Read after DEFAULTS, before `config`.
ENVIRONMENT = {
    "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", str),
    "JWT_SECRET_KEY": ("JWT_SECRET_KEY", str),
    "JWT_ACCESS_TOKEN_EXPIRES": ("JWT_ACCESS_TOKEN_EXPIRES", lambda v: timedelta(seconds=int(v))),
    "JWT_REFRESH_TOKEN_EXPIRES": ("JWT_REFRESH_TOKEN_EXPIRES", lambda v: timedelta(seconds=int(v))),
    "CINEMA_TIMEZONE": ("CINEMA_TIMEZONE", str),
    "SEAT_PRICE": ("SEAT_PRICE", float),
    "CLEANING_MINUTES": ("CLEANING_MINUTES", int),
    "MAX_SEATS_PER_RESERVATION": ("MAX_SEATS_PER_RESERVATION", int),
    "MAX_CONTENT_LENGTH": ("MAX_CONTENT_LENGTH", int),
    "LOGIN_RATE_LIMIT": ("LOGIN_RATE_LIMIT", str),
    "REGISTER_RATE_LIMIT": ("REGISTER_RATE_LIMIT", str),
    "RATELIMIT_STORAGE_URI": ("RATELIMIT_STORAGE_URI", str),
    "DEFAULT_RATE_LIMIT": ("DEFAULT_RATE_LIMIT", str),
    "RATELIMIT_KEY_PREFIX": ("RATELIMIT_KEY_PREFIX", str),
    "CORS_ORIGINS": ("CORS_ORIGINS", lambda v: [o.strip() for o in v.split(",") if o.strip()]),
    "RATELIMIT_ENABLED": ("RATELIMIT_ENABLED", lambda v: v.lower() in ("1", "true", "yes")),
    "ADMIN_USERNAME": ("ADMIN_USERNAME", str),
    "ADMIN_EMAIL": ("ADMIN_EMAIL", str),
    "ADMIN_PASSWORD": ("ADMIN_PASSWORD", str),
    "RESEND_API_KEY": ("RESEND_API_KEY", str),
    "RESEND_FROM": ("RESEND_FROM", str),
    "RESEND_API_URL": ("RESEND_API_URL", str),
    "EMAIL_TIMEOUT": ("EMAIL_TIMEOUT", float),
    "MAX_POSTER_BYTES": ("MAX_POSTER_BYTES", int),
    "POSTER_FOLDER": ("POSTER_FOLDER", str),
    "CLOUDINARY_URL": ("CLOUDINARY_URL", str),
    "CLOUDINARY_CLOUD_NAME": ("CLOUDINARY_CLOUD_NAME", str),
    "CLOUDINARY_API_KEY": ("CLOUDINARY_API_KEY", str),
    "CLOUDINARY_API_SECRET": ("CLOUDINARY_API_SECRET", str),
    "CLOUDINARY_UPLOAD_PREFIX": ("CLOUDINARY_UPLOAD_PREFIX", str),
    "CLOUDINARY_TIMEOUT": ("CLOUDINARY_TIMEOUT", float),
    "LOG_LEVEL": ("LOG_LEVEL", str.upper),
    "AUTO_MIGRATE": ("AUTO_MIGRATE", lambda v: v.lower() in ("1", "true", "yes")),
}

WRITE_METHODS = apidoc.WRITE_METHODS
# POST endpoints that only read the database (no write lock needed on SQLite).
READ_ONLY_POSTS = frozenset({"auth.login", "auth.refresh"})
# Endpoints that take a body other than JSON.
NON_JSON_ENDPOINTS = frozenset({"movies.upload_poster", "movies.upload_movie_poster"})


def settings_from_environment() -> dict:
    settings = {}
    for variable, (key, parse) in ENVIRONMENT.items():
        value = os.environ.get(variable)
        if value not in (None, ""):
            try:
                settings[key] = parse(value)
            except ValueError:
                raise RuntimeError(f"{variable}={value!r} is not valid") from None
    return settings


# ---- extensions -------------------------------------------------------------------


class JsonErrorApi(Api):
    """flask-smorest's Api, with every HTTP error in the contract's shape."""

    ERROR_SCHEMA = s.ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # each operation lists the errors it can return

    def handle_http_exception(self, error):
        return http_error(error)

    def _init_spec(self, **kwargs):
        super()._init_spec(**kwargs)
        self.spec.components.security_scheme("bearerAuth", apidoc.BEARER_SCHEME)
        self.ma_plugin.converter.add_attribute_function(apidoc.ecma_pattern)
        self.register_converter(IntegerConverter, apidoc.id_parameter)

    def _register_responses(self):
        """One component response per error status, in the contract's shape."""
        headers = {401: {"WWW-Authenticate": {"schema": {"type": "string"}}}}
        headers.update(dict.fromkeys((429, 503), apidoc.RETRY_HEADERS))
        for status in apidoc.ERROR_MESSAGES:
            response = {
                "description": HTTPStatus(status).phrase,
                "schema": self.ERROR_SCHEMA,
                "example": apidoc.error_example(status),
            }
            if status in headers:
                response["headers"] = headers[status]
            prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(HTTPStatus(status).name, response, lazy=True)


class ValidationParser(FlaskParser):
    # The contract says 400 for validation failures (webargs defaults to 422).
    DEFAULT_VALIDATION_STATUS = 400


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = ValidationParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Before flask-smorest turns the collected responses into the document.
        self._prepare_doc_cbks.insert(0, apidoc.add_common_errors)

    def alt_response(self, status_code, response=None, *, schema=None, example=None, **kwargs):
        """Error responses default to the contract's error shape."""
        if response is None and schema is None and int(status_code) >= 400:
            schema = s.ErrorSchema
            example = example or apidoc.error_example(int(status_code))
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


api = JsonErrorApi(spec_kwargs={"marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_name)})
api.register_field(s.Dollars, "number", None)
jwt = JWTManager()


def default_rate_limit():
    return current_app.config["DEFAULT_RATE_LIMIT"]


limiter = Limiter(key_func=get_remote_address, default_limits=[default_rate_limit])
cors = CORS()
MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
migrate = Migrate(directory=MIGRATIONS, compare_type=True, render_as_batch=True)

auth_blp = ApiBlueprint("auth", __name__, description="Accounts and tokens")
users_blp = ApiBlueprint("users", __name__, description="Users (admin)")
movies_blp = ApiBlueprint("movies", __name__, description="The movie catalogue")
showtimes_blp = ApiBlueprint("showtimes", __name__, description="Showtimes and seat maps")
seats_blp = ApiBlueprint("seats", __name__, description="Seat layouts (admin)")
reservations_blp = ApiBlueprint("reservations", __name__, description="Bookings")
admin_blp = ApiBlueprint("admin", __name__, description="Reports (admin)")
health_blp = ApiBlueprint("health", __name__, description="Liveness")
BLUEPRINTS = (
    auth_blp,
    users_blp,
    movies_blp,
    showtimes_blp,
    seats_blp,
    reservations_blp,
    admin_blp,
    health_blp,
)


def create_app(config=None):
    """Build the app: defaults, then the environment (and .env), then ``config``."""
    load_dotenv()
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(settings_from_environment())
    if config:
        app.config.from_mapping(config)
    app.json.sort_keys = False  # keep "status", "error", "message" in that order
    os.makedirs(app.instance_path, exist_ok=True)
    configure(app)
    if not logging.getLogger().handlers:  # a server (gunicorn) may have set logging up
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(app.config["LOG_LEVEL"])

    db.init_app(app)
    migrate.init_app(app, db)
    jwt.init_app(app)
    limiter.init_app(app)
    cors.init_app(app)
    api.init_app(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(apidoc.docs_blueprint())
    app.extensions["report_bodies"] = {}  # (report tag, filters) -> body, see admin_report
    register_error_handlers(app)
    register_jwt_callbacks()
    app.before_request(refuse_non_json_bodies)
    app.before_request(refuse_ids_out_of_range)
    app.before_request(refuse_nul_characters)
    app.cli.add_command(create_admin_command)
    app.cli.add_command(send_pending_emails_command)
    app.cli.add_command(seed_demo_command)

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)
        if app.config["AUTO_MIGRATE"]:
            migrate_database()
        elif app.config["CREATE_TABLES"]:
            db.create_all()
        bootstrap_admin()
    return app


# The first migration: the schema the app built by itself before it had migrations.
INITIAL_REVISION = "6fbbbca6d9d5"


def migrate_database():
    """Upgrade to the newest migration; a database from before migrations is adopted first."""
    tables = inspect(db.engine)
    if tables.has_table(User.__tablename__) and not tables.has_table("alembic_version"):
        stamp(directory=MIGRATIONS, revision=INITIAL_REVISION)
    upgrade_database(directory=MIGRATIONS)


def configure(app):
    """Derive the settings that depend on others."""
    config = app.config
    if not config["SQLALCHEMY_DATABASE_URI"]:
        config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(
            app.instance_path, "cinema.db"
        )
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Concurrent writers wait for the lock (up to 30 s) instead of failing.
        options = config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("connect_args", {}).setdefault("timeout", 30)
    try:
        config["CINEMA_TZ"] = ZoneInfo(config["CINEMA_TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise RuntimeError(f"CINEMA_TIMEZONE={config['CINEMA_TIMEZONE']!r} is unknown") from None
    config["SEAT_PRICE_CENTS"] = round(float(config["SEAT_PRICE"]) * 100)
    # The prefix of the counters' keys in Redis (several apps can share one server).
    config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"key_prefix": config["RATELIMIT_KEY_PREFIX"]})
    if not config["JWT_SECRET_KEY"]:
        config["JWT_SECRET_KEY"] = instance_secret(app)
    config["CLOUDINARY"] = posters.cloudinary_settings(config)


def instance_secret(app) -> str:
    """A random signing key kept in the instance folder, so tokens survive restarts.

    Several workers may start at once: each writes a candidate to a file of its
    own and links it into place; the link succeeds for one of them only, and
    everyone then uses the key that won.
    """
    path = os.path.join(app.instance_path, "jwt-secret.key")
    key = read_key(path)
    if key:
        return key
    candidate = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(48))  # 48 random bytes
    try:
        os.link(candidate, path)
        app.logger.warning(
            "JWT_SECRET_KEY is not set: using a generated key from %s. "
            "Set JWT_SECRET_KEY in production.",
            path,
        )
    except FileExistsError:
        if not read_key(path):  # not another worker's key, but a damaged file
            os.replace(candidate, path)
    finally:
        if os.path.exists(candidate):
            os.unlink(candidate)
    return read_key(path)


def read_key(path):
    try:
        with open(path) as file:
            key = file.read().strip()
    except FileNotFoundError:
        return None
    return key if len(key) >= 43 else None


def configure_sqlite(engine):
    """WAL, foreign keys, and write transactions that take the write lock up front.

    A deferred transaction that reads and then writes can fail at once with
    "database is locked" when another writer got in between; BEGIN IMMEDIATE
    makes writers queue (for the busy timeout) instead.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # SQLite's own lower() only folds ASCII; Python's folds every script,
        # so case-insensitive search works for "Amélie" too.
        dbapi_connection.create_function("lower", 1, python_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        # Straight to the driver: this runs once per request.
        connection.connection.driver_connection.execute(
            "BEGIN IMMEDIATE" if request_writes() else "BEGIN"
        )


def python_lower(value):
    return value.lower() if isinstance(value, str) else value


def request_writes() -> bool:
    if not has_request_context():
        return True  # CLI commands and start-up
    return request.method in WRITE_METHODS and request.endpoint not in READ_ONLY_POSTS


def bootstrap_admin():
    """Create the ADMIN_* user at start-up when no user of that name exists."""
    config = current_app.config
    if not (config["ADMIN_USERNAME"] and config["ADMIN_EMAIL"] and config["ADMIN_PASSWORD"]):
        return
    if not inspect(db.engine).has_table(User.__tablename__):
        log.warning("The database has no tables yet: run `flask --app app db upgrade`.")
        return
    key = config["ADMIN_USERNAME"].lower()
    if db.session.scalar(select(User.id).where(User.username_key == key)):
        return
    db.session.add(
        User(
            username=config["ADMIN_USERNAME"],
            email=config["ADMIN_EMAIL"],
            password_hash=hash_password(config["ADMIN_PASSWORD"]),
            is_admin=True,
        )
    )
    try:
        db.session.commit()
        log.info("Created admin user %s", config["ADMIN_USERNAME"])
    except IntegrityError:  # another worker created it first
        db.session.rollback()


@click.command("create-admin")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def create_admin_command(username, email, password):
    """Create an admin user, or promote the existing user of that name."""
    user = db.session.scalar(select(User).where(User.username_key == username.lower()))
    if user:
        user.is_admin = True
        db.session.commit()
        click.echo(f"Promoted {user.username} (id {user.id}) to admin.")
        return
    try:
        data = s.RegisterSchema().load(
            {"username": username, "email": email, "password": password}
        )
    except ValidationError as error:
        raise click.ClickException(f"Invalid input: {error.messages}") from None
    user = User(
        username=data["username"],
        email=data["email"],
        password_hash=hash_password(data["password"]),
        is_admin=True,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        raise click.ClickException("That email is already registered.") from None
    click.echo(f"Created admin {user.username} (id {user.id}).")


@click.command("send-pending-emails")
@with_appcontext
def send_pending_emails_command():
    """Send again every booking email that failed; report how many went out."""
    failed = db.session.scalars(
        reservation_query()
        .options(joinedload(Reservation.user))
        .where(Reservation.email_status == "failed")
        .order_by(Reservation.id)
    ).all()
    sent = resend_failed(failed)
    click.echo(f"{sent} of {len(failed)} failed emails sent.")
    if sent < len(failed):
        raise SystemExit(1)


# ---- errors -----------------------------------------------------------------------


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


def register_error_handlers(app):
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


def register_jwt_callbacks():
    def unauthorized(message):
        return error_response(401, message, {"WWW-Authenticate": "Bearer"})

    jwt.unauthorized_loader(lambda reason: unauthorized(f"Missing token: {reason}."))
    jwt.invalid_token_loader(lambda reason: unauthorized(f"Invalid token: {reason}."))
    jwt.expired_token_loader(lambda header, payload: unauthorized("The token has expired."))
    jwt.revoked_token_loader(lambda header, payload: unauthorized("The token was revoked."))
    jwt.needs_fresh_token_loader(lambda header, payload: unauthorized("A fresh token is required."))
    jwt.token_verification_failed_loader(
        lambda header, payload: unauthorized("The token's claims are not valid.")
    )
    jwt.user_lookup_error_loader(
        lambda header, payload: unauthorized("The token's user no longer exists.")
    )


# Built once: every authenticated request runs it.
TOKEN_REVOKED = exists().where(RevokedToken.jti == bindparam("jti"))
TOKEN_USER_AND_REVOKED = select(User, TOKEN_REVOKED).where(User.id == bindparam("user_id"))


@jwt.token_in_blocklist_loader
def is_token_revoked(jwt_header, jwt_payload):
    """Check the token and load its user in one query (the user loader runs next)."""
    jti = jwt_payload["jti"]
    try:
        user_id = int(jwt_payload["sub"])
    except (TypeError, ValueError):
        g.token_user = None
        return db.session.scalar(select(TOKEN_REVOKED), {"jti": jti})
    row = db.session.execute(TOKEN_USER_AND_REVOKED, {"jti": jti, "user_id": user_id}).first()
    g.token_user = row[0] if row else None
    return bool(row and row[1])


@jwt.user_lookup_loader
def load_user(jwt_header, jwt_payload):
    if "token_user" in g:
        return g.pop("token_user")
    try:
        return db.session.get(User, int(jwt_payload["sub"]))
    except (TypeError, ValueError):
        return None


# Each of these enforces a token and documents it (bearerAuth, 401, 403) in the spec.


def login_required(view):
    """A valid access token."""
    return apidoc.document_security(jwt_required()(view), 401)


def refresh_token_required(view):
    """A valid refresh token."""
    return apidoc.document_security(jwt_required(refresh=True)(view), 401)


def any_token_required(view):
    """A valid access or refresh token."""
    return apidoc.document_security(jwt_required(verify_type=False)(view), 401)


def admin_required(view):
    """An access token, plus the admin flag re-checked in the database (not the token)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, message="Admins only.")
        return view(*args, **kwargs)

    return apidoc.document_security(jwt_required()(wrapper), 401, 403)


# ---- helpers ----------------------------------------------------------------------


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def page_links(page: int, per_page: int, total: int) -> str:
    """An RFC 8288 Link header with first, prev, next and last."""
    last = max(1, -(-total // per_page))
    targets = {"first": 1, "last": last}
    if page > 1:
        targets["prev"] = min(page - 1, last)
    if page < last:
        targets["next"] = page + 1
    base = request.base_url
    links = []
    for rel, number in targets.items():
        query = {**request.args.to_dict(), "page": number, "per_page": per_page}
        links.append(f'<{base}?{urlencode(query)}>; rel="{rel}"')
    return ", ".join(links)


# Larger offsets are past the end of any table; they never reach the database.
MAX_OFFSET = 2**62


def paginate(statement, args, scalars=True):
    """Run one page of ``statement``; return (rows, headers) with X-Total-Count and Link.

    The total rides along on each row (COUNT(*) OVER ()), so a page costs one
    query; only a page past the end needs a separate count.
    """
    page, per_page = args["page"], args["per_page"]
    offset = (page - 1) * per_page
    rows, total = [], None
    if offset < MAX_OFFSET:
        result = db.session.execute(
            statement.add_columns(func.count().over().label("total_rows"))
            .limit(per_page)
            .offset(offset)
        ).all()
        if result:
            total = result[0][-1]
            rows = [row[0] for row in result] if scalars else [row[:-1] for row in result]
    if total is None:
        total = db.session.scalar(
            select(func.count()).select_from(statement.order_by(None).subquery())
        )
    headers = {"X-Total-Count": str(total), "Link": page_links(page, per_page, total)}
    return rows, headers


def lean_response(body, headers=None):
    """A JSON response built outside flask-smorest (its schema still documents it)."""
    response = jsonify(body)
    if headers:
        response.headers.update(headers)
    return response


def created(body, endpoint, **values):
    return body, 201, {"Location": url_for(endpoint, **values)}


def get_movie_or_404(movie_id: int) -> Movie:
    movie = db.session.get(Movie, movie_id)
    if movie is None or movie.deleted_at is not None:
        abort(404, message=f"Movie {movie_id} not found.")
    return movie


def get_showtime_or_404(showtime_id: int, lock: bool = False) -> Showtime:
    """The showtime, or 404. ``lock`` holds its row until the commit (PostgreSQL).

    Bookings, cancellations and admin changes of a showtime lock its row first,
    always before its seats, so an admin's "has bookings?" check and a booking
    cannot pass each other, and the two never deadlock.
    """
    showtime = db.session.get(Showtime, showtime_id, with_for_update=lock)
    if showtime is None or showtime.deleted_at is not None:
        abort(404, message=f"Showtime {showtime_id} not found.")
    return showtime


def lock_showtimes(*conditions):
    """Hold these showtimes' rows until the commit, in id order (see get_showtime_or_404)."""
    db.session.execute(select(Showtime.id).where(*conditions).order_by(Showtime.id).with_for_update())


# Seat counts per showtime as correlated subqueries: one statement for any list.
def seats_total_column():
    return (
        select(func.count(Seat.id))
        .where(Seat.showtime_id == Showtime.id)
        .correlate(Showtime)
        .scalar_subquery()
    )


def seats_available_column():
    return (
        select(func.count(Seat.id))
        .where(Seat.showtime_id == Showtime.id, Seat.reservation_id.is_(None))
        .correlate(Showtime)
        .scalar_subquery()
    )


def showtimes_query():
    """Active showtimes of active movies, with title and seat counts, by start time."""
    return (
        select(
            Showtime,
            Movie.title,
            seats_total_column().label("seats_total"),
            seats_available_column().label("seats_available"),
        )
        .join(Showtime.movie)
        .where(Showtime.deleted_at.is_(None), Movie.deleted_at.is_(None))
        .order_by(Showtime.start_time, Showtime.id)
    )


def showtime_body(showtime, movie_title, seats_total, seats_available) -> dict:
    return {
        "id": showtime.id,
        "movie_id": showtime.movie_id,
        "movie_title": movie_title,
        "start_time": showtime.start_time,
        "end_time": showtime.end_time,
        "hall": showtime.hall,
        "price": showtime.price_cents,
        "seats_total": seats_total,
        "seats_available": seats_available,
    }


def showtime_with_counts(showtime_id: int) -> dict:
    row = db.session.execute(showtimes_query().where(Showtime.id == showtime_id)).first()
    if row is None:
        abort(404, message=f"Showtime {showtime_id} not found.")
    return showtime_body(*row)


def filter_showtimes(statement, args):
    """Apply ?date=, ?from=, ?to= and ?movie_id= to a showtime query."""
    if args.get("date"):
        day_start, day_end = s.local_day_bounds(args["date"])
        statement = statement.where(Showtime.start_time >= day_start, Showtime.start_time < day_end)
    if args.get("from_"):
        statement = statement.where(Showtime.start_time >= args["from_"])
    if args.get("to"):
        statement = statement.where(Showtime.start_time <= args["to"])
    if args.get("movie_id"):
        statement = statement.where(Showtime.movie_id == args["movie_id"])
    return statement


def hall_end_time(movie: Movie, start: datetime) -> datetime:
    minutes = (movie.duration_minutes or 120) + current_app.config["CLEANING_MINUTES"]
    return start + timedelta(minutes=minutes)


def check_hall_free(hall: str, start: datetime, end: datetime, ignore_id=None):
    """409 when another showtime occupies ``hall`` between ``start`` and ``end``."""
    if db.session.get_bind().dialect.name == "postgresql":
        # Serialise schedulers of the same hall so two overlapping inserts cannot race.
        db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:hall))"), {"hall": hall})
    statement = (
        select(Showtime.id, Showtime.start_time)
        .where(
            Showtime.hall == hall,
            Showtime.deleted_at.is_(None),
            Showtime.start_time < end,
            Showtime.end_time > start,
        )
        .limit(1)
    )
    if ignore_id is not None:
        statement = statement.where(Showtime.id != ignore_id)
    clash = db.session.execute(statement).first()
    if clash:
        when = clash.start_time.astimezone(current_app.config["CINEMA_TZ"]).isoformat()
        abort(409, message=f"Hall {hall!r} is taken by showtime {clash.id} starting {when}.")


def has_confirmed_reservations(*conditions) -> bool:
    statement = (
        select(Reservation.id)
        .join(Reservation.showtime)
        .where(Reservation.status == CONFIRMED, *conditions)
        .limit(1)
    )
    return db.session.scalar(statement) is not None


def bump_showtime_version(showtime_id: int):
    """Change the showtime's ETag, in the transaction that changes it or its seats."""
    db.session.execute(
        update(Showtime)
        .where(Showtime.id == showtime_id)
        .values(version=Showtime.version + 1)
        .execution_options(synchronize_session=False)
    )


def not_modified(tag: str):
    """A bodiless 304 when the client already holds ``tag`` (If-None-Match), else None."""
    if request.if_none_match.contains_weak(tag):
        response = Response(status=304)
        response.set_etag(tag)
        return response
    return None


def etag_header(tag: str) -> dict:
    return {"ETag": f'"{tag}"'}


def showtime_and_tag(showtime_id: int):
    """(showtime, movie title, ETag) in one query; the tag follows both versions. 404 if gone."""
    row = db.session.execute(
        select(Showtime, Movie.title, Movie.version)
        .join(Showtime.movie)
        .where(Showtime.id == showtime_id, Showtime.deleted_at.is_(None))
    ).first()
    if row is None:
        abort(404, message=f"Showtime {showtime_id} not found.")
    showtime, title, movie_version = row
    return showtime, title, f"showtime-{showtime_id}-{showtime.version}-{movie_version}"


def json_body_required(data):
    if not data:
        abort(400, message="The request body must be a JSON object with at least one field.")


# ---- auth -------------------------------------------------------------------------


def login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def register_limit():
    return current_app.config["REGISTER_RATE_LIMIT"]


@auth_blp.route("/register", methods=["POST"])
@limiter.limit(register_limit)
@auth_blp.arguments(s.RegisterSchema, example=apidoc.EXAMPLES["register"])
@auth_blp.response(
    201, s.RegisterResponseSchema, headers=apidoc.CREATED_HEADERS, example=apidoc.EXAMPLES["registered"]
)
@auth_blp.alt_response(409, description="Username or email already taken")
@auth_blp.alt_response(429, description="Past REGISTER_RATE_LIMIT", headers=apidoc.RETRY_HEADERS)
def register(data):
    """Create an account."""
    username_key, email = data["username"].lower(), data["email"].lower()
    password_hash = hash_password(data["password"])  # before the transaction starts
    taken = db.session.execute(
        select(User.username_key, User.email).where(
            or_(User.username_key == username_key, User.email == email)
        )
    ).first()
    if taken:
        what = "username" if taken.username_key == username_key else "email"
        abort(409, message=f"That {what} is already registered.")
    user = User(username=data["username"], email=email, password_hash=password_hash)
    db.session.add(user)
    db.session.commit()
    return created(
        {"message": "User registered successfully", "user": user}, "users.get_me"
    )


@auth_blp.route("/login", methods=["POST"])
@limiter.limit(login_limit)
@auth_blp.arguments(s.LoginSchema, example=apidoc.EXAMPLES["login"])
@auth_blp.response(200, s.TokenResponseSchema, example=apidoc.EXAMPLES["logged_in"])
@auth_blp.alt_response(401, description="Unknown user or wrong password")
@auth_blp.alt_response(429, description="Past LOGIN_RATE_LIMIT", headers=apidoc.RETRY_HEADERS)
def login(data):
    """Exchange a username (or email) and password for tokens."""
    key = data["username"].strip().lower()
    user = db.session.scalar(select(User).where(or_(User.username_key == key, User.email == key)))
    if user is None or not check_password_hash(user.password_hash, data["password"]):
        abort(401, message="Wrong username or password.")
    claims = {"is_admin": user.is_admin}
    return {
        "access_token": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh_token": create_refresh_token(identity=str(user.id), additional_claims=claims),
        "user": user,
    }


@auth_blp.route("/refresh", methods=["POST"])
@refresh_token_required
@auth_blp.response(200, s.AccessTokenSchema)
def refresh():
    """Exchange a refresh token for a new access token."""
    claims = {"is_admin": current_user.is_admin}
    return {"access_token": create_access_token(identity=str(current_user.id), additional_claims=claims)}


@auth_blp.route("/logout", methods=["POST"])
@any_token_required
@auth_blp.response(200, s.MessageSchema)
def logout():
    """Revoke the token that made this request."""
    token = get_jwt()
    expires = datetime.fromtimestamp(token["exp"], timezone.utc)
    db.session.add(RevokedToken(jti=token["jti"], expires_at=expires))
    # Forget tokens that have expired anyway, so the table stays small.
    db.session.execute(db.delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
    db.session.commit()
    return {"message": "Token revoked"}


@users_blp.route("/me", methods=["GET"])
@login_required
@users_blp.response(200, s.UserSchema)
def get_me():
    """Your own profile."""
    return current_user


@users_blp.route("/users", methods=["GET"])
@admin_required
@users_blp.arguments(s.UsersQuerySchema, location="query")
@users_blp.response(200, s.UserSchema(many=True), headers=apidoc.PAGE_HEADERS)
def list_users(args):
    """Every user, by id (admins)."""
    return paginate(select(User).order_by(User.id), args)


@users_blp.route("/users/promote/<int:user_id>", methods=["POST"])
@admin_required
@users_blp.response(200, s.PromoteResponseSchema, example=apidoc.EXAMPLES["promoted"])
@users_blp.alt_response(404, description="Unknown user")
def promote_user(user_id):
    """Make a user an admin (idempotent)."""
    user = db.get_or_404(User, user_id, description=f"User {user_id} not found.")
    user.is_admin = True
    db.session.commit()
    return {"message": "User promoted to admin successfully", "user": user}


# ---- movies -----------------------------------------------------------------------


@movies_blp.route("/movies", methods=["POST"])
@admin_required
@movies_blp.arguments(s.MovieSchema, example=apidoc.EXAMPLES["movie"])
@movies_blp.response(201, s.MovieSchema, headers=apidoc.CREATED_HEADERS)
def create_movie(data):
    """Add a movie to the catalogue."""
    movie = Movie(**data)
    db.session.add(movie)
    db.session.commit()
    return created(movie, "movies.get_movie", movie_id=movie.id)


@movies_blp.route("/movies", methods=["GET"])
@login_required
@movies_blp.arguments(s.MoviesQuerySchema, location="query")
@movies_blp.response(200, s.MovieSchema(many=True), headers=apidoc.PAGE_HEADERS)
def list_movies(args):
    """The catalogue, by title; ``?genre=`` filters (case-insensitive)."""
    statement = select(Movie).where(Movie.deleted_at.is_(None)).order_by(Movie.title, Movie.id)
    if args.get("genre"):
        statement = statement.where(func.lower(Movie.genre) == args["genre"].lower())
    movies, headers = paginate(statement, args)
    return lean_response([MOVIE_DUMPER.dump(movie) for movie in movies], headers)


MOVIE_DUMPER = s.LeanDumper(s.MovieSchema())


@movies_blp.route("/movies/search", methods=["GET"])
@login_required
@movies_blp.arguments(s.MovieSearchQuerySchema, location="query")
@movies_blp.response(200, s.MovieSchema(many=True), headers=apidoc.PAGE_HEADERS)
def search_movies(args):
    """Case-insensitive substring search on title and/or genre, or ``q`` for either."""
    statement = select(Movie).where(Movie.deleted_at.is_(None)).order_by(Movie.title, Movie.id)
    if args.get("title"):
        statement = statement.where(Movie.title.icontains(args["title"], autoescape=True))
    if args.get("genre"):
        statement = statement.where(Movie.genre.icontains(args["genre"], autoescape=True))
    if args.get("q"):
        statement = statement.where(
            or_(
                Movie.title.icontains(args["q"], autoescape=True),
                Movie.genre.icontains(args["q"], autoescape=True),
            )
        )
    movies, headers = paginate(statement, args)
    return lean_response([MOVIE_DUMPER.dump(movie) for movie in movies], headers)


@movies_blp.route("/movies/<int:movie_id>", methods=["GET"])
@login_required
@movies_blp.response(200, s.MovieDetailSchema)
@movies_blp.alt_response(404, description="Unknown or deleted movie")
@movies_blp.alt_response(304, description="Not modified (If-None-Match)")
def get_movie(movie_id):
    """One movie with its upcoming showtimes; carries an ETag."""
    now = utcnow()
    upcoming = (
        select(
            func.count(Showtime.id).label("count"),
            func.coalesce(func.sum(Showtime.version), 0).label("versions"),
            func.coalesce(func.sum(Showtime.id), 0).label("ids"),
        )
        .where(
            Showtime.movie_id == movie_id,
            Showtime.deleted_at.is_(None),
            Showtime.start_time >= now,
        )
        .subquery()
    )
    state = db.session.execute(
        select(Movie, upcoming)
        .join(upcoming, true())  # one row of counts next to the movie
        .where(Movie.id == movie_id, Movie.deleted_at.is_(None))
    ).first()
    if state is None:
        abort(404, message=f"Movie {movie_id} not found.")
    # Changes to the movie, to any upcoming showtime (seats included) or to which
    # showtimes are upcoming all change one of these numbers.
    movie = state.Movie
    tag = f"movie-{movie_id}-{movie.version}-{state.count}-{state.versions}-{state.ids}"
    cached = not_modified(tag)
    if cached:
        return cached
    rows = db.session.execute(
        showtimes_query().where(Showtime.movie_id == movie_id, Showtime.start_time >= now)
    ).all()
    body = {
        **{name: getattr(movie, name) for name in s.MovieSchema().fields},
        "showtimes": [showtime_body(*row) for row in rows],
    }
    return body, etag_header(tag)


@movies_blp.route("/movies/<int:movie_id>", methods=["PUT"])
@admin_required
@movies_blp.arguments(s.MovieSchema(partial=True), example={"duration_minutes": 150})
@movies_blp.response(200, s.MovieSchema)
@movies_blp.alt_response(404, description="Unknown or deleted movie")
@movies_blp.alt_response(409, description="A longer film would overlap the next showtime in a hall")
def update_movie(data, movie_id):
    """Change a movie; send only the fields that change."""
    json_body_required(data)
    movie = get_movie_or_404(movie_id)
    old_poster = movie.poster_url
    duration_changed = "duration_minutes" in data and data["duration_minutes"] != movie.duration_minutes
    for name, value in data.items():
        setattr(movie, name, value)
    movie.version += 1
    if duration_changed:
        # The hall stays busy for the new length: recompute and re-check upcoming showtimes.
        upcoming = db.session.scalars(
            select(Showtime).where(
                Showtime.movie_id == movie.id,
                Showtime.deleted_at.is_(None),
                Showtime.start_time >= utcnow(),
            )
        ).all()
        for showtime in upcoming:
            showtime.end_time = hall_end_time(movie, showtime.start_time)
            check_hall_free(showtime.hall, showtime.start_time, showtime.end_time, showtime.id)
    db.session.commit()
    if movie.poster_url != old_poster:
        discard_unused_poster(old_poster)
    return movie


@movies_blp.route("/movies/<int:movie_id>", methods=["DELETE"])
@admin_required
@movies_blp.response(200, s.MessageSchema)
@movies_blp.alt_response(404, description="Unknown or deleted movie")
@movies_blp.alt_response(409, description="Upcoming showtimes have bookings")
def delete_movie(movie_id):
    """Archive a movie and its showtimes; refused while upcoming showtimes are booked."""
    movie = get_movie_or_404(movie_id)
    lock_showtimes(Showtime.movie_id == movie.id)
    if has_confirmed_reservations(Showtime.movie_id == movie.id, Showtime.start_time > utcnow()):
        abort(
            409,
            message=f"Movie {movie_id} has upcoming showtimes with bookings; cancel them first.",
        )
    now = utcnow()
    movie.deleted_at = now
    movie.version += 1
    db.session.execute(
        update(Showtime)
        .where(Showtime.movie_id == movie.id, Showtime.deleted_at.is_(None))
        .values(deleted_at=now, version=Showtime.version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    discard_unused_poster(movie.poster_url)
    return {"message": f"Movie {movie_id} deleted"}


# ---- posters ----------------------------------------------------------------------

# Room for the multipart framing and the other fields around the image itself.
POSTER_BODY_ALLOWANCE = 64 * 1024
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


def poster_upload(with_movie_id: bool):
    """Admins only; documents the body, the answer and the errors of a poster upload."""
    decorators = [
        admin_required,
        movies_blp.doc(requestBody=poster_request_body(with_movie_id)),
        movies_blp.response(201, s.PosterSchema),
        movies_blp.alt_response(400, description="Not a JPEG, PNG, WebP or GIF image, or a bad movie_id"),
        movies_blp.alt_response(404, description="No such movie"),
        movies_blp.alt_response(413, description="The image is over MAX_POSTER_BYTES"),
        movies_blp.alt_response(502, description="The image host failed; nothing changed"),
    ]

    def decorate(view):
        for decorator in reversed(decorators):
            view = decorator(view)
        return view

    return decorate


@movies_blp.route("/upload-poster", methods=["POST"])
@poster_upload(with_movie_id=True)
def upload_poster():
    """Store a poster: multipart field ``image`` (or ``file``), or JSON ``{"image": base64}``.

    With ``movie_id`` the image becomes that movie's ``poster_url``.
    """
    data, movie_id = read_poster_request()
    return save_poster(data, movie_id)


@movies_blp.route("/movies/<int:movie_id>/poster", methods=["POST"])
@poster_upload(with_movie_id=False)
def upload_movie_poster(movie_id):
    """Store a poster and make it this movie's ``poster_url``."""
    data, _ = read_poster_request(movie_id_allowed=False)
    return save_poster(data, movie_id)


@movies_blp.route("/posters/<name>", methods=["GET"])
@movies_blp.doc(
    responses={200: {"description": "The image", "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}}
)
@movies_blp.alt_response(404, description="No such poster")
def get_poster(name):
    """A locally stored poster (public, cached for a year: its name is its content hash)."""
    found = posters.local_poster(name)
    if found is None:
        abort(404, message="Poster not found.")
    folder, content_type = found
    response = send_from_directory(folder, name, mimetype=content_type, max_age=365 * 24 * 3600)
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response


def read_poster_request(movie_id_allowed=True) -> tuple[bytes, int | None]:
    """The image bytes and optional movie id, from a multipart or JSON body."""
    # Nothing below may hold SQLite's write lock (taken by the admin check) while
    # a large body arrives or the image host answers.
    db.session.rollback()
    limit = current_app.config["MAX_POSTER_BYTES"]
    too_large = f"The image is larger than {limit} bytes."
    if request.mimetype == "multipart/form-data":
        request.max_content_length = limit + POSTER_BODY_ALLOWANCE
        upload = request.files.get("image")
        if upload is None:
            upload = request.files.get("file")
        if upload is None:
            abort(400, message="Send the image in the multipart field 'image' (or 'file').",
                  errors={"image": ["Missing file."]})
        data = upload.stream.read(limit + 1)
        movie_id = request.form.get("movie_id")
    elif request.is_json:
        body_limit = base64_length(limit) + POSTER_BODY_ALLOWANCE
        # A streamed body (no Content-Length) is cut at the limit, not refused:
        # allow one byte more, and a body that reaches it is too large.
        request.max_content_length = body_limit + 1
        if len(request.get_data()) > body_limit:
            abort(413, message=too_large)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(400, message="The request body must be a JSON object with an 'image' field.")
        data, movie_id = decode_image(body.get("image"), limit), body.get("movie_id")
    else:
        abort(415, message="Send the image as multipart/form-data or as JSON with base64.")
    if len(data) > limit:
        abort(413, message=too_large)
    if not data:
        abort(400, message="The image is empty.", errors={"image": ["Empty file."]})
    if movie_id in (None, "") or not movie_id_allowed:
        return data, None
    if isinstance(movie_id, str) and movie_id.isdecimal():
        movie_id = int(movie_id)
    if isinstance(movie_id, bool) or not isinstance(movie_id, int) or not 1 <= movie_id < 2**31:
        abort(400, message="movie_id must be a movie's id.", errors={"movie_id": ["Not a valid id."]})
    return data, movie_id


def base64_length(size: int) -> int:
    """How long ``size`` bytes are in base64: 4 characters for every 3 bytes begun."""
    return -(-size // 3) * 4


def decode_image(image, limit: int) -> bytes:
    """The bytes of a JSON ``image``: base64, or a base64 ``data:`` URL."""
    if not isinstance(image, str) or not image.strip():
        abort(400, message="'image' must be the image as base64 or a data: URL.",
              errors={"image": ["Missing or not a string."]})
    if image.startswith("data:"):
        header, _, image = image.partition(",")
        if not header.endswith(";base64"):
            abort(400, message="The data: URL must be base64 encoded.", errors={"image": ["Not base64."]})
    encoded = "".join(image.split())
    if len(encoded) > base64_length(limit):
        abort(413, message=f"The image is larger than {limit} bytes.")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        abort(400, message="'image' is not valid base64.", errors={"image": ["Not valid base64."]})


def save_poster(data: bytes, movie_id: int | None):
    """Store the image; when ``movie_id`` is given, make it that movie's poster."""
    if movie_id is not None:
        get_movie_or_404(movie_id)  # before uploading anything
        db.session.rollback()  # and no lock held during the upload
    try:
        stored = posters.store_poster(data)
    except posters.NotAnImage as error:
        abort(400, message=str(error), errors={"image": [str(error)]})
    except posters.ImageHostError as error:
        abort(502, message=str(error))
    body = {**stored, "movie": None}
    if movie_id is not None:
        movie = db.session.get(Movie, movie_id)
        if movie is None or movie.deleted_at is not None:  # deleted during the upload
            posters.discard_poster(stored["url"])
            abort(404, message=f"Movie {movie_id} not found.")
        old_poster, movie.poster_url = movie.poster_url, stored["url"]
        movie.version += 1  # a new ETag for GET /movies/<id>
        db.session.commit()
        if old_poster != movie.poster_url:
            discard_unused_poster(old_poster)
        body["movie"] = movie
    return body, 201, {"Location": stored["url"]}


def discard_unused_poster(url: str | None):
    """After a commit: remove an image from the host once no active movie shows it."""
    if not url:
        return
    in_use = db.session.scalar(
        select(Movie.id).where(Movie.poster_url == url, Movie.deleted_at.is_(None)).limit(1)
    )
    db.session.rollback()
    if in_use is None:
        posters.discard_poster(url)


# ---- showtimes --------------------------------------------------------------------


@showtimes_blp.route("/showtimes", methods=["POST"])
@admin_required
@showtimes_blp.arguments(s.ShowtimeCreateSchema, example=apidoc.EXAMPLES["showtime"])
@showtimes_blp.response(201, s.ShowtimeSchema, headers=apidoc.CREATED_HEADERS)
@showtimes_blp.alt_response(404, description="Unknown movie")
@showtimes_blp.alt_response(409, description="The hall is taken at that time")
def create_showtime(data):
    """Schedule a movie in a hall."""
    movie = get_movie_or_404(data["movie_id"])
    if data["start_time"] <= utcnow():
        abort(400, message="start_time must be in the future.", errors={"start_time": ["Must be in the future."]})
    hall = data["hall"].strip()
    end = hall_end_time(movie, data["start_time"])
    check_hall_free(hall, data["start_time"], end)
    showtime = Showtime(
        movie=movie,
        start_time=data["start_time"],
        end_time=end,
        hall=hall,
        price_cents=data.get("price", current_app.config["SEAT_PRICE_CENTS"]),
    )
    db.session.add(showtime)
    db.session.commit()
    return created(showtime_body(showtime, movie.title, 0, 0), "showtimes.get_showtime", showtime_id=showtime.id)


@showtimes_blp.route("/showtimes", methods=["GET"])
@login_required
@showtimes_blp.arguments(s.ShowtimeRangeQuerySchema, location="query")
@showtimes_blp.response(200, s.ShowtimeSchema(many=True), headers=apidoc.PAGE_HEADERS)
def list_showtimes(args):
    """Upcoming showtimes (or those in ?date= / ?from= / ?to=), by start time."""
    statement = filter_showtimes(showtimes_query(), args)
    if not (args.get("date") or args.get("from_")):
        statement = statement.where(Showtime.start_time >= utcnow())
    rows, headers = paginate(statement, args, scalars=False)
    return [showtime_body(*row) for row in rows], headers


@showtimes_blp.route("/showtimes/search", methods=["GET"])
@login_required
@showtimes_blp.arguments(s.ShowtimeSearchQuerySchema, location="query")
@showtimes_blp.response(200, s.ShowtimeSchema(many=True), headers=apidoc.PAGE_HEADERS)
def search_showtimes(args):
    """Showtimes on a local date (?date=YYYY-MM-DD) or between ?from= and ?to=."""
    rows, headers = paginate(filter_showtimes(showtimes_query(), args), args, scalars=False)
    return [showtime_body(*row) for row in rows], headers


@showtimes_blp.route("/showtimes/<int:showtime_id>", methods=["GET"])
@login_required
@showtimes_blp.response(200, s.ShowtimeSchema)
@showtimes_blp.alt_response(404, description="Unknown or deleted showtime")
@showtimes_blp.alt_response(304, description="Not modified (If-None-Match)")
def get_showtime(showtime_id):
    """One showtime with its seat counts; carries an ETag."""
    tag = showtime_and_tag(showtime_id)[2]
    return not_modified(tag) or (showtime_with_counts(showtime_id), etag_header(tag))


@showtimes_blp.route("/showtimes/<int:showtime_id>", methods=["PUT"])
@admin_required
@showtimes_blp.arguments(s.ShowtimeUpdateSchema)
@showtimes_blp.response(200, s.ShowtimeSchema)
@showtimes_blp.alt_response(404, description="Unknown showtime or movie")
@showtimes_blp.alt_response(409, description="Booked, or the hall is taken")
def update_showtime(data, showtime_id):
    """Move a showtime, change its hall, movie or price; refused once it is booked."""
    json_body_required(data)
    showtime = get_showtime_or_404(showtime_id, lock=True)
    if has_confirmed_reservations(Reservation.showtime_id == showtime.id):
        abort(409, message=f"Showtime {showtime_id} has bookings; it cannot change.")
    movie = get_movie_or_404(data["movie_id"]) if "movie_id" in data else showtime.movie
    start = data.get("start_time", showtime.start_time)
    if "start_time" in data and start <= utcnow():
        abort(400, message="start_time must be in the future.", errors={"start_time": ["Must be in the future."]})
    hall = data.get("hall", showtime.hall).strip()
    end = hall_end_time(movie, start)
    check_hall_free(hall, start, end, ignore_id=showtime.id)
    showtime.movie, showtime.start_time, showtime.end_time, showtime.hall = movie, start, end, hall
    if "price" in data:
        showtime.price_cents = data["price"]
    showtime.version += 1
    db.session.commit()
    return showtime_with_counts(showtime.id)


@showtimes_blp.route("/showtimes/<int:showtime_id>", methods=["DELETE"])
@admin_required
@showtimes_blp.response(200, s.MessageSchema)
@showtimes_blp.alt_response(404, description="Unknown or deleted showtime")
@showtimes_blp.alt_response(409, description="The showtime has bookings")
def delete_showtime(showtime_id):
    """Archive a showtime; refused while it is upcoming and booked."""
    showtime = get_showtime_or_404(showtime_id, lock=True)
    if showtime.start_time > utcnow() and has_confirmed_reservations(
        Reservation.showtime_id == showtime.id
    ):
        abort(409, message=f"Showtime {showtime_id} has bookings; cancel them first.")
    showtime.deleted_at = utcnow()
    showtime.version += 1
    db.session.commit()
    return {"message": f"Showtime {showtime_id} deleted"}


@showtimes_blp.route("/showtimes/<int:showtime_id>/seats", methods=["GET"])
@login_required
@showtimes_blp.response(200, s.SeatMapSchema)
@showtimes_blp.alt_response(404, description="Unknown or deleted showtime")
@showtimes_blp.alt_response(304, description="Not modified (If-None-Match)")
def seat_map(showtime_id):
    """Every seat of a showtime, row by row in natural order, with its status.

    Carries an ETag that changes with any seat's status; pollers send it back in
    If-None-Match and get a bodiless 304 while nothing changed.
    """
    # "yours" differs between users, so the user is part of the tag.
    showtime, movie_title, tag = showtime_and_tag(showtime_id)
    tag = f"{tag}-user-{current_user.id}"
    cached = not_modified(tag)
    if cached:
        return cached
    seats = db.session.execute(
        select(Seat.label, Seat.row, Reservation.user_id)
        .outerjoin(Reservation, Seat.reservation_id == Reservation.id)
        .where(Seat.showtime_id == showtime_id)
        .order_by(func.length(Seat.row), Seat.row, Seat.number)
    ).all()
    rows, available = [], 0
    for label, row, holder in seats:
        if not rows or rows[-1]["row"] != row:
            rows.append({"row": row, "seats": []})
        if holder is None:
            status, available = "available", available + 1
        else:
            status = "yours" if holder == current_user.id else "booked"
        rows[-1]["seats"].append({"label": label, "status": status})
    # The seats are plain strings already: only the header goes through the
    # schema, so a 300-seat map is not serialised field by field.
    body = SEAT_MAP_HEADER.dump(
        {
            "showtime_id": showtime.id,
            "movie_title": movie_title,
            "start_time": showtime.start_time,
            "hall": showtime.hall,
            "price": showtime.price_cents,
            "seats_total": len(seats),
            "seats_available": available,
        }
    )
    response = jsonify({**body, "rows": rows})
    response.set_etag(tag)
    return response


SEAT_MAP_HEADER = s.SeatMapSchema(exclude=("rows",))


# ---- seats ------------------------------------------------------------------------


@seats_blp.route("/seats", methods=["POST"])
@admin_required
@seats_blp.arguments(s.SeatsCreateSchema, example=apidoc.EXAMPLES["seats"])
@seats_blp.response(
    201, s.SeatsCreatedSchema, headers=apidoc.CREATED_HEADERS, example=apidoc.EXAMPLES["seats_added"]
)
@seats_blp.alt_response(404, description="Unknown showtime")
@seats_blp.alt_response(409, description="A label already exists (none added)")
def add_seats(data):
    """Add seats to a showtime: a list of labels, or rows × seats per row."""
    showtime = get_showtime_or_404(data["showtime_id"])
    if "seats" in data:
        labels = data["seats"]
    else:
        labels = [
            f"{row}{number}"
            for row in s.parse_rows(data["rows"])
            for number in range(1, data["seats_per_row"] + 1)
        ]
    existing = db.session.scalars(
        select(Seat.label).where(Seat.showtime_id == showtime.id, Seat.label.in_(labels))
    ).all()
    if existing:
        taken = sorted(existing, key=lambda label: seat_sort_key(split_label(label)))
        abort(
            409,
            message=f"Seats already exist: {', '.join(taken)}. None were added.",
            errors={"seats": taken},
        )
    db.session.execute(
        insert(Seat),
        [
            {"showtime_id": showtime.id, "label": label, "row": seat.row, "number": seat.number}
            for label in labels
            for seat in [split_label(label)]
        ],
    )
    bump_showtime_version(showtime.id)
    db.session.commit()
    return created(
        {"message": "Seats added successfully", "seats": labels},
        "showtimes.seat_map",
        showtime_id=showtime.id,
    )


def split_label(label: str) -> Seat:
    match = s.SEAT_LABEL_RE.match(label)
    return Seat(label=label, row=match.group(1), number=int(match.group(2)))


# ---- reservations -----------------------------------------------------------------


def reservation_query():
    return select(Reservation).options(
        joinedload(Reservation.showtime).joinedload(Showtime.movie),
        selectinload(Reservation.seats),
    )


def get_reservation_or_404(reservation_id: int) -> Reservation:
    """The reservation, if it is the caller's or the caller is an admin; else 404."""
    reservation = db.session.scalar(reservation_query().where(Reservation.id == reservation_id))
    if reservation is None or (
        reservation.user_id != current_user.id and not current_user.is_admin
    ):
        # Same answer whether it does not exist or belongs to someone else.
        abort(404, message=f"Reservation {reservation_id} not found.")
    return reservation


@reservations_blp.route("/reservations", methods=["POST"])
@login_required
@reservations_blp.arguments(s.ReservationCreateSchema, example=apidoc.EXAMPLES["reservation"])
@reservations_blp.response(
    201, s.ReservationCreatedSchema, headers=apidoc.CREATED_HEADERS, example=apidoc.EXAMPLES["reserved"]
)
@reservations_blp.alt_response(404, description="Unknown showtime")
@reservations_blp.alt_response(409, description="A seat is taken, or the showtime started")
def create_reservation(data):
    """Book one or more seats: all of them or none."""
    showtime = get_showtime_or_404(data["showtime_id"], lock=True)
    if showtime.start_time <= utcnow():
        abort(409, message=f"Showtime {showtime.id} has already started.")
    labels = data["seats"]
    # Locked in id order (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
    # writers): bookings that share seats queue on the first shared one instead
    # of deadlocking each other.
    seat_ids = dict(
        db.session.execute(
            select(Seat.label, Seat.id)
            .where(Seat.showtime_id == showtime.id, Seat.label.in_(labels))
            .order_by(Seat.id)
            .with_for_update()
        ).all()
    )
    unknown = [label for label in labels if label not in seat_ids]
    if unknown:
        abort(
            400,
            message=f"Showtime {showtime.id} has no seats {', '.join(unknown)}.",
            errors={"seats": [f"Unknown seat: {label}" for label in unknown]},
        )
    reservation = Reservation(
        user_id=current_user.id,
        showtime_id=showtime.id,
        status=CONFIRMED,
        total_cents=showtime.price_cents * len(labels),
    )
    db.session.add(reservation)
    db.session.flush()
    # The claim itself: only seats that are still free are taken. If fewer rows
    # changed than were asked for, someone else holds one of them, and the whole
    # transaction is rolled back.
    claimed = db.session.execute(
        update(Seat)
        .where(Seat.id.in_(seat_ids.values()), Seat.reservation_id.is_(None))
        .values(reservation_id=reservation.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != len(labels):
        db.session.rollback()
        taken = db.session.scalars(
            select(Seat.label).where(
                Seat.id.in_(seat_ids.values()), Seat.reservation_id.is_not(None)
            )
        ).all()
        taken = sorted(taken, key=lambda label: labels.index(label)) or labels
        abort(
            409,
            message=f"Seats {', '.join(taken)} are already booked; nothing was booked.",
            errors={"seats": taken},
        )
    db.session.execute(
        insert(reservation_seats),
        [{"reservation_id": reservation.id, "seat_id": seat_id} for seat_id in seat_ids.values()],
    )
    bump_showtime_version(showtime.id)
    db.session.commit()
    reservation = db.session.scalar(reservation_query().where(Reservation.id == reservation.id))
    send_booking_confirmation(reservation)
    return created(
        {"message": "Reservation confirmed", "reservation": reservation},
        "reservations.get_reservation",
        reservation_id=reservation.id,
    )


@reservations_blp.route("/reservations", methods=["GET"])
@login_required
@reservations_blp.arguments(s.ReservationsQuerySchema, location="query")
@reservations_blp.response(200, s.ReservationSchema(many=True), headers=apidoc.PAGE_HEADERS)
@reservations_blp.alt_response(403, description="?all=true from someone who is not an admin")
def list_reservations(args):
    """Your reservations, newest first; admins may pass ?all=true."""
    statement = reservation_query().order_by(Reservation.created_at.desc(), Reservation.id.desc())
    if args["all"]:
        if not current_user.is_admin:
            abort(403, message="Only admins may list every reservation.")
    else:
        statement = statement.where(Reservation.user_id == current_user.id)
    reservations, headers = paginate(statement, args)
    return lean_response([RESERVATION_DUMPER.dump(reservation) for reservation in reservations], headers)


RESERVATION_DUMPER = s.LeanDumper(s.ReservationSchema())


@reservations_blp.route("/reservations/<int:reservation_id>", methods=["GET"])
@login_required
@reservations_blp.response(200, s.ReservationSchema)
@reservations_blp.alt_response(404, description="Unknown, or someone else's")
def get_reservation(reservation_id):
    """One of your reservations."""
    return get_reservation_or_404(reservation_id)


@reservations_blp.route("/reservations/<int:reservation_id>", methods=["DELETE"])
@login_required
@reservations_blp.response(200, s.MessageSchema, example=apidoc.EXAMPLES["cancelled"])
@reservations_blp.alt_response(404, description="Unknown, or someone else's")
@reservations_blp.alt_response(409, description="Already cancelled, or the showtime started")
def cancel_reservation(reservation_id):
    """Cancel your reservation; its seats are free again at once."""
    reservation = get_reservation_or_404(reservation_id)
    if reservation.status == CANCELLED:
        abort(409, message=f"Reservation {reservation_id} is already cancelled.")
    lock_showtimes(Showtime.id == reservation.showtime_id)
    if reservation.showtime.start_time <= utcnow():
        abort(409, message="The showtime has started; the reservation can no longer be cancelled.")
    # Conditional, so that two cancels racing each other cannot both succeed.
    changed = db.session.execute(
        update(Reservation)
        .where(Reservation.id == reservation_id, Reservation.status == CONFIRMED)
        .values(status=CANCELLED, cancelled_at=utcnow(), updated_at=utcnow())
        # The email below describes the reservation as it now is.
        .execution_options(synchronize_session="evaluate")
    ).rowcount
    if not changed:
        db.session.rollback()
        abort(409, message=f"Reservation {reservation_id} is already cancelled.")
    # The same lock order as a booking, so a cancel and a booking never deadlock.
    db.session.execute(
        select(Seat.id).where(Seat.reservation_id == reservation_id).order_by(Seat.id).with_for_update()
    )
    db.session.execute(
        update(Seat)
        .where(Seat.reservation_id == reservation_id)
        .values(reservation_id=None)
        .execution_options(synchronize_session=False)
    )
    bump_showtime_version(reservation.showtime_id)
    db.session.commit()
    send_cancellation(reservation)
    return {"message": "Reservation cancelled successfully"}


# ---- admin report -----------------------------------------------------------------


def report_tag() -> str:
    """Changes with any booking, cancellation, seat, showtime or movie change (one query)."""
    movie_versions = select(func.coalesce(func.sum(Movie.version), 0)).scalar_subquery()
    count, versions, ids, movies = db.session.execute(
        select(
            func.count(Showtime.id),
            func.coalesce(func.sum(Showtime.version), 0),
            func.coalesce(func.sum(Showtime.id), 0),
            movie_versions,
        )
    ).one()
    return f"report-{count}-{versions}-{ids}-{movies}"


@admin_blp.route("/admin/report", methods=["GET"])
@admin_required
@admin_blp.arguments(s.ReportQuerySchema, location="query")
@admin_blp.response(200, s.ReportSchema, example=apidoc.EXAMPLES["report"])
@admin_blp.alt_response(304, description="Not modified (If-None-Match)")
def admin_report(args):
    """Bookings, tickets, revenue and utilisation, per showtime and in total; carries an ETag."""
    tag = report_tag()
    cached = not_modified(tag)
    if cached:
        return cached
    # The tag is read from the database on every request, so a body built for the
    # same tag and filters is still exact; dashboards that refresh cost one query.
    bodies = current_app.extensions["report_bodies"]
    key = (tag, tuple(sorted((name, str(value)) for name, value in args.items())))
    body = bodies.get(key)
    if body is None:
        body = current_app.json.dumps(build_report(args)) + "\n"  # kept encoded: 500 rows
        if len(bodies) >= REPORT_BODIES_KEPT:
            bodies.clear()
        bodies[key] = body
    return current_app.response_class(body, mimetype="application/json", headers=etag_header(tag))


REPORT_BODIES_KEPT = 32


def build_report(args) -> dict:
    """The report's body: one grouped query over showtimes, seats and reservations."""
    confirmed = Reservation.status == CONFIRMED
    per_showtime_bookings = (
        select(
            Reservation.showtime_id,
            func.count(Reservation.id).filter(confirmed).label("confirmed"),
            func.count(Reservation.id).filter(Reservation.status == CANCELLED).label("cancelled"),
            func.coalesce(func.sum(case((confirmed, Reservation.total_cents), else_=0)), 0).label("revenue"),
        )
        .group_by(Reservation.showtime_id)
        .subquery()
    )
    per_showtime_tickets = (
        select(Reservation.showtime_id, func.count().label("tickets"))
        .select_from(reservation_seats)
        .join(Reservation, Reservation.id == reservation_seats.c.reservation_id)
        .where(confirmed)
        .group_by(Reservation.showtime_id)
        .subquery()
    )
    per_showtime_seats = (
        select(Seat.showtime_id, func.count().label("seats"))
        .group_by(Seat.showtime_id)
        .subquery()
    )
    statement = (
        select(
            Showtime.id,
            Movie.title,
            Showtime.start_time,
            Showtime.hall,
            func.coalesce(per_showtime_seats.c.seats, 0),
            func.coalesce(per_showtime_tickets.c.tickets, 0),
            func.coalesce(per_showtime_bookings.c.confirmed, 0),
            func.coalesce(per_showtime_bookings.c.cancelled, 0),
            func.coalesce(per_showtime_bookings.c.revenue, 0),
        )
        .join(Showtime.movie)
        .outerjoin(per_showtime_seats, per_showtime_seats.c.showtime_id == Showtime.id)
        .outerjoin(per_showtime_tickets, per_showtime_tickets.c.showtime_id == Showtime.id)
        .outerjoin(per_showtime_bookings, per_showtime_bookings.c.showtime_id == Showtime.id)
        # Archived showtimes stay in the report while they have booking history.
        .where(or_(Showtime.deleted_at.is_(None), per_showtime_bookings.c.showtime_id.is_not(None)))
        .order_by(Showtime.start_time, Showtime.id)
    )
    statement = filter_showtimes(statement, args)
    report = {
        "total_reservations": 0,
        "tickets_sold": 0,
        "revenue_estimate": 0,
        "cancelled_reservations": 0,
    }
    showtimes = []
    for showtime_id, title, start, hall, seats, tickets, confirmed_count, cancelled, revenue in db.session.execute(statement):
        report["total_reservations"] += confirmed_count
        report["cancelled_reservations"] += cancelled
        report["tickets_sold"] += tickets
        report["revenue_estimate"] += revenue
        showtimes.append(
            {
                "showtime_id": showtime_id,
                "movie_title": title,
                "start_time": start,
                "hall": hall,
                "seats_total": seats,
                "seats_booked": tickets,
                "utilization_percent": round(100 * tickets / seats, 1) if seats else 0.0,
                "revenue": revenue,
            }
        )
    # Hundreds of rows: dumped lean, with the schemas that document them.
    body = REPORT_TOTALS_DUMPER.dump(report)
    body["showtimes"] = [REPORT_ROW_DUMPER.dump(row) for row in showtimes]
    return body


REPORT_TOTALS_DUMPER = s.LeanDumper(s.ReportSchema(exclude=("showtimes",)))
REPORT_ROW_DUMPER = s.LeanDumper(s.ReportShowtimeSchema())


@health_blp.route("/health", methods=["GET"])
@limiter.exempt  # polled by load balancers
@health_blp.response(200, s.HealthSchema, example=apidoc.EXAMPLES["health"])
@health_blp.alt_response(503, description="The database is unreachable")
def health():
    """Is the API up, and can it reach its database?"""
    try:
        db.session.execute(text("SELECT 1"))
    except OperationalError:
        db.session.rollback()
        abort(503, message="The database is unreachable.")
    return {"status": "ok", "database": "ok"}


if __name__ == "__main__":
    os.environ.setdefault("AUTO_MIGRATE", "1")  # a fresh SQLite file needs no extra step
    application = create_app()
    application.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "5500")),
        debug=os.environ.get("FLASK_DEBUG") == "1",
    )
