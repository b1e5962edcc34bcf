"""Shared fixtures: a fresh app and database per test, and helpers that act through HTTP.

With TEST_DATABASE_URL set (a PostgreSQL server URL), the run creates its own
database there, builds it with the migrations, empties it before every test and
drops it at the end; an unreachable server fails the run. Tests that need Redis take
the ``redis_url`` fixture: they run against TEST_REDIS_URL and are skipped without it
(an unreachable one fails the run too).
"""

import functools
import os
import sys
import uuid
import weakref
from datetime import datetime, timedelta, timezone

import pytest
import redis
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app import create_app  # noqa: E402
from fakes import FakeResend  # noqa: E402
from models import db  # noqa: E402

SERVER_URL = os.environ.get("TEST_DATABASE_URL") or None
DATABASE_URL = None  # this run's own PostgreSQL database, when SERVER_URL is set
REDIS_URL = os.environ.get("TEST_REDIS_URL") or None

SECRET = "test-secret-key-that-is-at-least-32-bytes-long"
ADMIN = {"username": "admin", "email": "admin@example.com", "password": "admin-pass-1"}


def test_config(tmp_path, **overrides):
    """Settings for a test app: its own SQLite file, cheap hashing, no rate limits."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL or f"sqlite:///{tmp_path / 'test.db'}",
        "JWT_SECRET_KEY": SECRET,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",  # fast; production uses scrypt
        "RATELIMIT_ENABLED": False,
        "ADMIN_USERNAME": ADMIN["username"],
        "ADMIN_EMAIL": ADMIN["email"],
        "ADMIN_PASSWORD": ADMIN["password"],
        "RESEND_API_KEY": None,
        "POSTER_FOLDER": str(tmp_path / "posters"),
        "CREATE_TABLES": True,
    }
    config.update(overrides)
    return config


test_config.__test__ = False  # a helper, not a test


def server_engine():
    """An autocommit connection to the PostgreSQL server, for CREATE/DROP DATABASE."""
    return create_engine(make_url(SERVER_URL), isolation_level="AUTOCOMMIT")


def create_database(prefix="cinema_test") -> str:
    """A new, empty PostgreSQL database; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = server_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url):
    engine = server_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    finally:
        engine.dispose()


def pytest_sessionstart(session):
    global DATABASE_URL
    if REDIS_URL:
        check_redis(REDIS_URL)
    if not SERVER_URL:
        return
    try:
        DATABASE_URL = create_database()
    except Exception as error:  # noqa: BLE001 - any failure to reach the server ends the run
        pytest.exit(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {error}", returncode=3)
    app = create_app({"SQLALCHEMY_DATABASE_URI": DATABASE_URL, "AUTO_MIGRATE": True})
    with app.app_context():
        db.engine.dispose()


def check_redis(url):
    """End the run at once when the Redis the tests were promised does not answer."""
    server = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        server.ping()
    except redis.RedisError as error:
        pytest.exit(f"TEST_REDIS_URL is set but Redis is unreachable: {error}", returncode=3)
    finally:
        server.close()


@pytest.fixture
def redis_url():
    """TEST_REDIS_URL, for the tests that need a real Redis; they are skipped without it."""
    if not REDIS_URL:
        pytest.skip("needs Redis: set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run it")
    return REDIS_URL


def pytest_sessionfinish(session, exitstatus):
    if DATABASE_URL:
        cleaner().dispose()
        drop_database(DATABASE_URL)


# Every engine the tests open, so each test can close its connections at the end.
engines = weakref.WeakSet()


@event.listens_for(Engine, "engine_connect")
def remember_engine(connection):
    engines.add(connection.engine)


@functools.cache
def cleaner():
    """One engine for emptying the tables, kept for the whole run."""
    return create_engine(DATABASE_URL)


@pytest.fixture(autouse=True)
def isolated_database():
    """On PostgreSQL, every test starts from empty tables (the schema stays)."""
    if DATABASE_URL:
        # DELETE and restarting the id sequences is several times faster than TRUNCATE
        # on tables this small.
        with cleaner().begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
            sequences = connection.execute(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
            ).scalars()
            for sequence in sequences.all():
                connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
    yield
    kept = cleaner() if DATABASE_URL else None
    for engine in list(engines):
        if engine is not kept:
            engine.dispose()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Tests must not depend on the developer's environment or .env file."""
    for name in (
        "DATABASE_URL",
        "JWT_SECRET_KEY",
        "CINEMA_TIMEZONE",
        "ADMIN_USERNAME",
        "ADMIN_EMAIL",
        "ADMIN_PASSWORD",
        "RESEND_API_KEY",
        "CLOUDINARY_URL",
        "CLOUDINARY_CLOUD_NAME",
        "CLOUDINARY_API_KEY",
        "CLOUDINARY_API_SECRET",
        "CLOUDINARY_UPLOAD_PREFIX",
        "POSTER_FOLDER",
        "MAX_POSTER_BYTES",
        "MAX_POSTER_PIXELS",
        "PUBLIC_URL",
        "TRUSTED_PROXIES",
        "RESEND_FROM",
        "RESEND_API_URL",
        "EMAIL_TIMEOUT",
        "SEAT_PRICE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("settings.load_dotenv", lambda *args, **kwargs: None)


@pytest.fixture
def app(tmp_path):
    return create_app(test_config(tmp_path))


@pytest.fixture
def client(app):
    return app.test_client()


def future(days=30, hour=18, minute=0) -> str:
    """A naive ISO time some days ahead (read as cinema local time)."""
    moment = datetime.now(timezone.utc) + timedelta(days=days)
    return moment.replace(hour=hour, minute=minute, second=0, microsecond=0, tzinfo=None).isoformat()


class Cinema:
    """Acts on the API the way a client would, to set up scenarios in few lines."""

    def __init__(self, client):
        self.client = client
        self._count = 0
        self.admin = self.login(ADMIN["username"], ADMIN["password"])

    def register(self, username=None, email=None, password="password123"):
        self._count += 1
        username = username or f"user{self._count}"
        email = email or f"{username}@example.com"
        response = self.client.post(
            "/register", json={"username": username, "email": email, "password": password}
        )
        assert response.status_code == 201, response.json
        return response.json["user"]

    def login(self, username, password):
        response = self.client.post("/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.json
        return {"Authorization": f"Bearer {response.json['access_token']}"}

    def user(self, username=None):
        """Register a user and return their auth headers."""
        return self.user_and_headers(username)[1]

    def user_and_headers(self, username=None):
        user = self.register(username)
        return user, self.login(user["username"], "password123")

    def movie(self, **fields):
        body = {"title": "Inception", "genre": "Sci-Fi", "duration_minutes": 148, **fields}
        response = self.client.post("/movies", json=body, headers=self.admin)
        assert response.status_code == 201, response.json
        return response.json

    def showtime(self, movie_id=None, start_time=None, hall="Main", **fields):
        movie_id = movie_id or self.movie()["id"]
        body = {"movie_id": movie_id, "start_time": start_time or future(), "hall": hall, **fields}
        response = self.client.post("/showtimes", json=body, headers=self.admin)
        assert response.status_code == 201, response.json
        return response.json

    def seats(self, showtime_id, rows="A-B", seats_per_row=10):
        response = self.client.post(
            "/seats",
            json={"showtime_id": showtime_id, "rows": rows, "seats_per_row": seats_per_row},
            headers=self.admin,
        )
        assert response.status_code == 201, response.json
        return response.json["seats"]

    def showtime_with_seats(self, **fields):
        showtime = self.showtime(**fields)
        self.seats(showtime["id"])
        return showtime

    def book(self, headers, showtime_id, seats):
        return self.client.post(
            "/reservations", json={"showtime_id": showtime_id, "seats": seats}, headers=headers
        )


@pytest.fixture
def resend_fake():
    """A fake Resend API on 127.0.0.1 that records what the real SDK sends it."""
    fake = FakeResend()
    yield fake
    fake.stop()


@pytest.fixture
def cinema(client):
    return Cinema(client)


def assert_error(response, status, message_part=None):
    """The contract's one error shape, with the expected status."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    if message_part:
        assert message_part.lower() in body["message"].lower(), body["message"]
    return body


@pytest.fixture
def count_statements(app):
    """``with count_statements() as statements:`` lists the SQL the app ran inside the block."""
    from contextlib import contextmanager

    from sqlalchemy import event

    from models import db

    with app.app_context():
        engine = db.engine

    @contextmanager
    def counting():
        statements = []

        def record(connection, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return counting


def during_outage(app, call):
    """The answer to ``call`` while every statement fails as when the database is gone."""

    def outage(connection, cursor, statement, parameters, context, executemany):
        raise OperationalError(statement, parameters, Exception("server closed the connection"))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", outage)
    try:
        return call()
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", outage)
