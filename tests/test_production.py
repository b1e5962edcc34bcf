"""Production settings: rate limits (in memory and shared through Redis), CORS,
the shared signing key, lost transaction races, and the gunicorn settings."""

import logging
import multiprocessing
import os
import runpy
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from types import SimpleNamespace

import psycopg.errors
import pytest
import redis
from flask import Flask
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from app import create_app
from settings import instance_secret
from conftest import ADMIN, Cinema, assert_error, test_config, during_outage
from fakes import closed_port_url
from models import db

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CREDENTIALS = {"username": ADMIN["username"], "password": ADMIN["password"]}


# ---- rate limits ------------------------------------------------------------------


def test_default_rate_limit_covers_other_routes(tmp_path):
    app = create_app(test_config(tmp_path, RATELIMIT_ENABLED=True, DEFAULT_RATE_LIMIT="2 per minute"))
    client = app.test_client()
    admin = Cinema(client).admin  # /login has its own limit

    assert client.get("/movies", headers=admin).status_code == 200
    assert client.get("/movies", headers=admin).status_code == 200
    response = client.get("/movies", headers=admin)

    assert_error(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_health_is_not_rate_limited(tmp_path):
    app = create_app(test_config(tmp_path, RATELIMIT_ENABLED=True, DEFAULT_RATE_LIMIT="1 per minute"))
    client = app.test_client()

    assert [client.get("/health").status_code for _ in range(3)] == [200, 200, 200]


def test_default_rate_limit_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFAULT_RATE_LIMIT", "1 per minute")
    app = create_app(test_config(tmp_path, RATELIMIT_ENABLED=True))
    client = app.test_client()
    admin = Cinema(client).admin

    assert client.get("/movies", headers=admin).status_code == 200
    assert_error(client.get("/movies", headers=admin), 429)


@pytest.fixture
def redis_prefix(redis_url):
    """A key prefix of this test's own in the Redis of TEST_REDIS_URL, removed afterwards."""
    prefix = f"cinema-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    server = redis.Redis.from_url(redis_url)
    keys = list(server.scan_iter(f"{prefix}:*"))
    if keys:
        server.delete(*keys)
    server.close()


def test_redis_counters_are_shared_between_workers(tmp_path, redis_url, redis_prefix):
    """Two apps (two workers) on one Redis share the login budget."""
    settings = dict(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=redis_url,
        RATELIMIT_KEY_PREFIX=redis_prefix,
        LOGIN_RATE_LIMIT="3 per minute",
    )
    first = create_app(test_config(tmp_path, **settings)).test_client()
    second = create_app(test_config(tmp_path, **settings)).test_client()

    assert first.post("/login", json=CREDENTIALS).status_code == 200
    assert second.post("/login", json=CREDENTIALS).status_code == 200
    assert first.post("/login", json=CREDENTIALS).status_code == 200
    response = second.post("/login", json=CREDENTIALS)

    body = assert_error(response, 429)
    assert "access_token" not in body
    assert int(response.headers["Retry-After"]) > 0
    server = redis.Redis.from_url(redis_url)
    assert list(server.scan_iter(f"{redis_prefix}:*")), "no counter under the configured prefix"
    server.close()


REDIS_TEST = "tests/test_production.py::test_redis_counters_are_shared_between_workers"


def run_pytest(*arguments, **environment):
    """A pytest run of its own (on SQLite), with TEST_REDIS_URL as given."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TEST_")}
    env.update(environment)
    command = [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", *arguments]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_redis_tests_are_skipped_without_test_redis_url():
    result = run_pytest(REDIS_TEST)

    assert result.returncode == 0, result.stdout + result.stderr
    summary = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(summary) == 1 and "TEST_REDIS_URL" in summary[0], result.stdout


def test_an_unreachable_test_redis_url_fails_the_run():
    unreachable = closed_port_url().replace("http://", "redis://")

    result = run_pytest(REDIS_TEST, TEST_REDIS_URL=unreachable)

    assert result.returncode == 3, result.stdout + result.stderr
    assert "TEST_REDIS_URL is set but Redis is unreachable" in result.stdout + result.stderr


class SilentRedis:
    """A TCP server on 127.0.0.1 that accepts connections and reads them, like a Redis
    stopped with SIGSTOP: it answers nothing, or, with ``answer_after``, answers each
    connection that many seconds late, saying every counter is far over its limit."""

    def __init__(self, answer_after=None):
        self.answer_after = answer_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = []
        self.closed = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed at the end of the test
                return
            self.connections.append(connection)
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection):
        try:
            data = connection.recv(65536)
            if self.answer_after is None or self.closed.wait(self.answer_after):
                return
            while data:
                # One answer per command (HELLO, CLIENT SETINFO, EVALSHA, PING...).
                for command in data.split(b"*")[1:]:
                    connection.sendall(self.reply(command.split(b"\r\n")[2].upper()))
                data = connection.recv(65536)
        except OSError:  # the client gave up and closed
            pass

    @staticmethod
    def reply(command: bytes) -> bytes:
        if command == b"HELLO":
            return b"%1\r\n$5\r\nproto\r\n:3\r\n"
        if command in (b"EVALSHA", b"EVAL"):
            return b":1000000\r\n"  # the counter after this hit
        return b"+PONG\r\n" if command == b"PING" else b"+OK\r\n"

    def close(self):
        self.closed.set()
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.mark.parametrize("answer_after", [3, None])
def test_a_hanging_redis_is_not_waited_for(tmp_path, answer_after):
    """Redis accepts but does not answer (or answers only after seconds): the limiter
    gives up after RATELIMIT_STORAGE_TIMEOUT and counts in memory instead."""
    redis_server = SilentRedis(answer_after)
    try:
        app = create_app(
            test_config(
                tmp_path,
                RATELIMIT_ENABLED=True,
                RATELIMIT_STORAGE_URI=redis_server.url,
                LOGIN_RATE_LIMIT="2 per minute",
            )
        )
        client = app.test_client()

        assert client.post("/login", json=CREDENTIALS).status_code == 200
        assert client.post("/login", json=CREDENTIALS).status_code == 200
        assert_error(client.post("/login", json=CREDENTIALS), 429)
    finally:
        redis_server.close()


def test_an_unreachable_redis_falls_back_to_memory(tmp_path):
    app = create_app(
        test_config(
            tmp_path,
            RATELIMIT_ENABLED=True,
            RATELIMIT_STORAGE_URI="redis://127.0.0.1:1",
            LOGIN_RATE_LIMIT="1 per minute",
        )
    )
    client = app.test_client()

    assert client.post("/login", json=CREDENTIALS).status_code == 200
    assert_error(client.post("/login", json=CREDENTIALS), 429)


# ---- CORS -------------------------------------------------------------------------


def test_cors_allows_any_origin_by_default_and_exposes_paging_headers(client):
    headers = {"Origin": "https://frontend.example", **Cinema(client).admin}
    response = client.get("/movies", headers=headers)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {name.strip().lower() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-total-count", "link", "location"} <= exposed
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_cors_preflight_for_an_authenticated_booking(client):
    response = client.options(
        "/reservations",
        headers={
            "Origin": "https://frontend.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


def test_cors_headers_on_errors_too(client):
    response = client.get("/reservations", headers={"Origin": "https://frontend.example"})

    assert_error(response, 401)
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_origins_can_be_narrowed(tmp_path, monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    client = create_app(test_config(tmp_path)).test_client()

    allowed = client.get("/health", headers={"Origin": "https://b.example"})
    refused = client.get("/health", headers={"Origin": "https://evil.example"})

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Access-Control-Allow-Origin" not in refused.headers


# ---- the signing key shared by workers --------------------------------------------


def secret_in(instance_path, barrier, results=None):
    barrier.wait()
    logger = SimpleNamespace(warning=lambda *args: None)
    key = instance_secret(SimpleNamespace(instance_path=instance_path, logger=logger))
    if results is not None:
        results.put(key)
    return key


def test_workers_starting_together_share_one_generated_key(tmp_path):
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(6), context.Queue()
    workers = [
        context.Process(target=secret_in, args=(str(tmp_path), barrier, results)) for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    keys = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join()

    assert len(set(keys)) == 1 and len(keys[0]) >= 43
    assert os.listdir(tmp_path) == ["jwt-secret.key"]  # no candidate left behind
    assert oct(os.stat(tmp_path / "jwt-secret.key").st_mode & 0o777) == "0o600"
    # A restart reads the same key.
    assert secret_in(str(tmp_path), SimpleNamespace(wait=lambda: None)) == keys[0]


def test_a_truncated_key_file_is_replaced(tmp_path):
    (tmp_path / "jwt-secret.key").write_text("short")

    key = secret_in(str(tmp_path), SimpleNamespace(wait=lambda: None))

    assert len(key) >= 43 and (tmp_path / "jwt-secret.key").read_text() == key


def test_a_generated_key_is_warned_about_at_every_start(tmp_path, monkeypatch, caplog):
    instance = tmp_path / "instance"
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda app: str(instance))

    with caplog.at_level(logging.WARNING):
        first = create_app(test_config(tmp_path, JWT_SECRET_KEY=None))  # creates the key
        second = create_app(test_config(tmp_path, JWT_SECRET_KEY=None))  # reads it

    warnings = [record for record in caplog.records if "JWT_SECRET_KEY is not set" in record.getMessage()]
    assert len(warnings) == 2
    assert first.config["JWT_SECRET_KEY"] == second.config["JWT_SECRET_KEY"]
    assert (instance / "jwt-secret.key").read_text() == first.config["JWT_SECRET_KEY"]


# ---- the signing key's length and the .env file -----------------------------------


@pytest.mark.parametrize("key", ["x" * 31, "é" * 15 + "x"], ids=["ascii", "utf8"])  # 31 bytes each
def test_a_short_signing_key_is_refused_at_start_up(tmp_path, key):
    with pytest.raises(RuntimeError, match="at least 32 bytes") as error:
        create_app(test_config(tmp_path, JWT_SECRET_KEY=key))

    assert "secrets.token_urlsafe(48)" in str(error.value)


def test_a_short_signing_key_from_the_environment_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("JWT_SECRET_KEY", "x" * 31)
    config = test_config(tmp_path)
    del config["JWT_SECRET_KEY"]

    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY must be at least 32 bytes"):
        create_app(config)


def test_the_signing_key_length_counts_utf8_bytes(tmp_path):
    app = create_app(test_config(tmp_path, JWT_SECRET_KEY="é" * 16))  # 16 characters, 32 bytes

    assert Cinema(app.test_client()).admin


ENV_PROBE = """
import flask, settings
app = flask.Flask("probe", instance_path={instance!r})
settings.load(app, {{"JWT_SECRET_KEY": "x" * 48}})
print(app.config["CINEMA_TIMEZONE"])
"""


@pytest.mark.parametrize("started_as", ["script", "python -c"])
def test_only_the_projects_own_env_file_is_read(tmp_path, started_as):
    """Not one in a parent folder (a script looks up from the code) or the current folder (-c)."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    for name in os.listdir(ROOT):
        if name.endswith(".py"):
            shutil.copy(os.path.join(ROOT, name), project)
    (tmp_path / ".env").write_text("CINEMA_TIMEZONE=Asia/Tokyo\n")
    (elsewhere / ".env").write_text("CINEMA_TIMEZONE=America/Lima\n")
    code = ENV_PROBE.format(instance=str(tmp_path / "instance"))
    (elsewhere / "probe.py").write_text(code)
    command = [sys.executable, "probe.py"] if started_as == "script" else [sys.executable, "-c", code]

    def cinema_timezone():
        done = subprocess.run(
            command, cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(project)},
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert cinema_timezone() == "UTC"
    (project / ".env").write_text("CINEMA_TIMEZONE=Europe/Paris\n")
    assert cinema_timezone() == "Europe/Paris"


# ---- lost races between transactions ----------------------------------------------


@pytest.mark.parametrize(
    "error", [psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure]
)
def test_a_transaction_aborted_by_a_race_is_a_409_and_changes_nothing(app, client, error):
    cinema = Cinema(client)
    showtime = cinema.showtime_with_seats()
    user = cinema.user()

    def collide(connection, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO reservation_seats"):
            raise OperationalError(statement, parameters, error("the database gave up"))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", collide)
    response = cinema.book(user, showtime["id"], ["A1"])
    with app.app_context():
        event.remove(db.engine, "before_cursor_execute", collide)

    body = assert_error(response, 409, "try again")
    assert "error_id" not in body
    assert cinema.book(user, showtime["id"], ["A1"]).status_code == 201


def test_other_database_errors_are_still_503(app, client):
    response = during_outage(app, lambda: client.post("/login", json=CREDENTIALS))

    assert_error(response, 503)
    assert response.headers["Retry-After"] == "1"


# ---- gunicorn settings ------------------------------------------------------------


def gunicorn_settings(monkeypatch, **environment):
    for name in ("PORT", "HOST", "WEB_CONCURRENCY", "GUNICORN_WORKERS", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(os.path.join(ROOT, "gunicorn.conf.py"))


def test_gunicorn_defaults(monkeypatch):
    settings = gunicorn_settings(monkeypatch)

    assert settings["bind"] == "127.0.0.1:5500"
    assert settings["workers"] >= 2
    assert settings["graceful_timeout"] > 0 and settings["timeout"] > 0
    assert "%(s)s" in settings["access_log_format"]
    assert settings["accesslog"] == "-"


def test_gunicorn_reads_port_and_workers_from_the_environment(monkeypatch):
    settings = gunicorn_settings(monkeypatch, PORT="8000", HOST="0.0.0.0", WEB_CONCURRENCY="3")
    assert (settings["bind"], settings["workers"]) == ("0.0.0.0:8000", 3)

    settings = gunicorn_settings(monkeypatch, GUNICORN_WORKERS="5")
    assert settings["workers"] == 5


def test_gunicorn_refuses_a_bad_worker_count(monkeypatch):
    with pytest.raises(RuntimeError, match="WEB_CONCURRENCY"):
        gunicorn_settings(monkeypatch, WEB_CONCURRENCY="many")


# ---- text PostgreSQL cannot store -------------------------------------------------


def test_nul_characters_are_refused_in_bodies(client):
    admin = Cinema(client).admin

    response = client.post("/movies", json={"title": "Up\u0000", "genre": "Drama"}, headers=admin)

    assert_error(response, 400, "NUL")
    assert client.get("/movies", headers=admin).json == []


def test_nul_characters_are_refused_in_nested_values_and_keys(client):
    admin = Cinema(client).admin

    nested = client.post("/seats", json={"showtime_id": 1, "seats": ["A\u00001"]}, headers=admin)
    key = client.post("/movies", json={"title": "Up", "genre": "Drama", "x\u0000": 1}, headers=admin)

    assert_error(nested, 400, "NUL")
    assert_error(key, 400, "NUL")


def test_nul_characters_are_refused_in_query_strings(client):
    admin = Cinema(client).admin

    response = client.get("/movies/search", query_string={"title": "a\u0000b"}, headers=admin)

    assert_error(response, 400, "NUL")


def test_a_value_the_database_cannot_store_is_a_400(app, client):
    from sqlalchemy.exc import DataError

    def refuse(connection, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO movies"):
            raise DataError(statement, parameters, Exception("value out of range"))

    admin = Cinema(client).admin
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", refuse)
    response = client.post("/movies", json={"title": "Up", "genre": "Drama"}, headers=admin)
    with app.app_context():
        event.remove(db.engine, "before_cursor_execute", refuse)

    assert_error(response, 400, "cannot be stored")


# ---- SQLite under several processes -----------------------------------------------


def sqlite_app(tmp_path):
    """An app on a SQLite file, whichever database the suite runs on."""
    return create_app(test_config(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'own.db'}"))


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path):
    app = sqlite_app(tmp_path)

    with app.app_context(), db.engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 30000


def test_sqlite_write_requests_take_the_write_lock_up_front(tmp_path):
    app = sqlite_app(tmp_path)
    client = app.test_client()
    admin = Cinema(client).admin
    begins = []

    def record(statement):
        if statement.startswith("BEGIN"):
            begins.append(statement)

    def trace(dbapi_connection, connection_record):
        # The driver's own trace: BEGIN is sent straight to it, past SQLAlchemy's events.
        dbapi_connection.set_trace_callback(record)

    with app.app_context():
        db.engine.dispose()  # new connections, traced from the start
        event.listen(db.engine, "connect", trace)
    client.post("/movies", json={"title": "Up", "genre": "Drama"}, headers=admin)
    writes = list(begins)
    client.get("/movies", headers=admin)
    with app.app_context():
        event.remove(db.engine, "connect", trace)

    assert writes and set(writes) == {"BEGIN IMMEDIATE"}
    assert begins[len(writes):] == ["BEGIN"]
