"""Load benchmark: the API under gunicorn on SQLite and PostgreSQL against a Flask ceiling.

    python bench/run.py            # full run, writes bench/results.md
    python bench/run.py --quick    # 2 s per endpoint, SQLite only: a smoke run

See bench/README.md for what it measures and what the numbers mean.
"""

import argparse
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from sqlalchemy import bindparam, insert, text  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

import auth  # noqa: E402
from app import create_app  # noqa: E402
from models import (  # noqa: E402
    CANCELLED,
    CONFIRMED,
    Hall,
    Movie,
    Reservation,
    Seat,
    Showtime,
    User,
    db,
    reservation_seats,
)

MOVIES = 200
SHOWTIMES = 500
RESERVATIONS = 10_000
TARGET_ROWS, TARGET_SEATS_PER_ROW = "ABCDEFGHIJKLMNO", 20  # 300 seats
TARGET_BOOKED_SHARE = 0.4
OTHER_ROWS, OTHER_SEATS_PER_ROW = "ABCDEF", 10  # 60 seats per other showtime
FAN_RESERVATIONS = 50  # the user whose list is fetched
GENRES = ["Drama", "Comedy", "Action", "Sci-Fi", "Horror", "Romance", "Thriller",
          "Animation", "Documentary", "Fantasy"]
WORDS = ["Star", "Night", "River", "Silent", "Golden", "Last", "Broken", "Iron", "Summer",
         "Shadow", "Lost", "City", "Dream", "Storm", "Glass", "Wild", "Blue", "Empire"]
SEARCH_TERM = "star"

TARGETS = {  # minimum throughput as a share of the ceiling
    "GET /movies": 0.40,
    "GET /movies/search": 0.30,
    "GET /showtimes/<id>/seats": 0.30,
    "GET /reservations": 0.30,
    "POST + DELETE /reservations": 0.10,
}
REPORT_P99_LIMIT_MS = 100
WORKER_RSS_LIMIT_MB = 150


# ---- the dataset ------------------------------------------------------------------


def build_dataset(app, rng):
    """Fill an empty database through the models with bulk inserts; return the ids needed."""
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    password = generate_password_hash("bench-password", method="pbkdf2:sha256:1")
    with app.app_context():
        users = [{"username": f"viewer{n}", "username_key": f"viewer{n}",
                  "email": f"viewer{n}@example.com", "password_hash": password}
                 for n in range(200)]
        users += [
            {"username": "fan", "username_key": "fan", "email": "fan@example.com",
             "password_hash": password},
            {"username": "booker", "username_key": "booker", "email": "booker@example.com",
             "password_hash": password},
            {"username": "boss", "username_key": "boss", "email": "boss@example.com",
             "password_hash": password, "is_admin": True},
        ]
        db.session.execute(insert(User), users)
        user_ids = dict(db.session.execute(text("SELECT username, id FROM users")).all())
        viewers = [user_ids[f"viewer{n}"] for n in range(200)]

        movies = [{"title": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n}",
                   "genre": GENRES[n % len(GENRES)], "duration_minutes": 90 + n % 60,
                   "description": "A film made for load tests."} for n in range(MOVIES)]
        db.session.execute(insert(Movie), movies)
        movie_ids = db.session.scalars(text("SELECT id FROM movies ORDER BY id")).all()

        halls = [{"name": f"Hall {n}", "name_key": f"hall {n}", "created_at": now, "updated_at": now}
                 for n in range(1, 11)]
        db.session.execute(insert(Hall), halls)
        hall_ids = dict(db.session.execute(text("SELECT name, id FROM halls")).all())
        showtimes = []
        for n in range(SHOWTIMES):
            start = now + timedelta(days=1 + n // 40, hours=3 * (n % 4))
            hall = f"Hall {(n // 4) % 10 + 1}"
            showtimes.append({"movie_id": movie_ids[n % MOVIES], "start_time": start,
                              "end_time": start + timedelta(hours=2, minutes=45),
                              "hall": hall, "hall_id": hall_ids[hall], "price_cents": 1000})
        db.session.execute(insert(Showtime), showtimes)
        showtime_ids = db.session.scalars(text("SELECT id FROM showtimes ORDER BY id")).all()
        target, others = showtime_ids[0], showtime_ids[1:]

        seats = [{"showtime_id": target, "label": f"{row}{number}", "row": row, "number": number}
                 for row in TARGET_ROWS for number in range(1, TARGET_SEATS_PER_ROW + 1)]
        seats += [{"showtime_id": showtime_id, "label": f"{row}{number}", "row": row,
                   "number": number}
                  for showtime_id in others
                  for row in OTHER_ROWS for number in range(1, OTHER_SEATS_PER_ROW + 1)]
        db.session.execute(insert(Seat), seats)
        seat_ids = {}
        for seat_id, showtime_id in db.session.execute(
            text("SELECT id, showtime_id FROM seats ORDER BY id")
        ):
            seat_ids.setdefault(showtime_id, []).append(seat_id)

        # Two seats per reservation; one in ten cancelled. The target showtime gets
        # ~40% of its seats booked, the fan a list of their own.
        plan = []  # (user_id, showtime_id, seat ids, status)
        target_free = list(seat_ids[target])
        rng.shuffle(target_free)
        while len(seat_ids[target]) - len(target_free) < TARGET_BOOKED_SHARE * len(seat_ids[target]):
            plan.append((rng.choice(viewers), target, [target_free.pop(), target_free.pop()],
                         CONFIRMED))
        free = {showtime_id: list(seat_ids[showtime_id]) for showtime_id in others}
        for n in range(RESERVATIONS - len(plan)):
            showtime_id = others[n % len(others)]
            user_id = user_ids["fan"] if n < FAN_RESERVATIONS else rng.choice(viewers)
            status = CANCELLED if n % 10 == 9 else CONFIRMED
            plan.append((user_id, showtime_id, [free[showtime_id].pop(), free[showtime_id].pop()],
                         status))
        db.session.execute(insert(Reservation), [
            {"user_id": user_id, "showtime_id": showtime_id, "status": status,
             "total_cents": 1000 * len(seat_list), "email_status": "logged",
             "created_at": now - timedelta(minutes=n),
             "cancelled_at": now if status == CANCELLED else None}
            for n, (user_id, showtime_id, seat_list, status) in enumerate(plan)
        ])
        reservation_ids = db.session.scalars(text("SELECT id FROM reservations ORDER BY id")).all()
        db.session.execute(insert(reservation_seats), [
            {"reservation_id": reservation_id, "seat_id": seat_id, "price_cents": 1000}
            for reservation_id, (_, _, seat_list, _) in zip(reservation_ids, plan)
            for seat_id in seat_list
        ])
        seats_table = Seat.__table__
        db.session.execute(
            seats_table.update()
            .where(seats_table.c.id == bindparam("seat"))
            .values(reservation_id=bindparam("holder")),
            [{"seat": seat_id, "holder": reservation_id}
             for reservation_id, (_, _, seat_list, status) in zip(reservation_ids, plan)
             if status == CONFIRMED for seat_id in seat_list],
        )
        db.session.commit()
        free_labels = db.session.scalars(
            text("SELECT label FROM seats WHERE showtime_id = :id AND reservation_id IS NULL "
                 "ORDER BY id"), {"id": target}
        ).all()
        with app.test_request_context():
            tokens = {name: auth.login_tokens(db.session.get(User, user_ids[name]))["access_token"]
                      for name in ("fan", "booker", "boss")}
        db.session.remove()
        db.engine.dispose()
    return {"target": target, "free_labels": free_labels, "tokens": tokens}


def double_bookings(app) -> int:
    """Seats held by more than one confirmed reservation, or by a cancelled one."""
    with app.app_context():
        shared = db.session.scalar(text(
            "SELECT count(*) FROM (SELECT rs.seat_id FROM reservation_seats rs "
            "JOIN reservations r ON r.id = rs.reservation_id WHERE r.status = 'confirmed' "
            "GROUP BY rs.seat_id HAVING count(*) > 1) AS doubled"))
        stale = db.session.scalar(text(
            "SELECT count(*) FROM seats s JOIN reservations r ON r.id = s.reservation_id "
            "WHERE r.status <> 'confirmed'"))
        unheld = db.session.scalar(text(
            "SELECT count(*) FROM reservation_seats rs JOIN reservations r "
            "ON r.id = rs.reservation_id JOIN seats s ON s.id = rs.seat_id "
            "WHERE r.status = 'confirmed' AND (s.reservation_id IS NULL "
            "OR s.reservation_id <> r.id)"))
        db.session.remove()
        db.engine.dispose()
    return shared + stale + unheld


# ---- servers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """gunicorn with the same settings for the API and the ceiling: workers = cores."""

    def __init__(self, target, workers, environment, log_path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "gunicorn", "--workers", str(workers),
                   "--bind", f"127.0.0.1:{self.port}", "--chdir", ROOT, target]
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(command, env={**os.environ, **environment},
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_until_up()

    def wait_until_up(self, path="/"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log.name}")
            try:
                urllib.request.urlopen(self.base + "/health" if path else self.base, timeout=2)
                if len(self.workers()) >= 1:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start in time")

    def workers(self) -> list[int]:
        try:
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as file:
                return [int(pid) for pid in file.read().split()]
        except FileNotFoundError:
            return []

    def peak_worker_rss_mb(self) -> float:
        """The highest peak resident size (VmHWM) of any worker so far."""
        peaks = []
        for pid in self.workers():
            with open(f"/proc/{pid}/status") as file:
                for line in file:
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
        return max(peaks, default=0.0)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def ceiling_server(workers, log_path):
    server = Gunicorn.__new__(Gunicorn)
    server.port = free_port()
    server.base = f"http://127.0.0.1:{server.port}"
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers),
               "--bind", f"127.0.0.1:{server.port}", "--chdir", HERE, "ceiling:app"]
    server.log = open(log_path, "ab")
    server.process = subprocess.Popen(command, stdout=server.log, stderr=subprocess.STDOUT)
    server.wait_until_up(path=None)
    return server


# ---- load -------------------------------------------------------------------------


def wrk(base, path, seconds, connections, token=None, script="report.lua", args=(), headers=(),
        alone=False):
    """Run wrk against base+path; return its figures as a dict."""
    with open(os.path.join(HERE, "report.lua")) as file:
        reporting = file.read()
    source = reporting
    if script != "report.lua":
        with open(os.path.join(HERE, script)) as file:
            source = file.read() + "\n" + reporting
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(source)
    connections = 1 if alone else connections
    command = ["wrk", "--threads", "1", "--connections", str(connections),
               "--duration", f"{seconds}s", "--timeout", "10s", "--script", file.name]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    for header in headers:
        command += ["--header", header]
    command.append(base + path)
    if args:
        command += ["--", *args]
    try:
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(file.name)
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    figures = json.loads(line.removeprefix("BENCH "))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["errors"] = figures["status_errors"] + figures["socket_errors"]
    return figures


def etag_of(base, path, token):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["ETag"]


def bench_database(name, url, args, workers, log_path):
    """Build the dataset, serve it, drive each endpoint; return rows for the table."""
    rng = random.Random(6)
    secret = secrets.token_urlsafe(48)
    config = {"SQLALCHEMY_DATABASE_URI": url, "JWT_SECRET_KEY": secret,
              "RATELIMIT_ENABLED": False, "LOG_LEVEL": "WARNING", "AUTO_MIGRATE": True}
    app = create_app(config)
    started = time.monotonic()
    data = build_dataset(app, rng)
    print(f"[{name}] dataset built in {time.monotonic() - started:.1f} s", flush=True)

    ceiling = ceiling_server(workers, log_path)
    try:
        ceiling_figures = wrk(ceiling.base, "/", args.seconds, args.connections)
    finally:
        ceiling.stop()
    print(f"[{name}] ceiling: {ceiling_figures['rps']:.0f} req/s", flush=True)

    environment = {"DATABASE_URL": url, "JWT_SECRET_KEY": secret, "RATELIMIT_ENABLED": "false",
                   "LOG_LEVEL": "WARNING"}
    server = Gunicorn("app:create_app()", workers, environment, log_path)
    tokens, target = data["tokens"], data["target"]
    seat_map = f"/showtimes/{target}/seats"
    runs = [
        ("GET /movies", "/movies?page=2", tokens["fan"], {}),
        ("GET /movies/search", f"/movies/search?q={SEARCH_TERM}", tokens["fan"], {}),
        ("GET /showtimes/<id>/seats", seat_map, tokens["fan"], {}),
        ("GET /showtimes/<id>/seats, If-None-Match (304)", seat_map, tokens["fan"],
         {"headers": [f"If-None-Match: {etag_of(server.base, seat_map, tokens['fan'])}"]}),
        ("GET /reservations", "/reservations", tokens["fan"], {}),
        ("GET /admin/report", "/admin/report", tokens["boss"], {}),
        # One admin at a time: the report's own latency, without 15 others queued ahead.
        ("GET /admin/report, 1 connection", "/admin/report", tokens["boss"], {"alone": True}),
        ("POST + DELETE /reservations", "/", tokens["booker"],
         {"script": "booking.lua", "args": [str(target), ",".join(data["free_labels"])]}),
    ]
    rows = []
    try:
        for label, path, token, extra in runs:
            figures = wrk(server.base, path, args.seconds, args.connections, token, **extra)
            figures["endpoint"] = label
            figures["ratio"] = figures["rps"] / ceiling_figures["rps"]
            rows.append(figures)
            print(f"[{name}] {label}: {figures['rps']:.0f} req/s, ratio {figures['ratio']:.2f}, "
                  f"p99 {figures['p99_us'] / 1000:.1f} ms, errors {figures['errors']}", flush=True)
        peak_rss = server.peak_worker_rss_mb()
    finally:
        server.stop()
    doubled = double_bookings(app)
    return {"database": name, "ceiling": ceiling_figures, "rows": rows,
            "peak_rss_mb": peak_rss, "double_bookings": doubled}


# ---- databases --------------------------------------------------------------------


def with_sqlite(run):
    with tempfile.TemporaryDirectory(prefix="cinema-bench-") as folder:
        return run(f"sqlite:///{os.path.join(folder, 'bench.db')}")


def with_postgresql(run, admin_url):
    """A fresh database of its own, dropped afterwards."""
    import psycopg

    name = f"cinema_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        host = admin_url.split("://", 1)[1].rsplit("/", 1)[0]
        return run(f"postgresql+psycopg://{host}/{name}")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- the report -------------------------------------------------------------------


def verdicts(result) -> list[str]:
    lines = []
    for row in result["rows"]:
        target = TARGETS.get(row["endpoint"])
        if target is None or (result["database"] != "SQLite" and not row["endpoint"].startswith("POST")):
            continue
        met = row["ratio"] >= target
        lines.append(f"- {row['endpoint']}: ratio {row['ratio']:.2f} (target ≥ {target:.2f}) — "
                     f"{'met' if met else 'MISSED'}")
        if row["endpoint"].startswith("POST"):
            clean = row["errors"] == 0 and result["double_bookings"] == 0
            lines.append(f"- booking errors {row['errors']}, double bookings "
                         f"{result['double_bookings']} (target 0 and 0) — "
                         f"{'met' if clean else 'MISSED'}")
    for report in result["rows"]:
        if report["endpoint"].startswith("GET /admin/report") and result["database"] == "SQLite":
            p99 = report["p99_us"] / 1000
            lines.append(f"- {report['endpoint']}: p99 {p99:.1f} ms (target < "
                         f"{REPORT_P99_LIMIT_MS} ms) — "
                         f"{'met' if p99 < REPORT_P99_LIMIT_MS else 'MISSED'}")
    rss = result["peak_rss_mb"]
    lines.append(f"- peak worker memory {rss:.0f} MB (target < {WORKER_RSS_LIMIT_MB} MB) — "
                 f"{'met' if rss < WORKER_RSS_LIMIT_MB else 'MISSED'}")
    return lines


def markdown(results, args, workers, load_before) -> str:
    load_after = os.getloadavg()
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Cores: {os.cpu_count()}; gunicorn workers: {workers} (sync)",
        f"- Load average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f} "
        "(above the core count, other processes were competing for the CPU)",
        f"- wrk: 1 thread, {args.connections} connections, {args.seconds} s per endpoint",
        f"- Dataset: {MOVIES} movies, {SHOWTIMES} showtimes, a target showtime of "
        f"{len(TARGET_ROWS) * TARGET_SEATS_PER_ROW} seats ~{TARGET_BOOKED_SHARE:.0%} booked, "
        f"{RESERVATIONS} reservations",
        "",
        "Ratio = the endpoint's requests/s divided by the ceiling's (a bare Flask app under the",
        "same gunicorn settings) measured in the same run. The booking row counts both the",
        "POST and the DELETE, each a committed write.",
    ]
    for result in results:
        ceiling = result["ceiling"]
        lines += [
            "",
            f"## {result['database']}",
            "",
            "| Endpoint | req/s | p50 ms | p99 ms | errors | ratio |",
            "|---|---:|---:|---:|---:|---:|",
            f"| ceiling (`GET /` of bench/ceiling.py) | {ceiling['rps']:.0f} | "
            f"{ceiling['p50_us'] / 1000:.1f} | {ceiling['p99_us'] / 1000:.1f} | "
            f"{ceiling['errors']} | 1.00 |",
        ]
        for row in result["rows"]:
            lines.append(
                f"| {row['endpoint']} | {row['rps']:.0f} | {row['p50_us'] / 1000:.1f} | "
                f"{row['p99_us'] / 1000:.1f} | {row['errors']} | {row['ratio']:.2f} |"
            )
        lines += ["", f"Double bookings after the run: {result['double_bookings']}. "
                  f"Peak worker memory (VmHWM): {result['peak_rss_mb']:.0f} MB.", "",
                  "Targets:", "", *verdicts(result)]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 s per endpoint on SQLite only; writes bench/results-quick.md")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per endpoint (10)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--databases", default=None,
                        help="comma-separated: sqlite,postgresql (default both; --quick: sqlite)")
    parser.add_argument("--postgres-url",
                        default=os.environ.get("BENCH_POSTGRES_URL",
                                               "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a server and role allowed to create databases")
    args = parser.parse_args()
    args.seconds = args.seconds or (2 if args.quick else 10)
    databases = (args.databases or ("sqlite" if args.quick else "sqlite,postgresql")).split(",")
    workers = os.cpu_count() or 1
    log_path = os.path.join(tempfile.gettempdir(), f"cinema-bench-{os.getpid()}.log")
    print(f"gunicorn output goes to {log_path}", flush=True)

    load_before = os.getloadavg()
    results = []
    for database in databases:
        if database == "sqlite":
            results.append(with_sqlite(
                lambda url: bench_database("SQLite", url, args, workers, log_path)))
        elif database == "postgresql":
            results.append(with_postgresql(
                lambda url: bench_database("PostgreSQL", url, args, workers, log_path),
                args.postgres_url))
        else:
            parser.error(f"unknown database {database!r}")
    text_out = markdown(results, args, workers, load_before)
    target = os.path.join(HERE, "results-quick.md" if args.quick else "results.md")
    with open(target, "w") as file:
        file.write(text_out)
    print(text_out)
    print(f"written to {target}")


if __name__ == "__main__":
    main()
