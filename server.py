"""The gunicorn worker of `gunicorn.conf.py`: threads that slow clients cannot use up.

gunicorn's own gthread worker, with four changes:

- A new connection waits in the worker's event loop (no thread) until its first
  bytes arrive, and a worker whose threads are all busy stops accepting, so new
  connections go to a worker with a free thread instead of queueing behind
  slow clients.
- Read deadlines: the request line and headers must have arrived
  `header_timeout` seconds after the connection was accepted (or, on a kept-alive
  connection, after the next request began); the body gets `body_timeout`
  seconds from the end of the headers, plus one second per `body_min_rate` bytes
  received, so a steady upload never times out and a trickle is cut. A client
  too slow gets 408 and the connection is closed.
- A connection is closed (after lingering up to 2 s for the client to hang up)
  in its worker thread: gunicorn does it in the event loop, which a client
  that never hangs up would stall for those 2 s each time.
- Errors gunicorn answers itself, before the app runs (a request line or headers
  too large, a malformed request, a timeout), are in the API's JSON error shape.

The deadlines cover HTTP/1 requests; with gunicorn's own TLS (certfile), the
handshake is not bounded by them.
"""

import errno
import json
import selectors
import time
from datetime import datetime
from functools import partial
from http import HTTPStatus
from ssl import SSLError

from gunicorn import util
from gunicorn.http import errors
from gunicorn.http.unreader import SocketUnreader
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers import gthread
from werkzeug.exceptions import RequestTimeout


class ReadTimeout(RequestTimeout):
    """The client did not send its request in time (408).

    A werkzeug HTTP exception, not an OSError: raised while the app reads the
    body, it passes werkzeug's stream wrapper and becomes the app's own JSON 408;
    raised while gunicorn reads the headers, it reaches `handle_error`.
    """


# ---- the JSON error answer ---------------------------------------------------------


def error_body(status: int, message: str) -> dict:
    """The API's error shape (see `error_body` in app.py)."""
    return {"status": status, "error": HTTPStatus(status).phrase, "message": message}


def error_answer(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying `error_body`; the connection then closes."""
    body = json.dumps(error_body(status, message)).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


BAD_REQUEST = (
    errors.InvalidRequestLine, errors.InvalidRequestMethod, errors.InvalidHTTPVersion,
    errors.InvalidHeader, errors.InvalidHeaderName, errors.ObsoleteFolding,
    errors.InvalidProxyLine, errors.InvalidSchemeHeaders, errors.InvalidH2CPreface,
    errors.InvalidChunkSize, errors.ChunkMissingTerminator, errors.InvalidChunkExtension,
)


def client_error(exc, cfg):
    """(status, message) for an error of the client's, as gunicorn 27 maps them; else None."""
    detail = str(exc)[:200]  # the offending text can be as long as the limits allow
    if isinstance(exc, (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName)):
        return None  # the app sent a bad header: a 500, like any other fault of the app
    if isinstance(exc, ReadTimeout):
        return 408, exc.description
    if isinstance(exc, errors.LimitRequestLine):
        return 414, f"The request line is longer than {cfg.limit_request_line} bytes."
    if isinstance(exc, errors.LimitRequestHeaders):
        return 431, (
            f"The request headers are too large: at most {cfg.limit_request_fields} fields"
            f" of {cfg.limit_request_field_size} bytes each."
        )
    if isinstance(exc, BAD_REQUEST):
        return 400, f"The request could not be parsed: {detail}"
    if isinstance(exc, errors.ExpectationFailed):
        return 417, detail
    if isinstance(exc, errors.UnsupportedTransferCoding):
        return 501, detail
    if isinstance(exc, (errors.ForbiddenProxyRequest, SSLError)):
        return 403, "Request forbidden."
    return None  # ConfigurationProblem included: a 500 without its details


# ---- read deadlines ----------------------------------------------------------------


class Connection(gthread.TConn):
    """A client connection that knows by when the rest of its request is due."""

    def __init__(self, cfg, sock, client, server, deadline):
        super().__init__(cfg, sock, client, server)
        self.deadline = deadline  # time.monotonic() value; None between requests
        self.seconds_per_byte = 0.0  # how much each byte read moves the deadline
        self.timeout_message = ""
        self.timed_out = False
        self.closed = False

    def init(self):
        super().init()
        unreader = getattr(self.parser, "unreader", None)
        if type(unreader) is SocketUnreader:  # HTTP/1 on a socket: read under the deadline
            self.parser.unreader = DeadlineUnreader(self, unreader)

    def close(self, graceful=False):
        if not self.closed:
            self.closed = True
            super().close(graceful)


class DeadlineUnreader(SocketUnreader):
    """gunicorn's socket reader, with each read bounded by the connection's deadline."""

    def __init__(self, conn, unreader):
        super().__init__(unreader.sock, unreader.mxchunk)
        self.buf = unreader.buf  # anything already read ahead
        self.conn = conn

    def chunk(self, size_hint=None):
        conn = self.conn
        if conn.deadline is None:
            return super().chunk(size_hint)
        remaining = conn.deadline - time.monotonic()
        if remaining <= 0:
            self.expire()
        previous = self.sock.gettimeout()  # gunicorn may bound a read itself
        ours = previous is None or remaining < previous
        self.sock.settimeout(remaining if ours else previous)
        try:
            data = super().chunk(size_hint)
        except TimeoutError:
            if ours:
                self.expire()
            raise
        finally:
            self.sock.settimeout(previous)
        conn.deadline += len(data) * conn.seconds_per_byte
        return data

    def expire(self):
        self.conn.timed_out = True
        raise ReadTimeout(self.conn.timeout_message)


# ---- the worker --------------------------------------------------------------------


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker, hardened against slow clients (see the module)."""

    header_timeout = 10  # seconds; gunicorn.conf.py sets these from the environment
    body_timeout = 20
    body_min_rate = 16 * 1024  # bytes per second that keep a body from timing out

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy = 0  # connections handed to the thread pool and not back yet

    # -- accepting only with a free thread

    def has_free_thread(self):
        return self.busy < self.cfg.threads

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled and self.has_free_thread())

    def accept(self, listener):
        if not self.has_free_thread():
            return  # left in the listen queue for a worker with a free thread
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = Connection(
            self.cfg, client_sock, client_addr, listener.getsockname(),
            deadline=time.monotonic() + self.header_timeout,
        )
        # Until its first bytes arrive, the connection waits here, not in a thread;
        # murder_pending() closes it if they have not come by the header deadline.
        conn.timeout = conn.deadline
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def enqueue_req(self, conn):
        self.busy += 1
        super().enqueue_req(conn)
        if not self.has_free_thread():
            self.set_accept_enabled(False)

    def finish_request(self, conn, fs):
        self.busy -= 1  # the main loop accepts again on its next turn
        super().finish_request(conn, fs)

    # -- deadlines, in the worker thread

    def handle(self, conn):
        if conn.deadline is None:  # the next request on a kept-alive connection
            conn.deadline = time.monotonic() + self.header_timeout
        conn.timeout_message = (
            f"The request line and headers did not arrive within {self.header_timeout} seconds."
        )
        try:
            keep = super().handle(conn)
        finally:
            conn.deadline, conn.seconds_per_byte = None, 0.0
        if keep is False:
            conn.close(graceful=True)  # linger here, not in the main loop
        return keep

    def handle_request(self, req, conn):
        # The headers are in; the body is due within body_timeout, plus a second
        # per body_min_rate bytes received.
        conn.deadline = time.monotonic() + self.body_timeout
        conn.seconds_per_byte = 1 / self.body_min_rate
        conn.timeout_message = (
            f"The request body did not arrive in time ({self.body_timeout} seconds, plus one"
            f" per {self.body_min_rate // 1024} KiB received)."
        )
        return super().handle_request(req, conn)

    def _keepalive_after(self, conn, keepalive):
        if conn.timed_out:
            return False  # the rest of the body is still on its way: close
        # gunicorn bounds the drain of a body the app did not read (5 s, 64 KiB).
        conn.deadline = None
        return super()._keepalive_after(conn, keepalive)

    # -- gunicorn's own error answers, as JSON

    def handle_error(self, req, client, addr, exc):
        """What gunicorn's Worker.handle_error does, answering in the API's JSON shape."""
        request_start = datetime.now()
        addr = addr or ("", -1)  # a unix socket
        answer = client_error(exc, self.cfg)
        if answer is None:
            if hasattr(req, "uri"):
                self.log.exception("Error handling request %s", req.uri)
            else:
                self.log.exception("Error handling request (no URI read)")
            answer = 500, "Something went wrong on our side."
        elif answer[0] == 408:
            self.log.info("Request too slow from ip=%s: %s", addr[0], exc.description)
        else:
            self.log.warning("Invalid request from ip=%s: %s", addr[0], exc)
        status, message = answer
        data = error_answer(status, message)

        if req is None and isinstance(exc, errors.InvalidHeader):
            req = getattr(exc, "req", None)  # for the access log
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
            resp = Response(req, client, self.cfg)
            resp.status = f"{status} {HTTPStatus(status).phrase}"
            resp.response_length = len(data)
            self.log.access(resp, req, environ, datetime.now() - request_start)

        try:
            util.write_nonblock(client, data)
        except Exception:
            self.log.debug("Failed to send error message.")

