"""Prove with the real server that slow clients cannot starve it.

Starts gunicorn with the project's gunicorn.conf.py on a temporary SQLite
database, keeps --clients connections (50 by default) trickling their request
one byte every 2 s - half the request line and headers, half the body of a
POST /login with `Content-Length: 1000` - and opens a new one whenever the
server cuts one. Meanwhile a normal client asks `GET /health` --polls times,
one a second. Then, with the slow clients still there, it sends a 10 KB
request line, a 10 KB header, 200 headers and a malformed request line, and
checks that the answers (414, 431, 431, 400) are JSON in the API's error shape.

Prints the health latencies, what happened to the slow connections, and the
error answers; exits 1 if a health request failed or took 1 s or more, or if an
error answer is not in the JSON shape. About 30 s.

    python scripts/slow_clients.py
    python scripts/slow_clients.py --config old.conf.py   # another gunicorn config
"""

import argparse
import http.client
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from http import HTTPStatus

from processes import children_of, stop as stop_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEALTH_LIMIT = 1.0  # seconds a health answer may take
HEALTH_TIMEOUT = 2.0  # seconds before a health request counts as failed
ERROR_TIMEOUT = 3.0
TRICKLE_EVERY = 2.0  # seconds between two bytes of a slow client

HEAD_TRICKLE = (  # never complete at one byte every 2 s
    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 500 + b"\r\n\r\n"
)
BODY_HEAD = (
    b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n"
)
BODY_TRICKLE = (b'{"username": "' + b"a" * 1000)[:1000]

BIG_HEADERS = b"".join(b"X-Header-%d: value\r\n" % number for number in range(200))
ERROR_CASES = [  # (what, raw request, expected status)
    ("10 KB request line", b"GET /" + b"a" * 10240 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
    ("10 KB header",
     b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 10240 + b"\r\n\r\n", 431),
    ("200 headers", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + BIG_HEADERS + b"\r\n", 431),
    ("malformed request line", b"NOT-HTTP\r\n\r\n", 400),
]


# ---- the server -------------------------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn with a given config file, on a temporary SQLite database."""

    def __init__(self, config, workers, workdir):
        self.config = config
        self.workers = workers
        self.port = free_port()
        self.log_path = os.path.join(workdir, "gunicorn.log")
        self.environment = {
            **os.environ,
            "DATABASE_URL": "sqlite:///" + os.path.join(workdir, "slow.db"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "GUNICORN_WORKERS": str(workers),
            "JWT_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
            "RATELIMIT_ENABLED": "false",  # every client here shares one address
            "RESEND_API_KEY": "",
            "LOG_LEVEL": "WARNING",
            "AUTO_MIGRATE": "false",
        }
        self.process = None
        self.log = None

    def start(self):
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
            cwd=ROOT, env=self.environment, check=True, capture_output=True, timeout=60,
        )
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            # No control socket: it would replace that of any other gunicorn of this user.
            [sys.executable, "-m", "gunicorn", "-c", self.config, "--no-control-socket",
             "--access-logfile", "/dev/null", "app:create_app()"],
            cwd=ROOT, env=self.environment, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            if health(self.port)[1] == 200 and len(self.worker_pids()) == self.workers:
                time.sleep(0.5)  # the last worker to boot may still be loading the app
                return
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not start within 30 s")

    def worker_pids(self):
        """Process ids of the gunicorn workers (children of the master)."""
        return children_of(self.process.pid)

    def stop(self):
        stop_process(self.process)
        if self.log:
            self.log.close()


def health(port, timeout=HEALTH_TIMEOUT):
    """(seconds, status or error) of one GET /health on a new connection."""
    start = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return time.monotonic() - start, response.status
    except (OSError, http.client.HTTPException) as error:
        return time.monotonic() - start, type(error).__name__
    finally:
        connection.close()


# ---- the slow clients -------------------------------------------------------------


class SlowClient:
    def __init__(self, kind, port, clock):
        self.kind = kind  # "headers" or "body"
        self.opened = clock()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        if kind == "body":
            self.sock.sendall(BODY_HEAD)
            self.pending = BODY_TRICKLE
        else:
            self.pending = HEAD_TRICKLE
        self.next_byte = self.opened
        self.sent = 0

    def fileno(self):
        return self.sock.fileno()

    def trickle(self, now):
        """Send the next byte when it is due; False when the server has cut us off."""
        if now < self.next_byte or not self.pending:
            return True
        try:
            self.sock.sendall(self.pending[:1])
        except OSError:
            return False
        self.pending = self.pending[1:]
        self.sent += 1
        self.next_byte += TRICKLE_EVERY
        return True

    def what_the_server_said(self):
        """The status line the server answered before closing, or how it closed."""
        try:
            self.sock.settimeout(0.5)
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except OSError:
            return "no answer"
        if not data:
            return "closed"
        return data.split(b"\r\n", 1)[0].decode("latin-1")


class SlowCrowd(threading.Thread):
    """Keeps `count` slow clients connected, replacing each one the server cuts."""

    def __init__(self, count, port, clock):
        super().__init__(daemon=True)
        self.port, self.clock = port, clock
        self.kinds = ["headers" if number % 2 == 0 else "body" for number in range(count)]
        self.clients = []
        self.cuts = []  # (kind, seconds it lived, what the server said, when)
        self.opened = Counter()
        self.errors = []
        self.stopping = threading.Event()

    def open(self, kind):
        try:
            self.clients.append(SlowClient(kind, self.port, self.clock))
        except OSError as error:
            self.errors.append(f"{kind}: could not connect: {error}")
            return False
        self.opened[kind] += 1
        return True

    def run(self):
        missing = list(self.kinds)  # slow clients to (re)connect
        while not self.stopping.is_set():
            missing = [kind for kind in missing if not self.open(kind)]
            readable = []
            if self.clients:
                readable = select.select(self.clients, [], [], 0.1)[0]
            else:
                time.sleep(0.1)
            now = self.clock()
            cut = set(readable)
            cut.update(client for client in self.clients if not client.trickle(now))
            for client in cut:
                answer = client.what_the_server_said()
                self.cuts.append((client.kind, now - client.opened, answer, now))
                client.sock.close()
                self.clients.remove(client)
                missing.append(client.kind)

    def stop(self):
        self.stopping.set()
        self.join(timeout=5)
        for client in self.clients:
            client.sock.close()


# ---- the error answers ------------------------------------------------------------


def raw_request(port, data):
    """The whole answer to `data` (until the server closes or ERROR_TIMEOUT passes)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=ERROR_TIMEOUT) as sock:
        try:
            sock.sendall(data)
            deadline = time.monotonic() + ERROR_TIMEOUT
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
    return answer


def check_error_answer(answer, status):
    """None if `answer` is `status` in the JSON error shape, else what is wrong."""
    if not answer:
        return "no answer"
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[1] != str(status):
        return f"status line {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if not headers.get("content-type", "").startswith("application/json"):
        return f"Content-Type {headers.get('content-type')!r}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"body is not JSON: {body[:80]!r}"
    expected = {"status": status, "error": HTTPStatus(status).phrase}
    if not isinstance(document, dict) or set(document) != {"status", "error", "message"}:
        return f"body {document!r}"
    if {key: document[key] for key in expected} != expected:
        return f"body {document!r}"
    if not isinstance(document["message"], str) or not document["message"]:
        return f"no message in {document!r}"
    return None


# ---- the run ----------------------------------------------------------------------


def run(args, workdir):
    server = Server(args.config, args.workers, workdir)
    failures = []
    crowd = None
    try:
        server.start()
        config = os.path.relpath(args.config, ROOT)
        config = args.config if config.startswith("..") else config
        print(f"gunicorn -c {config} on port {server.port}, {args.workers} workers, "
              f"{args.clients} slow clients")
        start = time.monotonic()
        clock = lambda: time.monotonic() - start  # noqa: E731
        crowd = SlowCrowd(args.clients, server.port, clock)
        crowd.start()
        time.sleep(1.0)  # every slow client connected and trickling
        opened = len(crowd.clients)
        print(f"  {opened} slow connections open at {clock():.1f} s")
        if opened < args.clients:
            failures.append(f"only {opened} of {args.clients} slow connections could be opened")

        # One health request a second, each on its own thread: a stuck one does
        # not delay the next.
        results = [(1.0 + number, float("inf"), "no answer") for number in range(args.polls)]

        def poll(number):
            results[number] = (clock(), *health(server.port))

        pollers = []
        for number in range(args.polls):
            time.sleep(max(0.0, 1.0 + number - clock()))
            pollers.append(threading.Thread(target=poll, args=(number,), daemon=True))
            pollers[-1].start()
        for poller in pollers:
            poller.join(timeout=HEALTH_TIMEOUT + 5)
        open_during_polls = len(crowd.clients)

        latencies = [seconds for _, seconds, _ in results]
        print(f"GET /health x{args.polls} from {results[0][0]:.1f} s to {results[-1][0]:.1f} s, "
              f"{open_during_polls} slow connections open at the end:")
        print("  latencies (ms): " + " ".join(
            f"{seconds * 1000:.0f}" + ("" if status == 200 else f"[{status}]")
            for _, seconds, status in results))
        print(f"  median {statistics.median(latencies) * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms")
        for when, seconds, status in results:
            if status != 200:
                failures.append(f"GET /health at {when:.1f} s: {status} after {seconds:.2f} s")
            elif seconds >= HEALTH_LIMIT:
                failures.append(f"GET /health at {when:.1f} s took {seconds:.2f} s")

        print("gunicorn's own errors, with the slow clients still connected:")
        for what, data, status in ERROR_CASES:
            answer = raw_request(server.port, data)
            problem = check_error_answer(answer, status)
            body = answer.partition(b"\r\n\r\n")[2].decode("latin-1")
            shown = " ".join(body.split())[:120] or "(nothing)"
            print(f"  {what}: {'ok' if problem is None else 'WRONG'} {status}: {shown}")
            if problem:
                failures.append(f"{what}: expected a JSON {status}, got {problem}")

        # Slow clients a little longer, to see what the server does with them.
        time.sleep(max(0.0, args.hold - clock()))
        crowd.stop()
        print(f"slow connections after {clock():.1f} s: {sum(crowd.opened.values())} opened "
              f"({dict(crowd.opened)}), {len(crowd.clients)} still open, "
              f"{len(crowd.cuts)} cut by the server")
        for kind in ("headers", "body"):
            cuts = [cut for cut in crowd.cuts if cut[0] == kind]
            if cuts:
                lived = sorted(cut[1] for cut in cuts)
                answers = Counter(cut[2] for cut in cuts)
                print(f"  {kind} tricklers: {len(cuts)} cut after {lived[0]:.1f}-{lived[-1]:.1f} s "
                      f"(first at {min(cut[3] for cut in cuts):.1f} s), answered "
                      + ", ".join(f"{answer!r} x{count}" for answer, count in answers.items()))
            else:
                print(f"  {kind} tricklers: none cut")
        for error in crowd.errors[:5]:
            print(f"  {error}")
        if len(crowd.errors) > 5:
            print(f"  ... and {len(crowd.errors) - 5} more failed connects")
    finally:
        if crowd:
            crowd.stop()  # before gunicorn: a sync worker waits for its client to hang up
        server.stop()
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "gunicorn.conf.py"),
                        help="gunicorn config file (default the project's gunicorn.conf.py)")
    parser.add_argument("--clients", type=int, default=50, help="slow clients (default 50)")
    parser.add_argument("--polls", type=int, default=20, help="health requests, one a second")
    parser.add_argument("--workers", type=int, default=4,
                        help="GUNICORN_WORKERS (default 4, as in the README's example)")
    parser.add_argument("--hold", type=float, default=23.0,
                        help="seconds the slow clients keep at it at least (default 23)")
    args = parser.parse_args()
    args.config = os.path.abspath(args.config)
    with tempfile.TemporaryDirectory(prefix="cinema-slow-") as workdir:
        try:
            failures = run(args, workdir)
        except (RuntimeError, subprocess.SubprocessError) as error:
            failures = [f"the server did not start: {error}"]
        if failures:
            print("FAILED:")
            for failure in failures:
                print(f"  {failure}")
            log_path = os.path.join(workdir, "gunicorn.log")
            if os.path.exists(log_path):
                with open(log_path) as log:
                    print(log.read()[-3000:])
    if not failures:
        print("passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
