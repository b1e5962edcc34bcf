"""Load benchmark: the API under gunicorn on SQLite and PostgreSQL against a Flask ceiling.

    python bench/run.py                  # full run, writes bench/results.md
    python bench/run.py --scale          # also the scale dataset, side by side
    python bench/run.py --quick          # 2 s per endpoint, SQLite only: a smoke run

BENCH_SCALE_FACTOR=0.02 shrinks the scale dataset for a dry run of --scale.
See bench/README.md for what it measures and what the numbers mean.
"""

import argparse
import itertools
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
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GUNICORN_CONF = os.path.join(ROOT, "gunicorn.conf.py")
sys.path.insert(0, ROOT)

from sqlalchemy import insert, text  # noqa: E402
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

SMALL = {"movies": 200, "showtimes": 500, "reservations": 10_000}
SCALE = {"movies": 20_000, "showtimes": 50_000, "reservations": 1_000_000}  # reservations: PostgreSQL
PER_PAGE = 20  # the API's default page size
TARGET_ROWS, TARGET_SEATS_PER_ROW = "ABCDEFGHIJKLMNO", 20  # 300 seats: showtime 1
LARGE_ROWS, LARGE_SEATS_PER_ROW = "ABCDEFGHIJKLMNOPQRSTUVWXY", 40  # 1,000 seats: showtime 2
BOOKED_SHARE = 0.4  # of the 300- and the 1,000-seat showtime
OTHER_ROWS, OTHER_SEATS_PER_ROW = "ABCDEF", 10  # 60 seats per other showtime
FAN_RESERVATIONS = 50  # the user whose list is fetched
VIEWERS = 200
GENRES = ["Drama", "Comedy", "Action", "Sci-Fi", "Horror", "Romance", "Thriller",
          "Animation", "Documentary", "Fantasy"]
WORDS = ["Star", "Night", "River", "Silent", "Golden", "Last", "Broken", "Iron", "Summer",
         "Shadow", "Lost", "City", "Dream", "Storm", "Glass", "Wild", "Blue", "Empire"]
SEARCH_TERM = "star"

# Row labels of the table; targets refer to them.
ME = "GET /me"
MOVIES = "GET /movies"
MOVIES_DEEP = "GET /movies?page=<middle>"
SEARCH = "GET /movies/search"
SHOWTIMES = "GET /showtimes"
SEATS_300 = "GET /showtimes/<id>/seats, 300 seats"
SEATS_304 = "GET /showtimes/<id>/seats, 300 seats, If-None-Match (304)"
SEATS_1000 = "GET /showtimes/<id>/seats, 1,000 seats"
RESERVATIONS = "GET /reservations"
REPORT = "GET /admin/report"
REPORT_ALONE = "GET /admin/report, 1 connection"
BOOK = "POST + DELETE /reservations (book, cancel)"
CHECKOUT = "POST /holds + POST /reservations + DELETE (hold, confirm, cancel)"
GROWTH_ROWS = [MOVIES, MOVIES_DEEP, SHOWTIMES, SEARCH]  # compared small vs scale
RATE_LIMITED_ROWS = [ME, MOVIES, SEATS_300, RESERVATIONS, BOOK]  # run again with limits on

BOTH = ("SQLite", "PostgreSQL")
RATIO_TARGETS = [  # (row, minimum throughput as a share of the ceiling, databases)
    (SEATS_300, 0.30, ("SQLite",)),
    (SEATS_300, 0.20, ("PostgreSQL",)),
    (SEATS_1000, 0.25, ("SQLite",)),
    (MOVIES, 0.40, BOTH),
    (ME, 0.40, BOTH),
    (RESERVATIONS, 0.25, BOTH),
    (BOOK, 0.10, BOTH),
    (CHECKOUT, 0.08, BOTH),
]
GROWTH_LIMIT = 1.5  # CPU per request at the scale dataset / at the small one
REPORT_P99_LIMIT_MS = 100  # GET /admin/report at 16 connections, 1M reservations
WORKER_RSS_LIMIT_MB = 150


def scale_sizes(database: str) -> dict:
    """The scale dataset; BENCH_SCALE_FACTOR (0 < f <= 1) shrinks it for a dry run.

    SQLite keeps the small dataset's reservations: a million is a PostgreSQL figure.
    """
    factor = float(os.environ.get("BENCH_SCALE_FACTOR", "1"))
    if not 0 < factor <= 1:
        raise SystemExit(f"BENCH_SCALE_FACTOR={factor} must be in (0, 1]")
    reservations = SCALE["reservations"] if database == "PostgreSQL" else SMALL["reservations"]
    return {"movies": max(SMALL["movies"], int(SCALE["movies"] * factor)),
            "showtimes": max(SMALL["showtimes"], int(SCALE["showtimes"] * factor)),
            "reservations": max(SMALL["reservations"], int(reservations * factor))}


def middle_page(sizes) -> int:
    return max(1, sizes["movies"] // PER_PAGE // 2)


# ---- the dataset ------------------------------------------------------------------


def load(table, columns, rows):
    """Bulk-load rows (tuples in the order of columns) in the session's transaction.

    PostgreSQL: COPY through the driver, values bound by the columns' own types (so
    UTCDateTime stores naive UTC as the ORM would). SQLite: multi-row executemany through
    the engine in chunks. Columns left out get their defaults.
    """
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        processors = [table.c[name].type._cached_bind_processor(dialect) for name in columns]
        names = ", ".join(dialect.identifier_preparer.quote(name) for name in columns)
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([value if process is None or value is None else process(value)
                                for process, value in zip(processors, row)])
        return
    statement = insert(table)
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, 20_000)):
        connection.execute(statement, [dict(zip(columns, row)) for row in chunk])


def seat_grid(rows, per_row):
    return [(f"{row}{number}", row, number) for row in rows for number in range(1, per_row + 1)]


def build_dataset(app, rng, sizes):
    """Fill an empty database with bulk loads; return the ids and tokens needed.

    Ids are given explicitly (the database is new), so seats can name the reservation
    holding them as they are written: showtime 1 has 300 seats, showtime 2 1,000 (both
    ~40% booked), every other showtime 60. Reservations hold two seats each, one in ten
    of the others cancelled; they are spread round the other showtimes, the fan gets
    the first 50 of them.
    """
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    password = generate_password_hash("bench-password", method="pbkdf2:sha256:1")
    n_movies, n_showtimes, n_reservations = sizes["movies"], sizes["showtimes"], sizes["reservations"]
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
        if postgresql:  # skip the per-row foreign key triggers: the rows are consistent
            db.session.execute(text("SET LOCAL session_replication_role = replica"))
        users = [{"username": f"viewer{n}", "username_key": f"viewer{n}",
                  "email": f"viewer{n}@example.com", "password_hash": password}
                 for n in range(VIEWERS)]
        users += [{"username": name, "username_key": name, "email": f"{name}@example.com",
                   "password_hash": password, "is_admin": name == "boss"}
                  for name in ("fan", "booker", "boss")]
        db.session.execute(insert(User), users)
        user_ids = dict(db.session.execute(text("SELECT username, id FROM users")).all())
        viewers = [user_ids[f"viewer{n}"] for n in range(VIEWERS)]
        fan = user_ids["fan"]

        load(Movie.__table__, ["id", "title", "genre", "duration_minutes", "description",
                               "created_at"],
             ((n + 1, f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n}", GENRES[n % len(GENRES)],
               90 + n % 60, "A film made for load tests.", now) for n in range(n_movies)))
        n_halls = max(10, n_showtimes // 500)
        load(Hall.__table__, ["id", "name", "name_key", "created_at", "updated_at"],
             ((n, f"Hall {n}", f"hall {n}", now, now) for n in range(1, n_halls + 1)))

        def showtime_rows():
            for n in range(n_showtimes):  # four a day per hall
                start = now + timedelta(days=1 + n // (4 * n_halls), hours=3 * (n % 4))
                hall = (n // 4) % n_halls + 1
                yield (n + 1, n % n_movies + 1, start, start + timedelta(hours=2, minutes=45),
                       f"Hall {hall}", hall, 1000, now)

        load(Showtime.__table__, ["id", "movie_id", "start_time", "end_time", "hall", "hall_id",
                                  "price_cents", "created_at"], showtime_rows())

        # Showtimes 1 and 2: random seats booked, two per reservation.
        grids = {1: seat_grid(TARGET_ROWS, TARGET_SEATS_PER_ROW),
                 2: seat_grid(LARGE_ROWS, LARGE_SEATS_PER_ROW)}
        other_grid = seat_grid(OTHER_ROWS, OTHER_SEATS_PER_ROW)
        first_seat = {1: 1, 2: 1 + len(grids[1])}
        others_from = first_seat[2] + len(grids[2])  # showtime s >= 3 starts at this + 60 (s - 3)
        n_others = n_showtimes - 2
        special = []  # (showtime id, seat positions)
        holders = {1: {}, 2: {}}  # showtime -> position -> reservation id
        for showtime_id, grid in grids.items():
            positions = rng.sample(range(len(grid)), int(BOOKED_SHARE * len(grid)) // 2 * 2)
            for pair in range(0, len(positions), 2):
                special.append((showtime_id, positions[pair:pair + 2]))
                for position in positions[pair:pair + 2]:
                    holders[showtime_id][position] = len(special)
        n_other_reservations = n_reservations - len(special)
        if n_other_reservations * 2 > n_others * len(other_grid):
            raise SystemExit(f"{n_reservations} reservations do not fit {n_showtimes} showtimes")

        # Other reservation n: showtime 3 + n % n_others, seats 2r and 2r + 1 of it (r = n // n_others).
        def other_holder(showtime_id, position):
            n = position // 2 * n_others + showtime_id - 3
            if n < n_other_reservations and n % 10 != 9:
                return len(special) + n + 1
            return None

        def reservation_rows():
            for index, (showtime_id, positions) in enumerate(special):
                created = now - timedelta(minutes=index + 1)
                yield (index + 1, viewers[index % VIEWERS], showtime_id, CONFIRMED,
                       1000 * len(positions), created, created, None, created, "logged")
            for n in range(n_other_reservations):
                cancelled = n % 10 == 9
                user = fan if n < FAN_RESERVATIONS else viewers[(n * 37) % VIEWERS]
                created = now - timedelta(minutes=len(special) + n + 1)
                yield (len(special) + n + 1, user, 3 + n % n_others,
                       CANCELLED if cancelled else CONFIRMED, 2000, created, created,
                       now if cancelled else None, created, "logged")

        load(Reservation.__table__, ["id", "user_id", "showtime_id", "status", "total_cents",
                                     "created_at", "updated_at", "cancelled_at", "confirmed_at",
                                     "email_status"], reservation_rows())

        def seat_rows():
            for showtime_id, grid in grids.items():
                for position, (label, row, number) in enumerate(grid):
                    yield (first_seat[showtime_id] + position, showtime_id, label, row, number,
                           holders[showtime_id].get(position))
            for showtime_id in range(3, n_showtimes + 1):
                base = others_from + (showtime_id - 3) * len(other_grid)
                for position, (label, row, number) in enumerate(other_grid):
                    yield (base + position, showtime_id, label, row, number,
                           other_holder(showtime_id, position))

        load(Seat.__table__, ["id", "showtime_id", "label", "row", "number", "reservation_id"],
             seat_rows())

        def line_rows():
            for index, (showtime_id, positions) in enumerate(special):
                for position in positions:
                    yield (index + 1, first_seat[showtime_id] + position, 1000)
            for n in range(n_other_reservations):
                showtime_id, pair = 3 + n % n_others, n // n_others
                base = others_from + (showtime_id - 3) * len(other_grid) + 2 * pair
                yield (len(special) + n + 1, base, 1000)
                yield (len(special) + n + 1, base + 1, 1000)

        load(reservation_seats, ["reservation_id", "seat_id", "price_cents"], line_rows())
        if postgresql:
            for table in ("movies", "halls", "showtimes", "seats", "reservations"):
                db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"(SELECT max(id) FROM {table}))"))
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        with app.test_request_context():
            tokens = {name: auth.login_tokens(db.session.get(User, user_ids[name]))["access_token"]
                      for name in ("fan", "booker", "boss")}
        db.session.remove()
        db.engine.dispose()
    return {"target": 1, "large": 2, "tokens": tokens, "sizes": sizes}


def free_labels(app, showtime_id) -> list[str]:
    """The seats of a showtime nobody holds now (asked before each write run)."""
    with app.app_context():
        labels = db.session.scalars(
            text("SELECT label FROM seats WHERE showtime_id = :id AND reservation_id IS NULL "
                 "ORDER BY id"), {"id": showtime_id}
        ).all()
        db.session.remove()
        db.engine.dispose()
    return labels


def double_bookings(app) -> int:
    """Seats in more than one confirmed reservation, held by a cancelled one, or not held by theirs.

    A seat held by an unconfirmed hold (status held) is not counted: the checkout run
    stops with some holds in flight.
    """
    with app.app_context():
        shared = db.session.scalar(text(
            "SELECT count(*) FROM (SELECT rs.seat_id FROM reservation_seats rs "
            "JOIN reservations r ON r.id = rs.reservation_id WHERE r.status = 'confirmed' "
            "GROUP BY rs.seat_id HAVING count(*) > 1) AS doubled"))
        stale = db.session.scalar(text(
            "SELECT count(*) FROM seats s JOIN reservations r ON r.id = s.reservation_id "
            "WHERE r.status NOT IN ('confirmed', 'held')"))
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


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pids) -> dict[int, int]:
    """Each process's user + system CPU time so far, in clock ticks."""
    ticks = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks


def used_ticks(before, after) -> int:
    return sum(value - before.get(pid, 0) for pid, value in after.items())


def postgresql_backends(admin_url, database):
    """A function listing the server processes serving `database` (PostgreSQL on this machine).

    Their CPU is the database's share of a request; on SQLite it is in the worker already.
    """
    import psycopg

    def pids():
        with psycopg.connect(admin_url, autocommit=True) as connection:
            return [pid for (pid,) in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]

    return pids


class Gunicorn:
    """gunicorn with the project's gunicorn.conf.py, for the API and the ceiling alike."""

    def __init__(self, target, folder, environment, log_path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONF,
                   "--bind", f"127.0.0.1:{self.port}", "--chdir", folder, target]
        self.log = open(log_path, "ab")
        self.environment = {**os.environ, **environment}
        self.process = subprocess.Popen(command, env=self.environment,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_until_up()

    def wait_until_up(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log.name}")
            try:
                urllib.request.urlopen(self.base + "/health", timeout=2)
            except urllib.error.HTTPError:  # the ceiling has no /health: it answers, it is up
                pass
            except OSError:
                time.sleep(0.2)
                continue
            if len(self.workers()) >= self.configuration()["workers"]:
                return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start in time")

    def configuration(self) -> dict:
        """What gunicorn.conf.py resolves to in this server's environment."""
        if not hasattr(self, "_configuration"):
            code = (
                "import json, runpy, sys\n"
                "ns = runpy.run_path(sys.argv[1])\n"
                "classes = [c for c in ns['worker_class'].__mro__ if c is not object]\n"
                "names = [f\"{c.__module__.replace('<run_path>', 'gunicorn.conf')}.{c.__qualname__}\""
                " for c in classes]\n"
                "print(json.dumps({'workers': ns['workers'], 'threads': ns['threads'],"
                " 'worker_class': names}))\n"
            )
            output = subprocess.run([sys.executable, "-c", code, GUNICORN_CONF], cwd=ROOT,
                                    env=self.environment, capture_output=True, text=True,
                                    check=True).stdout
            self._configuration = json.loads(output)
        return self._configuration

    def workers(self) -> list[int]:
        try:
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as file:
                return [int(pid) for pid in file.read().split()]
        except FileNotFoundError:
            return []

    def cpu_ticks(self) -> dict[int, int]:
        return cpu_ticks(self.workers())

    def drain(self, limit=60.0):
        """Wait until the workers are idle: requests wrk left in flight finish first.

        Idle = no worker used CPU for half a second (their keep-alive loop is asleep).
        """
        deadline = time.monotonic() + limit
        last = self.cpu_ticks()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.cpu_ticks()
            if now == last:
                return
            last = now

    def status(self, key) -> list[int]:
        values = []
        for pid in self.workers():
            try:
                with open(f"/proc/{pid}/status") as file:
                    values += [int(line.split()[1]) for line in file if line.startswith(key + ":")]
            except FileNotFoundError:
                continue
        return values

    def reset_peak_rss(self) -> bool:
        """Start each worker's VmHWM afresh (Linux: 5 > clear_refs); False if refused."""
        done = True
        for pid in self.workers():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as file:
                    file.write("5")
            except OSError:
                done = False
        return done

    def peak_worker_rss_mb(self) -> float:
        """The highest peak resident size (VmHWM) of any worker since the last reset."""
        return max(self.status("VmHWM"), default=0) / 1024

    def threads_started(self) -> int:
        """The most threads any worker has (gthread starts them as connections need them)."""
        return max(self.status("Threads"), default=0)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# ---- load -------------------------------------------------------------------------


def wrk(base, path, seconds, connections, token=None, scripts=(), args=(), headers=(),
        alone=False):
    """Run wrk against base+path with the scripts (then report.lua) as one; return its figures."""
    sources = []
    for name in [*scripts, "report.lua"]:
        with open(os.path.join(HERE, name)) as file:
            sources.append(file.read())
    source = "\n".join(sources)
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


def measure(server, path, seconds, connections, **options):
    """wrk, plus the workers' CPU per request and peak memory over that run alone."""
    server.reset_peak_rss()
    backends = getattr(server, "database_pids", lambda: [])
    before, before_db = server.cpu_ticks(), cpu_ticks(backends())
    figures = wrk(server.base, path, seconds, connections, **options)
    after, after_db = server.cpu_ticks(), cpu_ticks(backends())
    # No request finished (a slow endpoint's run, or one still stuck behind the last):
    # no figure per request rather than a made-up one.
    per_request = 1000 / CLOCK_TICKS / figures["requests"] if figures["requests"] else float("nan")
    figures["worker_cpu_ms"] = used_ticks(before, after) * per_request
    figures["db_cpu_ms"] = used_ticks(before_db, after_db) * per_request
    figures["cpu_ms"] = figures["worker_cpu_ms"] + figures["db_cpu_ms"]
    figures["peak_mb"] = server.peak_worker_rss_mb()
    server.drain()  # the next run starts on idle workers
    return figures


def timed_get(base, path, token) -> float:
    """One request's wall time in ms (e.g. the first, uncached report)."""
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def etag_of(base, path, token):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["ETag"]


def api_runs(data, base, full: bool):
    """(row, path, token name, wrk options or a function giving them) in the order run.

    Reads first, writes last: a write changes the seat map's ETag and the report's tag.
    """
    target, large = data["target"], data["large"]
    seat_map, large_map = f"/showtimes/{target}/seats", f"/showtimes/{large}/seats"
    deep = f"/movies?page={middle_page(data['sizes'])}"
    growth = [
        (MOVIES, "/movies", "fan", {}),
        (MOVIES_DEEP, deep, "fan", {}),
        (SEARCH, f"/movies/search?q={SEARCH_TERM}", "fan", {}),
        (SHOWTIMES, "/showtimes", "fan", {}),
    ]
    report = [
        (REPORT, "/admin/report", "boss", {}),
        # One admin at a time: the report's own latency, without 15 others queued ahead.
        (REPORT_ALONE, "/admin/report", "boss", {"alone": True}),
    ]
    if not full:  # GET /showtimes last: a slow request left in flight delays what follows
        return [run for run in growth if run[0] != SHOWTIMES] + report + growth[3:]
    return [(ME, "/me", "fan", {})] + growth + [
        (SEATS_300, seat_map, "fan", {}),
        (SEATS_304, seat_map, "fan",
         lambda: {"headers": [f"If-None-Match: {etag_of(base, seat_map, data['tokens']['fan'])}"]}),
        (SEATS_1000, large_map, "fan", {}),
        (RESERVATIONS, "/reservations", "fan", {}),
    ] + report + [
        (BOOK, "/", "booker",
         lambda: {"scripts": ["seats.lua", "booking.lua"],
                  "args": [str(target), ",".join(free_labels(data["app"], target))]}),
        (CHECKOUT, "/", "booker",
         lambda: {"scripts": ["seats.lua", "checkout.lua"],
                  "args": [str(large), ",".join(free_labels(data["app"], large))]}),
    ]


def drive(name, server, runs, data, args, note=""):
    rows = {}
    for label, path, token, options in runs:
        options = options() if callable(options) else options
        if label == REPORT:
            built_ms = timed_get(server.base, path, data["tokens"][token])
        figures = measure(server, path, args.seconds, args.connections, token=data["tokens"][token],
                          **options)
        if label == REPORT:
            figures["first_ms"] = built_ms
        figures["ratio"] = figures["rps"] / data["ceiling"]["rps"]
        rows[label] = figures
        print(f"[{name}{note}] {label}: {figures['rps']:.0f} req/s, ratio {figures['ratio']:.2f}, "
              f"p50 {figures['p50_us'] / 1000:.1f} ms, p99 {figures['p99_us'] / 1000:.1f} ms, "
              f"CPU {figures['cpu_ms']:.2f} ms/request (database {figures['db_cpu_ms']:.2f}), peak {figures['peak_mb']:.0f} MB, "
              f"errors {figures['errors']}", flush=True)
    return rows


def bench_dataset(name, url, args, log_path, sizes, full: bool):
    """Build one dataset, serve it, drive its endpoints; return the figures."""
    rng = random.Random(6)
    secret = secrets.token_urlsafe(48)
    config = {"SQLALCHEMY_DATABASE_URI": url, "JWT_SECRET_KEY": secret,
              "RATELIMIT_ENABLED": False, "LOG_LEVEL": "WARNING", "AUTO_MIGRATE": True}
    app = create_app(config)
    started = time.monotonic()
    data = build_dataset(app, rng, sizes)
    data["app"] = app
    label = "" if full else " scale"
    print(f"[{name}{label}] dataset {sizes} built in {time.monotonic() - started:.1f} s", flush=True)

    workers = {"GUNICORN_WORKERS": str(args.workers)} if args.workers else {}
    ceiling = Gunicorn("ceiling:app", HERE, workers, log_path)
    try:
        data["ceiling"] = measure(ceiling, "/", args.seconds, args.connections)
    finally:
        ceiling.stop()
    print(f"[{name}{label}] ceiling: {data['ceiling']['rps']:.0f} req/s, "
          f"CPU {data['ceiling']['cpu_ms']:.2f} ms/request", flush=True)

    environment = {**workers, "DATABASE_URL": url, "JWT_SECRET_KEY": secret,
                   "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
                   # One user books over and over at 16 connections: no per-guest cap.
                   "MAX_SEATS_PER_USER_PER_SHOWTIME": "1000000"}
    backends = (postgresql_backends(args.postgres_url, url.rsplit("/", 1)[1])
                if url.startswith("postgresql") else None)
    server = Gunicorn("app:create_app()", ROOT, environment, log_path)
    if backends:
        server.database_pids = backends
    try:
        rows = drive(name + label, server, api_runs(data, server.base, full), data, args)
        gunicorn = {**server.configuration(), "processes": len(server.workers()),
                    "threads_started": server.threads_started()}
    finally:
        server.stop()
    limited = {}
    if full and args.rate_limits:
        prefix = f"cinema-bench-{secrets.token_hex(4)}"
        server = Gunicorn("app:create_app()", ROOT, {
            **environment, "RATELIMIT_ENABLED": "true", "RATELIMIT_STORAGE_URI": args.redis_url,
            "RATELIMIT_KEY_PREFIX": prefix, "DEFAULT_RATE_LIMIT": "1000000 per minute",
        }, log_path)
        if backends:
            server.database_pids = backends
        try:
            runs = [run for run in api_runs(data, server.base, True) if run[0] in RATE_LIMITED_ROWS]
            limited = drive(name, server, runs, data, args, note=", rate limits on")
        finally:
            server.stop()
    return {"database": name, "sizes": sizes, "ceiling": data["ceiling"], "rows": rows,
            "limited": limited, "gunicorn": gunicorn, "double_bookings": double_bookings(app)}


def bench_database(name, with_database, args, log_path):
    result = with_database(lambda url: bench_dataset(name, url, args, log_path, SMALL, True))
    if args.scale:
        result["scale"] = with_database(
            lambda url: bench_dataset(name, url, args, log_path, scale_sizes(name), False))
    return result


# ---- databases --------------------------------------------------------------------


def with_sqlite(run):
    with tempfile.TemporaryDirectory(prefix="cinema-bench-") as folder:
        return run(f"sqlite:///{os.path.join(folder, 'bench.db')}")


def postgresql_database(admin_url):
    """A runner giving each dataset a fresh database of its own, dropped afterwards."""
    import psycopg

    def with_postgresql(run):
        name = f"cinema_bench_{secrets.token_hex(4)}"
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        try:
            host = admin_url.split("://", 1)[1].rsplit("/", 1)[0]
            return run(f"postgresql+psycopg://{host}/{name}")
        finally:
            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return with_postgresql


# ---- the report -------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def ms(microseconds) -> str:
    return f"{microseconds / 1000:.1f}"


def growth(result, row):
    small, scale = result["rows"].get(row), result.get("scale", {}).get("rows", {}).get(row)
    if not small or not scale:
        return None
    return scale["cpu_ms"] / small["cpu_ms"]


def targets(results) -> list[str]:
    lines = []
    for row, minimum, databases in RATIO_TARGETS:
        for result in results:
            if result["database"] not in databases:
                continue
            figures = result["rows"].get(row)
            if figures is None:
                lines.append(f"- {row} on {result['database']}: not measured")
                continue
            lines.append(f"- {row} on {result['database']}: ratio {figures['ratio']:.2f} "
                         f"(target ≥ {minimum:.2f}) — {verdict(figures['ratio'] >= minimum)}")
    for result in results:
        for row in GROWTH_ROWS:
            factor = growth(result, row)
            if factor is None:
                lines.append(f"- flat growth, {row} on {result['database']}: not measured "
                             "(run with --scale)")
                continue
            lines.append(f"- flat growth, {row} on {result['database']}: CPU per request "
                         f"×{factor:.2f} at the scale dataset (target ≤ {GROWTH_LIMIT}×) — "
                         f"{verdict(factor <= GROWTH_LIMIT)}")
    for result in results:
        if result["database"] != "PostgreSQL":
            continue
        scale = result.get("scale", {})
        report = scale.get("rows", {}).get(REPORT)
        if report is None:
            lines.append("- GET /admin/report p99 at 16 connections, 1M reservations: not "
                         "measured (run --scale with PostgreSQL)")
            continue
        p99 = report["p99_us"] / 1000
        lines.append(f"- GET /admin/report p99 at 16 connections, "
                     f"{scale['sizes']['reservations']:,} reservations: {p99:.1f} ms "
                     f"(target < {REPORT_P99_LIMIT_MS} ms) — {verdict(p99 < REPORT_P99_LIMIT_MS)}")
    for result in results:
        peak = max(row["peak_mb"] for part in all_parts(result) for row in part.values())
        lines.append(f"- peak worker memory on {result['database']}, any scenario: {peak:.0f} MB "
                     f"(target < {WORKER_RSS_LIMIT_MB} MB) — {verdict(peak < WORKER_RSS_LIMIT_MB)}")
        errors = sum(row["errors"] for part in all_parts(result) for row in part.values())
        doubled = result["double_bookings"] + result.get("scale", {}).get("double_bookings", 0)
        lines.append(f"- errors and double bookings on {result['database']}: {errors} and "
                     f"{doubled} (target 0 and 0) — {verdict(errors == 0 and doubled == 0)}")
    return lines


def all_parts(result):
    return [result["rows"], result["limited"], result.get("scale", {}).get("rows", {})]


def table(ceiling, rows) -> list[str]:
    lines = [
        "| Endpoint | req/s | p50 ms | p99 ms | errors | ratio | CPU ms/req | of it database "
        "| CPU × ceiling | peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| ceiling (`GET /` of bench/ceiling.py) | {ceiling['rps']:.0f} | {ms(ceiling['p50_us'])} "
        f"| {ms(ceiling['p99_us'])} | {ceiling['errors']} | 1.00 | {ceiling['cpu_ms']:.2f} | – "
        f"| 1.0 | {ceiling['peak_mb']:.0f} |",
    ]
    for label, row in rows.items():
        lines.append(
            f"| {label} | {row['rps']:.0f} | {ms(row['p50_us'])} | {ms(row['p99_us'])} | "
            f"{row['errors']} | {row['ratio']:.2f} | {row['cpu_ms']:.2f} | "
            f"{row['db_cpu_ms']:.2f} | {row['cpu_ms'] / ceiling['cpu_ms']:.1f} | "
            f"{row['peak_mb']:.0f} |")
    return lines


def describe(sizes) -> str:
    return (f"{sizes['movies']:,} movies, {sizes['showtimes']:,} showtimes, "
            f"{sizes['reservations']:,} reservations")


def section(result) -> list[str]:
    setup = result["gunicorn"]
    lines = [
        "", f"## {result['database']}", "",
        f"gunicorn (gunicorn.conf.py): {setup['processes']} worker processes of "
        f"{setup['threads']} threads ({setup['threads_started']} started at most), worker "
        f"class {' → '.join(f'`{name}`' for name in setup['worker_class'][:3])}.",
        "", f"Small dataset: {describe(result['sizes'])}.", "",
        *table(result["ceiling"], result["rows"]),
    ]
    report = result["rows"].get(REPORT)
    if report:
        lines += ["", f"First report after start (built, not cached): {report['first_ms']:.0f} ms."]
    if result["limited"]:
        lines += ["", "### Rate limits on (Redis counters, as in production)", "",
                  "| Endpoint | req/s off | req/s on | p99 ms on | CPU ms/req off | on | extra |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for label, on in result["limited"].items():
            off = result["rows"][label]
            lines.append(f"| {label} | {off['rps']:.0f} | {on['rps']:.0f} | {ms(on['p99_us'])} | "
                         f"{off['cpu_ms']:.2f} | {on['cpu_ms']:.2f} | "
                         f"{on['cpu_ms'] - off['cpu_ms']:+.2f} |")
    scale = result.get("scale")
    if scale:
        lines += ["", f"### Scale dataset: {describe(scale['sizes'])}", "",
                  *table(scale["ceiling"], scale["rows"]), "",
                  f"First report after start (built, not cached): "
                  f"{scale['rows'][REPORT]['first_ms']:.0f} ms.", "",
                  "| Endpoint | CPU ms/req small | scale | growth | p99 ms small | scale |",
                  "|---|---:|---:|---:|---:|---:|"]
        for label in GROWTH_ROWS:
            small, big = result["rows"][label], scale["rows"][label]
            lines.append(f"| {label} | {small['cpu_ms']:.2f} | {big['cpu_ms']:.2f} | "
                         f"×{big['cpu_ms'] / small['cpu_ms']:.2f} | {ms(small['p99_us'])} | "
                         f"{ms(big['p99_us'])} |")
    doubled = result["double_bookings"] + (scale or {}).get("double_bookings", 0)
    lines += ["", f"Double bookings after the runs: {doubled}."]
    return lines


def markdown(results, args, load_before) -> str:
    load_after = os.getloadavg()
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Command: `python bench/run.py {' '.join(sys.argv[1:])}`"
        + (f" with BENCH_SCALE_FACTOR={os.environ['BENCH_SCALE_FACTOR']}"
           if "BENCH_SCALE_FACTOR" in os.environ else ""),
        f"- Cores: {os.cpu_count()}",
        f"- Load average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f} "
        "(the benchmark itself keeps it near the core count; more means other processes competed)",
        f"- wrk: 1 thread, {args.connections} connections, {args.seconds} s per endpoint",
        f"- Seat maps: showtime 1 has {len(TARGET_ROWS) * TARGET_SEATS_PER_ROW} seats, showtime 2 "
        f"{len(LARGE_ROWS) * LARGE_SEATS_PER_ROW}, both ~{BOOKED_SHARE:.0%} booked; the deep page "
        f"is the middle one ({PER_PAGE} a page)",
        "",
        "Ratio = the endpoint's requests/s divided by the ceiling's (a bare Flask app under the",
        "same gunicorn.conf.py) measured in the same run. CPU ms/req = the workers' user + system",
        "time over the run (/proc/<pid>/stat) divided by the requests served, plus on PostgreSQL",
        "that of the server processes serving the benchmark's database (the 'of it database'",
        "column; on SQLite the database works inside the worker); CPU × ceiling compares it",
        "with the ceiling's. Peak MB = the highest VmHWM of any worker during that",
        "run alone. The write rows count every request: book and cancel are two, hold, confirm",
        "and cancel three, each a committed write.",
    ]
    for result in results:
        lines += section(result)
    lines += ["", "## Targets", "", *targets(results)]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 s per endpoint on SQLite only; writes bench/results-quick.md")
    parser.add_argument("--scale", action="store_true",
                        help="also the scale dataset (20,000 movies, 50,000 showtimes; "
                             "1,000,000 reservations on PostgreSQL)")
    parser.add_argument("--no-rate-limits", dest="rate_limits", action="store_false",
                        help="skip the second pass with rate limits on (Redis)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL",
                                                              "redis://127.0.0.1:6379"))
    parser.add_argument("--seconds", type=int, default=None, help="seconds per endpoint (10)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=None,
                        help="GUNICORN_WORKERS for the API and the ceiling (default: gunicorn.conf.py's)")
    parser.add_argument("--databases", default=None,
                        help="comma-separated: sqlite,postgresql (default both; --quick: sqlite)")
    parser.add_argument("--postgres-url",
                        default=os.environ.get("BENCH_POSTGRES_URL",
                                               "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a server and role allowed to create databases")
    parser.add_argument("--output", default=None,
                        help="where to write the table (default bench/results.md; "
                             "bench/results-quick.md for --quick or a shrunk --scale)")
    args = parser.parse_args()
    args.seconds = args.seconds or (2 if args.quick else 10)
    databases = (args.databases or ("sqlite" if args.quick else "sqlite,postgresql")).split(",")
    log_path = os.path.join(tempfile.gettempdir(), f"cinema-bench-{os.getpid()}.log")
    print(f"gunicorn output goes to {log_path}", flush=True)

    runners = {"sqlite": ("SQLite", lambda: with_sqlite),
               "postgresql": ("PostgreSQL", lambda: postgresql_database(args.postgres_url))}
    for database in databases:
        if database not in runners:
            parser.error(f"unknown database {database!r}")
    load_before = os.getloadavg()
    results = []
    for database in databases:
        name, runner = runners[database]
        results.append(bench_database(name, runner(), args, log_path))
    text_out = markdown(results, args, load_before)
    trial = args.quick or "BENCH_SCALE_FACTOR" in os.environ
    target = args.output or os.path.join(HERE, "results-quick.md" if trial else "results.md")
    with open(target, "w") as file:
        file.write(text_out)
    print(text_out)
    print(f"written to {target}")


if __name__ == "__main__":
    main()
