"""Shared fixtures: a fresh app and database per test, and helpers that act through HTTP."""

import os
import sys
from datetime import datetime, timedelta, timezone

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app import create_app  # noqa: E402

SECRET = "test-secret-key-that-is-at-least-32-bytes-long"
ADMIN = {"username": "admin", "email": "admin@example.com", "password": "admin-pass-1"}


def test_config(tmp_path, **overrides):
    """Settings for a test app: its own SQLite file, cheap hashing, no rate limits."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}",
        "JWT_SECRET_KEY": SECRET,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",  # fast; production uses scrypt
        "RATELIMIT_ENABLED": False,
        "ADMIN_USERNAME": ADMIN["username"],
        "ADMIN_EMAIL": ADMIN["email"],
        "ADMIN_PASSWORD": ADMIN["password"],
        "RESEND_API_KEY": None,
    }
    config.update(overrides)
    return config


test_config.__test__ = False  # a helper, not a test


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
        "SEAT_PRICE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("app.load_dotenv", lambda *args, **kwargs: None)


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
