"""The gunicorn worker of server.py, without a server: its settings in
gunicorn.conf.py, the JSON answers to gunicorn's own errors, and the read deadlines.
scripts/slow_clients.py proves the whole against a real gunicorn."""

import json
import logging
import os
import runpy
import socket
import time
from http import HTTPStatus
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.http import errors
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import SocketUnreader

import server
from app import create_app
from errors import error_body
from conftest import assert_error, test_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUNICORN_VARIABLES = (
    "PORT", "HOST", "WEB_CONCURRENCY", "GUNICORN_WORKERS", "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT", "GUNICORN_THREADS", "GUNICORN_HEADER_TIMEOUT",
    "GUNICORN_BODY_TIMEOUT",
)


def gunicorn_settings(monkeypatch, **environment):
    for name in GUNICORN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(os.path.join(ROOT, "gunicorn.conf.py"))


def split_answer(data: bytes):
    """(status line, headers, body) of a raw HTTP answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


# ---- gunicorn.conf.py -------------------------------------------------------------


def test_the_worker_is_the_threaded_one_of_server_py(monkeypatch):
    settings = gunicorn_settings(monkeypatch)

    worker = settings["worker_class"]
    assert issubclass(worker, server.ThreadWorker)
    assert settings["threads"] == 32
    assert (worker.header_timeout, worker.body_timeout) == (10, 20)
    assert settings["keepalive"] > 0


def test_gunicorn_settings_from_the_environment(monkeypatch):
    settings = gunicorn_settings(
        monkeypatch,
        WEB_CONCURRENCY="3",
        GUNICORN_TIMEOUT="60",
        GUNICORN_GRACEFUL_TIMEOUT="5",
        GUNICORN_THREADS="64",
        GUNICORN_HEADER_TIMEOUT="4",
        GUNICORN_BODY_TIMEOUT="90",
    )

    assert (settings["workers"], settings["timeout"], settings["graceful_timeout"]) == (3, 60, 5)
    assert settings["threads"] == 64
    assert settings["worker_class"].header_timeout == 4
    assert settings["worker_class"].body_timeout == 90
    assert gunicorn_settings(monkeypatch, WEB_CONCURRENCY="3", GUNICORN_WORKERS="2")["workers"] == 2


@pytest.mark.parametrize(
    "name, value",
    [("GUNICORN_THREADS", "0"), ("GUNICORN_THREADS", "lots"), ("GUNICORN_HEADER_TIMEOUT", "0"),
     ("GUNICORN_BODY_TIMEOUT", "-1")],
)
def test_gunicorn_refuses_bad_thread_counts_and_timeouts(monkeypatch, name, value):
    with pytest.raises(RuntimeError, match=name):
        gunicorn_settings(monkeypatch, **{name: value})


def test_gunicorn_accepts_the_settings_of_the_file(monkeypatch):
    """gunicorn's own Config takes every setting the file defines (and ignores the rest)."""
    settings = gunicorn_settings(monkeypatch, GUNICORN_THREADS="8")
    config = Config()
    for name, value in settings.items():
        if name in config.settings:
            config.set(name, value)

    assert config.worker_class is settings["worker_class"]
    assert config.threads == 8


# ---- gunicorn's errors in the JSON shape ------------------------------------------


def parse_error(raw: bytes):
    """The exception gunicorn 27's parser raises for a raw request."""
    with pytest.raises(errors.ParseException) as raised:
        next(RequestParser(Config(), iter([raw]), ("127.0.0.1", 1234)))
    return raised.value


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"GET /" + b"a" * 10240 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10240 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(200)) + b"\r\n", 431),
        (b"NOT-HTTP\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header: v\r\n\r\n", 400),
    ],
)
def test_what_gunicorn_refuses_is_mapped_to_its_status(raw, status):
    answer = server.client_error(parse_error(raw), Config())

    assert answer is not None and answer[0] == status
    assert answer[1]


def test_faults_of_the_app_are_not_client_errors():
    assert server.client_error(errors.InvalidResponseHeader("X-Bad"), Config()) is None
    assert server.client_error(RuntimeError("boom"), Config()) is None


def test_the_error_answer_is_the_api_error_shape():
    status_line, headers, body = split_answer(server.error_answer(414, "Too long."))

    assert status_line == f"HTTP/1.1 414 {HTTPStatus(414).phrase}"
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    assert json.loads(body) == error_body(414, "Too long.")
    assert list(json.loads(body)) == ["status", "error", "message"]


def fake_worker():
    return SimpleNamespace(cfg=Config(), log=SimpleNamespace(
        warning=logging.warning, info=logging.info, exception=logging.exception,
        debug=logging.debug, access=lambda *args: None,
    ))


@pytest.mark.parametrize(
    "exception, status",
    [
        (errors.LimitRequestHeaders("limit request headers fields"), 431),
        (errors.LimitRequestLine(8192, 4094), 414),
        (errors.InvalidRequestLine("NOT-HTTP"), 400),
        (server.ReadTimeout("Too slow."), 408),
        (ValueError("a bug"), 500),
    ],
)
def test_handle_error_writes_json(exception, status):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        server.ThreadWorker.handle_error(fake_worker(), None, ours, ("127.0.0.1", 1), exception)
        ours.close()
        data = theirs.makefile("rb").read()

    status_line, headers, body = split_answer(data)
    assert status_line.startswith(f"HTTP/1.1 {status} ")
    assert headers["Content-Type"] == "application/json"
    document = json.loads(body)
    assert document == error_body(status, document["message"]) and document["message"]
    if status == 500:
        assert "a bug" not in document["message"]


def test_a_body_too_slow_is_the_apps_own_408(tmp_path):
    """Raised while the app reads the body, ReadTimeout passes werkzeug's stream."""

    class SlowInput:
        def read(self, *args):
            raise server.ReadTimeout("The request body did not arrive in time.")

        readline = readinto = read

    client = create_app(test_config(tmp_path)).test_client()
    response = client.post(
        "/login", content_type="application/json",
        environ_overrides={"wsgi.input": SlowInput(), "CONTENT_LENGTH": "1000"},
    )

    assert_error(response, 408, "did not arrive in time")


# ---- read deadlines ---------------------------------------------------------------


@pytest.fixture
def connection():
    ours, theirs = socket.socketpair()
    conn = SimpleNamespace(deadline=None, seconds_per_byte=0.0, timeout_message="Too slow.",
                           timed_out=False)
    reader = server.DeadlineUnreader(conn, SocketUnreader(ours))
    yield conn, reader, theirs
    ours.close()
    theirs.close()


def test_reads_without_a_deadline_are_gunicorns(connection):
    conn, reader, client = connection
    client.sendall(b"GET / HTTP/1.1\r\n")

    assert reader.read() == b"GET / HTTP/1.1\r\n"
    assert reader.sock.gettimeout() is None


def test_a_read_past_the_deadline_is_a_408(connection):
    conn, reader, client = connection
    client.sendall(b"G")
    conn.deadline = time.monotonic() - 0.001

    with pytest.raises(server.ReadTimeout, match="Too slow"):
        reader.read()
    assert conn.timed_out


def test_a_read_waits_for_the_deadline_at_most(connection):
    conn, reader, client = connection
    conn.deadline = time.monotonic() + 0.02

    with pytest.raises(server.ReadTimeout):
        reader.read()  # nothing comes
    assert conn.timed_out
    assert reader.sock.gettimeout() is None  # the socket is left as it was


def test_body_bytes_move_the_deadline(connection):
    conn, reader, client = connection
    conn.deadline, conn.seconds_per_byte = time.monotonic() + 5, 0.001
    before = conn.deadline
    client.sendall(b"x" * 1000)

    assert reader.read() == b"x" * 1000
    assert conn.deadline == pytest.approx(before + 1.0)


def test_gunicorns_own_shorter_timeout_stays_a_plain_timeout(connection):
    """finish_body() bounds its drain itself: its timeout is not the client's 408."""
    conn, reader, client = connection
    conn.deadline = time.monotonic() + 5
    reader.sock.settimeout(0.01)

    with pytest.raises(TimeoutError) as raised:
        reader.read()
    assert not isinstance(raised.value, server.ReadTimeout)
    assert not conn.timed_out
    assert reader.sock.gettimeout() == 0.01
