"""Headers on every answer (nosniff, Retry-After, no-store, CORS, the docs' policy),
what /health says about a database that cannot write, and clients behind proxies."""

import base64
import hashlib
import io
import os
import re
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import conftest
from app import create_app
from conftest import ADMIN, Cinema, assert_error, test_config, during_outage
from models import db
from test_posters import PNG

CREDENTIALS = {"username": ADMIN["username"], "password": ADMIN["password"]}
ORIGIN = {"Origin": "https://frontend.example"}


def exposed_headers(response) -> set:
    return {name.strip().lower() for name in response.headers["Access-Control-Expose-Headers"].split(",")}


def limited_app(tmp_path, **settings):
    return create_app(test_config(tmp_path, RATELIMIT_ENABLED=True, **settings))


# ---- CORS -------------------------------------------------------------------------


def test_a_browser_may_read_the_etag_and_retry_after(client, cinema):
    showtime = cinema.showtime_with_seats()

    response = client.get(f"/showtimes/{showtime['id']}/seats", headers={**ORIGIN, **cinema.admin})

    assert response.status_code == 200 and response.headers["ETag"]
    assert {"etag", "retry-after", "x-total-count", "link", "location"} <= exposed_headers(response)


# ---- Retry-After ------------------------------------------------------------------


def test_retry_after_only_on_a_429(tmp_path):
    client = limited_app(tmp_path, LOGIN_RATE_LIMIT="2 per minute").test_client()

    first = client.post("/login", json=CREDENTIALS)
    listed = client.get("/movies", headers={"Authorization": f"Bearer {first.json['access_token']}"})
    client.post("/login", json=CREDENTIALS)
    refused = client.post("/login", json=CREDENTIALS)

    for counted in (first, listed):
        assert counted.status_code == 200
        assert "Retry-After" not in counted.headers
        assert int(counted.headers["X-RateLimit-Remaining"]) >= 0  # the limiter's own headers stay
    assert_error(refused, 429)
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_a_503_keeps_its_own_retry_after_under_rate_limits(tmp_path):
    app = limited_app(tmp_path)
    client = app.test_client()

    response = during_outage(app, lambda: client.post("/login", json=CREDENTIALS))

    assert_error(response, 503)
    # Not the rate-limit window's reset, which the limiter would put there.
    assert response.headers["Retry-After"] == "1"


# ---- nosniff ----------------------------------------------------------------------


@pytest.fixture
def failing_app(tmp_path):
    app = create_app(test_config(tmp_path, TESTING=False, PROPAGATE_EXCEPTIONS=False))

    @app.route("/explode")
    def explode():
        raise RuntimeError("boom")

    return app


def test_nosniff_on_every_answer(failing_app):
    client = failing_app.test_client()
    cinema = Cinema(client)
    movie = cinema.movie()
    poster = client.post("/upload-poster", data={"image": (io.BytesIO(PNG), "p.png")}, headers=cinema.admin)
    tag = client.get(f"/movies/{movie['id']}", headers=cinema.admin).headers["ETag"]
    answers = {
        "json": client.get("/movies", headers=cinema.admin),
        "created": poster,
        "poster": client.get(poster.json["url"]),
        "not modified": client.get(f"/movies/{movie['id']}", headers={**cinema.admin, "If-None-Match": tag}),
        "unauthorized": client.get("/movies"),
        "unknown route": client.get("/nope"),
        "wrong method": client.put("/health"),
        "unsupported body": client.post("/movies", data="x", content_type="text/plain", headers=cinema.admin),
        "internal error": client.get("/explode"),
        "preflight": client.options("/movies", headers={**ORIGIN, "Access-Control-Request-Method": "GET"}),
        "docs": client.get("/docs/"),
        "docs redirect": client.get("/docs"),
        "docs file": client.get("/docs/swagger-ui-bundle.js"),
        "openapi": client.get("/openapi.json"),
        "health": client.get("/health"),
    }

    assert [answer.status_code for answer in answers.values()] == [
        200, 201, 200, 304, 401, 404, 405, 415, 500, 200, 200, 308, 200, 200, 200
    ]
    for name, answer in answers.items():
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", name


def test_nosniff_on_a_429(tmp_path):
    client = limited_app(tmp_path, LOGIN_RATE_LIMIT="1 per minute").test_client()
    client.post("/login", json=CREDENTIALS)

    response = client.post("/login", json=CREDENTIALS)

    assert_error(response, 429)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# ---- no-store ---------------------------------------------------------------------


def test_tokens_and_profiles_are_never_cached(client, cinema):
    registered = client.post(
        "/register", json={"username": "neo", "email": "neo@example.com", "password": "password123"}
    )
    login = client.post("/login", json={"username": "neo", "password": "password123"})
    refresh = client.post("/refresh", headers={"Authorization": f"Bearer {login.json['refresh_token']}"})
    answers = {
        "register": registered,
        "login": login,
        "failed login": client.post("/login", json={"username": "neo", "password": "wrong-pass"}),
        "refresh": refresh,
        "me": client.get("/me", headers=cinema.admin),
        "users": client.get("/users", headers=cinema.admin),
        "promote": client.post(f"/users/promote/{registered.json['user']['id']}", headers=cinema.admin),
    }

    assert [answer.status_code for answer in answers.values()] == [201, 200, 401, 200, 200, 200, 200]
    for name, answer in answers.items():
        assert answer.headers.get("Cache-Control") == "no-store", name
    # Other answers keep their caching (the movie list has none, posters a year).
    assert "Cache-Control" not in client.get("/movies", headers=cinema.admin).headers


# ---- the docs page ----------------------------------------------------------------


def script_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("host", ["localhost", "docs.example.com:8443"])
def test_docs_may_not_be_framed_and_allow_only_their_own_script(client, host):
    page = client.get("/docs/", headers={"Host": host})
    policy = page.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    (inline_script,) = re.findall(r"<script>(.*?)</script>", page.get_data(as_text=True), re.DOTALL)

    assert page.status_code == 200
    assert directives["frame-ancestors"] == ["'none'"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert directives["default-src"] == ["'none'"]
    # Exactly the page's own inline script, whatever the Host header said.
    assert directives["script-src"] == ["'self'", script_hash(inline_script)]
    assert not any("unsafe" in value for values in directives.values() for value in values)
    assert directives["connect-src"] == ["'self'"]


def test_the_docs_files_carry_the_same_policy(client):
    page = client.get("/docs/")

    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "index.css"):
        response = client.get(f"/docs/{name}")
        assert response.status_code == 200
        assert response.headers["Content-Security-Policy"] == page.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


def test_api_answers_carry_no_docs_policy(client):
    assert "Content-Security-Policy" not in client.get("/health").headers


# ---- /health ----------------------------------------------------------------------


def sqlite_app(tmp_path):
    """An app on a SQLite file, whichever database the suite runs on."""
    return create_app(test_config(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'own.db'}"))


def test_health_of_a_writable_database(tmp_path):
    response = sqlite_app(tmp_path).test_client().get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def refuse_every_statement(connection, cursor, statement, parameters, context, executemany):
    raise OperationalError(statement, parameters, Exception("unable to open database file"))


@pytest.mark.parametrize("read_only", ["file", "folder", "mount"])
def test_health_of_a_read_only_sqlite_database(tmp_path, monkeypatch, read_only):
    app = sqlite_app(tmp_path)
    client = app.test_client()
    locked = str(tmp_path / "own.db") if read_only == "file" else str(tmp_path)
    access = os.access
    # Root may write any file, so the test says what a read-only file or folder answers.
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != locked and access(path, mode))
    if read_only == "mount":  # where SQLite cannot even open its write-ahead log
        with app.app_context():
            event.listen(db.engine, "before_cursor_execute", refuse_every_statement)

    response = client.get("/health")

    body = assert_error(response, 503, "read-only")
    assert body["errors"] == {"database": ["read-only"]}


def test_health_of_a_full_disk(tmp_path, monkeypatch):
    client = sqlite_app(tmp_path).test_client()
    statvfs = os.statvfs

    def full(path):
        real = statvfs(path)
        return SimpleNamespace(f_bavail=0, f_frsize=real.f_frsize, f_flag=real.f_flag)

    monkeypatch.setattr(os, "statvfs", full)

    body = assert_error(client.get("/health"), 503, "disk is full")
    assert body["errors"] == {"database": ["full"]}


def test_health_of_an_unreachable_database(app, client):
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", refuse_every_statement)
    response = client.get("/health")
    with app.app_context():
        event.remove(db.engine, "before_cursor_execute", refuse_every_statement)

    body = assert_error(response, 503, "unreachable")
    assert body["errors"] == {"database": ["unreachable"]}
    assert client.get("/health").status_code == 200


POSTGRES_URL = os.environ.get("TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def test_health_of_a_read_only_postgresql_server(tmp_path):
    """As a hot standby, or a server with default_transaction_read_only, answers."""
    app = create_app(
        test_config(
            tmp_path,
            SQLALCHEMY_DATABASE_URI=POSTGRES_URL,
            SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"options": "-c default_transaction_read_only=on"}},
            CREATE_TABLES=False,
            ADMIN_USERNAME=None,
        )
    )

    body = assert_error(app.test_client().get("/health"), 503, "read-only")
    assert body["errors"] == {"database": ["read-only"]}


def test_a_write_to_a_read_only_postgresql_server_is_a_503(tmp_path):
    """Not a 500: the server refusing writes is an outage the client can wait out."""
    server = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"cinema_read_only_{uuid.uuid4().hex[:10]}"
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        create_app(test_config(tmp_path, SQLALCHEMY_DATABASE_URI=url, ADMIN_USERNAME=None))  # the tables
        read_only = {"connect_args": {"options": "-c default_transaction_read_only=on"}}
        app = create_app(
            test_config(tmp_path, SQLALCHEMY_DATABASE_URI=url, SQLALCHEMY_ENGINE_OPTIONS=read_only, ADMIN_USERNAME=None)
        )

        response = app.test_client().post(
            "/register", json={"username": "ann", "email": "ann@example.com", "password": "password123"}
        )

        assert_error(response, 503, "read-only")
        assert response.headers["Retry-After"] == "30"
        with app.app_context():
            db.engine.dispose()
    finally:
        for engine in list(conftest.engines):
            engine.dispose()
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def test_health_of_a_writable_postgresql_server(tmp_path):
    app = create_app(
        test_config(tmp_path, SQLALCHEMY_DATABASE_URI=POSTGRES_URL, CREATE_TABLES=False, ADMIN_USERNAME=None)
    )

    assert app.test_client().get("/health").json == {"status": "ok", "database": "ok"}


# ---- behind reverse proxies -------------------------------------------------------

PROXY = {"REMOTE_ADDR": "10.0.0.1"}  # every request arrives from the proxy


def login_from(client, forwarded_for):
    return client.post(
        "/login", json=CREDENTIALS, headers={"X-Forwarded-For": forwarded_for}, environ_base=PROXY
    )


def test_behind_a_trusted_proxy_each_client_has_its_own_login_budget(tmp_path):
    client = limited_app(tmp_path, TRUSTED_PROXIES=1, LOGIN_RATE_LIMIT="2 per minute").test_client()

    assert login_from(client, "203.0.113.1").status_code == 200
    assert login_from(client, "203.0.113.1").status_code == 200
    assert_error(login_from(client, "203.0.113.1"), 429)

    assert login_from(client, "203.0.113.2").status_code == 200


def test_a_client_cannot_choose_its_address_through_a_trusted_proxy(tmp_path):
    client = limited_app(tmp_path, TRUSTED_PROXIES=1, LOGIN_RATE_LIMIT="2 per minute").test_client()
    login_from(client, "203.0.113.1")
    login_from(client, "203.0.113.1")

    # The proxy appends the address it saw; what the client sent before it is not believed.
    assert_error(login_from(client, "198.51.100.7, 203.0.113.1"), 429)


def test_two_trusted_proxies(tmp_path):
    client = limited_app(tmp_path, TRUSTED_PROXIES=2, LOGIN_RATE_LIMIT="1 per minute").test_client()

    assert login_from(client, "203.0.113.1, 10.0.0.2").status_code == 200
    assert login_from(client, "203.0.113.2, 10.0.0.2").status_code == 200
    assert_error(login_from(client, "198.51.100.7, 203.0.113.1, 10.0.0.2"), 429)


def test_without_trusted_proxies_x_forwarded_for_is_ignored(tmp_path):
    client = limited_app(tmp_path, LOGIN_RATE_LIMIT="2 per minute").test_client()

    assert login_from(client, "203.0.113.1").status_code == 200
    assert login_from(client, "203.0.113.2").status_code == 200
    assert_error(login_from(client, "203.0.113.3"), 429)  # one budget: the proxy's


@pytest.mark.parametrize("trusted, scheme", [(1, "https"), (0, "http")])
def test_the_scheme_the_proxy_was_reached_by(tmp_path, trusted, scheme):
    client = create_app(test_config(tmp_path, TRUSTED_PROXIES=trusted)).test_client()
    admin = Cinema(client).admin

    response = client.get("/movies", headers={**admin, "X-Forwarded-Proto": "https"}, environ_base=PROXY)

    assert response.headers["Link"].startswith(f"<{scheme}://localhost/movies?")


def test_trusted_proxies_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    client = limited_app(tmp_path, LOGIN_RATE_LIMIT="1 per minute").test_client()

    assert login_from(client, "203.0.113.1").status_code == 200
    assert login_from(client, "203.0.113.2").status_code == 200


@pytest.mark.parametrize("value", ["-1", "two"])
def test_a_bad_trusted_proxies_stops_the_start(tmp_path, monkeypatch, value):
    monkeypatch.setenv("TRUSTED_PROXIES", value)

    with pytest.raises(RuntimeError, match="TRUSTED_PROXIES"):
        create_app(test_config(tmp_path))
