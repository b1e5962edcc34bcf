"""Settings: the defaults, the environment (and .env), and the generated signing key."""

import hashlib
import hmac
import os
import secrets
from datetime import timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import load_dotenv

import apidoc
import posters

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
    # Seconds a request waits for Redis to connect or answer before counting in memory.
    "RATELIMIT_STORAGE_TIMEOUT": 0.25,
    # When Redis is down, count in memory instead of failing requests.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    # Bearer tokens, not cookies: any origin may call the API unless narrowed.
    "CORS_ORIGINS": "*",
    # ETag lets a browser poll with If-None-Match; Retry-After says how long to back off.
    "CORS_EXPOSE_HEADERS": ["X-Total-Count", "Link", "Location", "ETag", "Retry-After", "Idempotent-Replayed"],
    "CORS_SEND_WILDCARD": True,  # "*" itself rather than the caller's origin echoed back
    "RATELIMIT_HEADERS_ENABLED": True,
    # Proxies in front of the app whose X-Forwarded-For (and -Proto) are believed; 0 = none.
    "TRUSTED_PROXIES": 0,
    # Where clients reach the API: the base of stored local poster URLs (never the Host header).
    "PUBLIC_URL": "http://localhost:5500",
    "PASSWORD_HASH_METHOD": "scrypt",
    "LOG_LEVEL": "INFO",
    "ADMIN_USERNAME": None,
    "ADMIN_EMAIL": None,
    "ADMIN_PASSWORD": None,
    "RESEND_API_KEY": None,
    "RESEND_FROM": "Cinema <onboarding@resend.dev>",
    "RESEND_API_URL": "https://api.resend.com",
    "EMAIL_TIMEOUT": 5,
    # Minutes after which a pending email counts as lost (its worker stopped before the
    # send): send-pending-emails then sends it. Younger ones may be in flight.
    "EMAIL_PENDING_AFTER_MINUTES": 10,
    # Hours a retried POST /reservations or DELETE with the same Idempotency-Key gets
    # the first answer back instead of running again.
    "IDEMPOTENCY_KEY_HOURS": 24,
    # Seconds a seat hold keeps its seats (POST /holds), and the most a hold may last,
    # counted from when it was made, however often it is extended.
    "HOLD_SECONDS": 600,
    "HOLD_MAX_SECONDS": 1800,
    # Seats of one showtime a guest may have held or booked at once (admins: no limit).
    "MAX_SEATS_PER_USER_PER_SHOWTIME": 10,
    # Guests may cancel seats until this many minutes before the start; admins until the start.
    "CANCELLATION_CUTOFF_MINUTES": 30,
    # The door admits a ticket from this many minutes before the start until the film ends.
    "CHECK_IN_OPENS_MINUTES": 60,
    # Unknown ticket secrets a client address may try (POST /check-ins answering 404).
    "CHECK_IN_RATE_LIMIT": "30 per minute",
    # Key of the ticket secrets (see tickets.py); derived from JWT_SECRET_KEY when unset.
    # Changing it changes every secret shown: issued QR codes stop matching.
    "TICKET_SECRET_KEY": None,
    "MAX_POSTER_BYTES": 5 * 1024 * 1024,
    # Width x height a poster's header may claim: more is refused before anyone decodes it.
    "MAX_POSTER_PIXELS": 50_000_000,
    "POSTER_FOLDER": None,  # instance/posters when unset
    "CLOUDINARY_URL": None,
    "CLOUDINARY_CLOUD_NAME": None,
    "CLOUDINARY_API_KEY": None,
    "CLOUDINARY_API_SECRET": None,
    "CLOUDINARY_UPLOAD_PREFIX": None,
    "CLOUDINARY_TIMEOUT": 20,
    # Seconds a request waits for the deletion of a poster it replaced (it goes on after).
    "CLOUDINARY_DELETE_TIMEOUT": 2,
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
    "RATELIMIT_STORAGE_TIMEOUT": ("RATELIMIT_STORAGE_TIMEOUT", float),
    "CORS_ORIGINS": ("CORS_ORIGINS", lambda v: [o.strip() for o in v.split(",") if o.strip()]),
    "TRUSTED_PROXIES": ("TRUSTED_PROXIES", int),
    "PUBLIC_URL": ("PUBLIC_URL", str),
    "RATELIMIT_ENABLED": ("RATELIMIT_ENABLED", lambda v: v.lower() in ("1", "true", "yes")),
    "ADMIN_USERNAME": ("ADMIN_USERNAME", str),
    "ADMIN_EMAIL": ("ADMIN_EMAIL", str),
    "ADMIN_PASSWORD": ("ADMIN_PASSWORD", str),
    "RESEND_API_KEY": ("RESEND_API_KEY", str),
    "RESEND_FROM": ("RESEND_FROM", str),
    "RESEND_API_URL": ("RESEND_API_URL", str),
    "EMAIL_TIMEOUT": ("EMAIL_TIMEOUT", float),
    "EMAIL_PENDING_AFTER_MINUTES": ("EMAIL_PENDING_AFTER_MINUTES", int),
    "IDEMPOTENCY_KEY_HOURS": ("IDEMPOTENCY_KEY_HOURS", int),
    "HOLD_SECONDS": ("HOLD_SECONDS", int),
    "HOLD_MAX_SECONDS": ("HOLD_MAX_SECONDS", int),
    "MAX_SEATS_PER_USER_PER_SHOWTIME": ("MAX_SEATS_PER_USER_PER_SHOWTIME", int),
    "CANCELLATION_CUTOFF_MINUTES": ("CANCELLATION_CUTOFF_MINUTES", int),
    "CHECK_IN_OPENS_MINUTES": ("CHECK_IN_OPENS_MINUTES", int),
    "CHECK_IN_RATE_LIMIT": ("CHECK_IN_RATE_LIMIT", str),
    "TICKET_SECRET_KEY": ("TICKET_SECRET_KEY", str),
    "MAX_POSTER_BYTES": ("MAX_POSTER_BYTES", int),
    "MAX_POSTER_PIXELS": ("MAX_POSTER_PIXELS", int),
    "POSTER_FOLDER": ("POSTER_FOLDER", str),
    "CLOUDINARY_URL": ("CLOUDINARY_URL", str),
    "CLOUDINARY_CLOUD_NAME": ("CLOUDINARY_CLOUD_NAME", str),
    "CLOUDINARY_API_KEY": ("CLOUDINARY_API_KEY", str),
    "CLOUDINARY_API_SECRET": ("CLOUDINARY_API_SECRET", str),
    "CLOUDINARY_UPLOAD_PREFIX": ("CLOUDINARY_UPLOAD_PREFIX", str),
    "CLOUDINARY_TIMEOUT": ("CLOUDINARY_TIMEOUT", float),
    "CLOUDINARY_DELETE_TIMEOUT": ("CLOUDINARY_DELETE_TIMEOUT", float),
    "LOG_LEVEL": ("LOG_LEVEL", str.upper),
    "AUTO_MIGRATE": ("AUTO_MIGRATE", lambda v: v.lower() in ("1", "true", "yes")),
}


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


# The project's own .env only: never one found in the current or a parent folder.
DOTENV_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env")
# HMAC-SHA256 keys shorter than the hash itself (RFC 7518, section 3.2) are guessable.
MINIMUM_SECRET_BYTES = 32


def load(app, config=None):
    """Defaults, then the environment (and .env), then ``config``; derived settings last."""
    load_dotenv(DOTENV_PATH)
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(settings_from_environment())
    if config:
        app.config.from_mapping(config)
    os.makedirs(app.instance_path, exist_ok=True)
    configure(app)


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
    config["RATELIMIT_STORAGE_OPTIONS"] = {
        **rate_limit_storage_options(config),
        **config.get("RATELIMIT_STORAGE_OPTIONS", {}),
    }
    config["PUBLIC_URL"] = public_url(config["PUBLIC_URL"])
    if not 1 <= config["HOLD_SECONDS"] <= config["HOLD_MAX_SECONDS"] <= 86_400:
        raise RuntimeError(
            f"HOLD_SECONDS={config['HOLD_SECONDS']!r} and HOLD_MAX_SECONDS={config['HOLD_MAX_SECONDS']!r} "
            "must satisfy 1 <= HOLD_SECONDS <= HOLD_MAX_SECONDS <= 86400"
        )
    if config["MAX_SEATS_PER_USER_PER_SHOWTIME"] < 1:
        raise RuntimeError(
            f"MAX_SEATS_PER_USER_PER_SHOWTIME={config['MAX_SEATS_PER_USER_PER_SHOWTIME']!r} must be 1 or more"
        )
    if config["TRUSTED_PROXIES"] < 0:
        raise RuntimeError(f"TRUSTED_PROXIES={config['TRUSTED_PROXIES']!r} must be 0 or more")
    if not config["JWT_SECRET_KEY"]:
        config["JWT_SECRET_KEY"] = instance_secret(app)
    secret = config["JWT_SECRET_KEY"]
    if len(secret.encode() if isinstance(secret, str) else secret) < MINIMUM_SECRET_BYTES:
        raise RuntimeError(
            f"JWT_SECRET_KEY must be at least {MINIMUM_SECRET_BYTES} bytes long (UTF-8); make one "
            'with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
    config["CLOUDINARY"] = posters.cloudinary_settings(config)
    # Tokens are HMAC-SHA256, the one algorithm auth.check_token accepts.
    config["JWT_ALGORITHM"] = "HS256"
    for name in ("CANCELLATION_CUTOFF_MINUTES", "CHECK_IN_OPENS_MINUTES"):
        if not isinstance(config[name], int) or not 0 <= config[name] <= 7 * 24 * 60:
            raise RuntimeError(f"{name}={config[name]!r} must be a number of minutes from 0 to 10080")
    config["TICKET_KEY"] = ticket_key(config)


def ticket_key(config) -> bytes:
    """The key ticket secrets are made with: TICKET_SECRET_KEY, else one derived from JWT_SECRET_KEY."""
    given = config["TICKET_SECRET_KEY"]
    if given:
        if len(given.encode()) < MINIMUM_SECRET_BYTES:
            raise RuntimeError(f"TICKET_SECRET_KEY must be at least {MINIMUM_SECRET_BYTES} bytes long (UTF-8)")
        return given.encode()
    secret = config["JWT_SECRET_KEY"]
    secret = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(secret, b"cinema ticket secrets", hashlib.sha256).digest()


def rate_limit_storage_options(config) -> dict:
    """What the rate-limit storage is built with: the key prefix, and Redis's timeouts."""
    # The prefix of the counters' keys in Redis (several apps can share one server).
    options = {"key_prefix": config["RATELIMIT_KEY_PREFIX"]}
    if config["RATELIMIT_STORAGE_URI"].startswith(("redis", "valkey")):
        # redis-py waits 5 s by default: a hung Redis (not refusing, just silent) would
        # hold every rate-limited request that long before the in-memory fallback.
        timeout = config["RATELIMIT_STORAGE_TIMEOUT"]
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    return options


def public_url(value: str) -> str:
    """PUBLIC_URL without its trailing slash; anything but an http(s) URL stops the start."""
    url = value.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise RuntimeError(f"PUBLIC_URL={value!r} must look like https://cinema.example.com")
    return url


def instance_secret(app) -> str:
    """A random signing key kept in the instance folder, so tokens survive restarts."""
    path = os.path.join(app.instance_path, "jwt-secret.key")
    key = read_key(path) or create_key(path)
    # On every start, not only the first: a server that runs on it must not go unnoticed.
    app.logger.warning(
        "JWT_SECRET_KEY is not set: using a generated key from %s. "
        "Set JWT_SECRET_KEY in production.",
        path,
    )
    return key


def create_key(path) -> str:
    """Write a new key to ``path``, unless another worker got there first; return the key.

    Several workers may start at once: each writes a candidate to a file of its
    own and links it into place; the link succeeds for one of them only, and
    everyone then uses the key that won.
    """
    candidate = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(48))  # 48 random bytes
    try:
        os.link(candidate, path)
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
