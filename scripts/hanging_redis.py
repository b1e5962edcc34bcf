"""A Redis that hangs rather than refuses: how long do rate-limited requests wait?

    python scripts/hanging_redis.py [--requests 40] [--pause 0.2] [--timeout SECONDS]

Starts a redis-server of its own on a free port of 127.0.0.1 (never the one on 6379),
builds the app on a temporary SQLite file with its rate-limit counters in that Redis,
and times rate-limited requests (GET /movies as an admin) through the Flask test
client in three phases: while Redis answers, while it is stopped with SIGSTOP (it
accepts connections but answers nothing), and after SIGCONT. The stopped phase lasts
``requests x pause`` seconds, so the limiter's own re-checks of Redis (after 1, 2, 4,
8... s) fall inside it. Prints the figures of each phase; exits 1 if any request took
over 1 s or did not answer 200. ``--timeout`` sets RATELIMIT_STORAGE_TIMEOUT.
"""

import argparse
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from app import create_app  # noqa: E402

SLOW = 1.0  # seconds: a request slower than this fails the run
ADMIN = {"username": "admin", "password": "admin-pass-1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=1)
    for _ in range(50):
        try:
            client.ping()
            return server
        except redis.ConnectionError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"redis-server did not start on port {port}")


def counted_in_redis(client: redis.Redis, prefix: str) -> int:
    """The sum of the rate-limit counters under ``prefix``."""
    return sum(int(client.get(key) or 0) for key in client.scan_iter(f"{prefix}:*"))


def phase(name, client, headers, requests, pause, counter=None) -> tuple[list[float], dict]:
    """Time ``requests`` GET /movies, one every ``pause`` seconds; print the figures."""
    seconds, statuses, in_redis = [], {}, []
    for _ in range(requests):
        before = counter() if counter else None
        started = time.perf_counter()
        response = client.get("/movies", headers=headers)
        seconds.append(time.perf_counter() - started)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if counter:
            in_redis.append(counter() > before)
        time.sleep(pause)
    slow = [f"#{index + 1} {value:.3f}" for index, value in enumerate(seconds) if value > 0.05]
    print(
        f"{name:<16} n={len(seconds)}  median {statistics.median(seconds) * 1000:7.1f} ms"
        f"  max {max(seconds) * 1000:7.1f} ms  total {sum(seconds):6.2f} s"
        f"  over {SLOW:g} s: {sum(value > SLOW for value in seconds)}  statuses {statuses}"
    )
    if slow:
        print(f"{'':<16} over 50 ms (request seconds): {', '.join(slow)}")
    if in_redis:
        back = in_redis.index(True) + 1 if True in in_redis else None
        print(f"{'':<16} counted in Redis from request #{back}" if back else f"{'':<16} never back on Redis")
    return seconds, statuses


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="requests per phase (default 40)")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between requests (default 0.2)")
    parser.add_argument("--timeout", type=float, help="RATELIMIT_STORAGE_TIMEOUT (default: the app's)")
    options = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed")
    logging.getLogger("flask-limiter").setLevel(logging.ERROR)  # the fallback warns on each switch

    port, prefix = free_port(), f"hanging-{uuid.uuid4().hex[:8]}"
    folder = tempfile.mkdtemp(prefix="hanging-redis-")
    server = start_redis(port)
    try:
        config = {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{os.path.join(folder, 'cinema.db')}",
            "CREATE_TABLES": True,
            "JWT_SECRET_KEY": "hanging-redis-script-key-that-is-long-enough",
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
            "ADMIN_USERNAME": ADMIN["username"],
            "ADMIN_EMAIL": "admin@example.com",
            "ADMIN_PASSWORD": ADMIN["password"],
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{port}",
            "RATELIMIT_KEY_PREFIX": prefix,
            "DEFAULT_RATE_LIMIT": "100000 per minute",
        }
        if options.timeout is not None:
            config["RATELIMIT_STORAGE_TIMEOUT"] = options.timeout
        app = create_app(config)
        client = app.test_client()
        token = client.post("/login", json=ADMIN).json["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        watcher = redis.Redis(port=port, socket_timeout=1)
        counter = lambda: counted_in_redis(watcher, prefix)  # noqa: E731

        print(
            f"redis-server on 127.0.0.1:{port}; RATELIMIT_STORAGE_TIMEOUT="
            f"{app.config.get('RATELIMIT_STORAGE_TIMEOUT', 'not a setting (redis-py default 5 s)')}"
        )
        results = [phase("Redis answering", client, headers, options.requests, options.pause, counter)]
        os.kill(server.pid, signal.SIGSTOP)
        results.append(phase("Redis stopped", client, headers, options.requests, options.pause))
        os.kill(server.pid, signal.SIGCONT)
        results.append(phase("after SIGCONT", client, headers, options.requests, options.pause, counter))
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)

    slow = sum(value > SLOW for seconds, _ in results for value in seconds)
    failed = sum(count for _, statuses in results for status, count in statuses.items() if status != 200)
    if slow or failed:
        print(f"FAIL: {slow} requests over {SLOW:g} s, {failed} not 200")
        raise SystemExit(1)
    print(f"OK: every request answered 200 within {SLOW:g} s")


if __name__ == "__main__":
    main()
