"""Prove with real processes that no seat is ever sold twice.

Starts gunicorn with 4 workers on a database of its own (a new PostgreSQL
database, a temporary SQLite file, or both), drives it over HTTP from many
threads, and checks the database with SQL afterwards:

  same-seats     50 users book the same 2 seats at once: one 201, 49 x 409
  same-request   one user sends the same booking 20 times at once: one 201
  storm          users cancel and others book the freed (overlapping) seats
  worker-kill    a storm during which one worker is killed with SIGKILL
  idempotent     one user sends the same booking with the same Idempotency-Key 20 times
                 at once, then once more: one booking, every 201 names it
  holds          30 users hold or book the same 2 seats at once: one wins
  confirm-expiry a hold is confirmed at the moment it lapses while others grab its
                 seats (HOLD_SECONDS is 2 here): the holder or one other, never both
  extend-expiry  the same with an extend instead of a confirm
  hold-keyed     20 keyed duplicates of a hold, then 20 of its confirmation: one each
  killed-answer  a worker is killed after the commit, while it sends the confirmation
                 email (a local stand-in for Resend that stalls for this guest), and
                 the guest retries with the same Idempotency-Key: one booking, replayed
  check-in       20 scanners send each ticket's secret at once: one 200 per ticket, the
                 rest 409 "already checked in"
  partial-cancel the owner gives back overlapping pairs of a six-seat booking from many
                 threads while others book those seats: each seat given back once, the
                 total the price of the seats kept, no seat free and held at once

Each scenario runs --rounds times. Prints the status counts and checks per
round; exits 1 on any violation (a 5xx, a double booking, a half-written
reservation, a 201 missing from the database, a seat shown free but held).

    python scripts/race.py                      # both databases
    python scripts/race.py --database sqlite    # or postgresql
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from models import User  # noqa: E402
from processes import children_of, stop as stop_process  # noqa: E402
POSTGRES_SERVER = os.environ.get(
    "RACE_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ADMIN = {"username": "raceadmin", "email": "raceadmin@example.com", "password": "race-admin-pass"}
USERS = 50
WORKERS = 4
PAIRS = [[f"A{n}", f"A{n + 1}"] for n in range(1, 6)]  # overlapping pairs of row A
CONNECTION_ERROR = "conn-error"
HOLD_SECONDS = 2  # short, so that the script can race holds against their expiry
STALLING_GUEST = "stall"  # the email stand-in keeps this guest's emails waiting


class Violations(list):
    def check(self, condition, what):
        if not condition:
            self.append(what)
        return condition


# ---- the server -------------------------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn with the project's gunicorn.conf.py, on a database of its own."""

    def __init__(self, database_url, workdir, email_url):
        self.database_url = database_url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, "gunicorn.log")
        self.environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "GUNICORN_WORKERS": str(WORKERS),
            "JWT_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
            "ADMIN_USERNAME": ADMIN["username"],
            "ADMIN_EMAIL": ADMIN["email"],
            "ADMIN_PASSWORD": ADMIN["password"],
            "RATELIMIT_ENABLED": "false",  # every client here shares one address
            "RESEND_API_KEY": "re_race",
            "RESEND_API_URL": email_url,
            "EMAIL_TIMEOUT": "30",
            "HOLD_SECONDS": str(HOLD_SECONDS),
            "HOLD_MAX_SECONDS": str(2 * HOLD_SECONDS),
            "LOG_LEVEL": "WARNING",
            "AUTO_MIGRATE": "false",
        }
        self.process = None

    def start(self):
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
            cwd=ROOT, env=self.environment, check=True, capture_output=True,
        )
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
             "--access-logfile", "/dev/null", "app:create_app()"],
            cwd=ROOT, env=self.environment, stdout=self.log, stderr=subprocess.STDOUT,
        )
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                if requests.get(f"{self.base}/health", timeout=2).status_code == 200:
                    if len(self.workers()) == WORKERS:
                        return
            except requests.RequestException:  # not listening, or workers still booting
                pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not start within 30 s")

    def workers(self):
        """Process ids of the gunicorn workers (children of the master)."""
        return children_of(self.process.pid)

    def stop(self):
        stop_process(self.process)
        if self.process:
            self.log.close()


class StallingEmails:
    """A stand-in for Resend's POST /emails on 127.0.0.1: answers at once, except that
    emails to STALLING_GUEST wait until ``release()`` (or 60 s)."""

    def __init__(self):
        self.stalled = threading.Event()  # set once such an email is waiting
        self._release = threading.Event()
        emails = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                to = json.loads(body or b"{}").get("to") or []
                if any(STALLING_GUEST in address for address in to):
                    emails.stalled.set()
                    emails._release.wait(timeout=60)
                payload = json.dumps({"id": uuid.uuid4().hex}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the worker that asked was killed meanwhile
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def release(self):
        self._release.set()

    def rearm(self):
        self.stalled.clear()
        self._release.clear()

    def stop(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()


# ---- the client -------------------------------------------------------------------


class Client:
    def __init__(self, base):
        self.base = base
        self.quotes = {}  # hold id -> quoted total in cents

    def call(self, method, path, headers=None, **kwargs):
        """(status, body) of one request; a dropped connection is CONNECTION_ERROR.

        A worker killed mid-answer drops the connection before the request is sent
        (ConnectionError) or after the headers, with the body cut short.
        """
        try:
            response = requests.request(
                method, f"{self.base}{path}", headers=headers, timeout=60, **kwargs
            )
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            return CONNECTION_ERROR, None
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body

    def ok(self, method, path, headers=None, expected=200, **kwargs):
        status, body = self.call(method, path, headers, **kwargs)
        if status != expected:
            raise RuntimeError(f"{method} {path}: {status} {body}")
        return body

    def login(self, username, password):
        body = self.ok("POST", "/login", json={"username": username, "password": password})
        return {"Authorization": f"Bearer {body['access_token']}"}

    def new_user(self, name):
        body = {"username": name, "email": f"{name}@example.com", "password": "password123"}
        self.ok("POST", "/register", json=body, expected=201)
        return self.login(name, "password123")

    def users(self, database, count):
        """Auth headers of ``count`` users: one registers through the API, the rest are
        written straight to the database with a cheap hash (scrypt would dominate the run)."""
        names = [f"racer{number}" for number in range(count)]
        database.add_users(names[1:], "password123")
        with ThreadPoolExecutor(max_workers=8) as pool:
            return [self.new_user(names[0])] + list(
                pool.map(lambda name: self.login(name, "password123"), names[1:])
            )

    def new_showtime(self, admin, number, starts_in=timedelta(days=30)):
        """A showtime of its own hall, with seats A1-A6 and B1-B6."""
        movie = self.ok("POST", "/movies", admin, 201, json={"title": f"Race {number}", "genre": "Drama"})
        start = (datetime.now(timezone.utc) + starts_in).replace(microsecond=0)
        showtime = self.ok(
            "POST", "/showtimes", admin, 201,
            json={"movie_id": movie["id"], "start_time": start.isoformat(), "hall": f"Race hall {number}"},
        )
        self.ok("POST", "/seats", admin, 201,
                json={"showtime_id": showtime["id"], "rows": "A-B", "seats_per_row": 6})
        return showtime["id"]

    def book(self, headers, showtime_id, seats):
        return self.call("POST", "/reservations", headers,
                         json={"showtime_id": showtime_id, "seats": seats})

    def book_with_key(self, headers, showtime_id, seats, key):
        """(status, body, replayed) of a booking sent with an Idempotency-Key."""
        try:
            response = requests.post(
                f"{self.base}/reservations", json={"showtime_id": showtime_id, "seats": seats},
                headers={**headers, "Idempotency-Key": key}, timeout=60,
            )
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            return CONNECTION_ERROR, None, False
        return response.status_code, response.json(), response.headers.get("Idempotent-Replayed") == "true"

    def cancel(self, headers, reservation_id):
        return self.call("DELETE", f"/reservations/{reservation_id}", headers)

    def hold(self, headers, showtime_id, **body):
        status, answer = self.call("POST", "/holds", headers, json={"showtime_id": showtime_id, **body})
        if status == 201:
            self.quoted(answer["hold"])
        return status, answer

    def quoted(self, hold):
        """Remember what a hold quoted, to compare with what its confirmation charged."""
        self.quotes[hold["id"]] = round(hold["total_price"] * 100)

    def confirm(self, headers, hold_id, key=None):
        """(status, body, replayed) of a confirmation, with an Idempotency-Key when given."""
        keyed = {**headers, "Idempotency-Key": key} if key else headers
        try:
            response = requests.post(f"{self.base}/reservations", json={"hold_id": hold_id}, headers=keyed, timeout=60)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            return CONNECTION_ERROR, None, False
        return response.status_code, response.json(), response.headers.get("Idempotent-Replayed") == "true"
    def cancel_seats(self, headers, reservation_id, seats):
        return self.call("POST", f"/reservations/{reservation_id}/cancel", headers, json={"seats": seats})

    def check_in(self, headers, secret):
        return self.call("POST", "/check-ins", headers, json={"secret": secret})


def all_at_once(calls):
    """Run the calls from as many threads, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


# ---- invariants, checked in the database ------------------------------------------


# When a reservation or hold stopped having its seats: cancelled, released (its last
# change), lapsed (its expiry, whether or not a later write marked it expired), or never.
LIFETIME_END = """CASE {r}.status WHEN 'cancelled' THEN {r}.cancelled_at WHEN 'released' THEN {r}.updated_at
    WHEN 'expired' THEN {r}.expires_at WHEN 'held' THEN {r}.expires_at END"""

# Two reservations or holds of one seat whose lifetimes (made .. ended) overlap: a seat
# that was sold or held twice at some moment, even if one of them ended since.
OVERLAPPING_LIFETIMES = f"""
    SELECT a.seat_id, a.reservation_id, b.reservation_id FROM reservation_seats a
    JOIN reservations ra ON ra.id = a.reservation_id
    JOIN reservation_seats b ON b.seat_id = a.seat_id AND b.reservation_id > a.reservation_id
    JOIN reservations rb ON rb.id = b.reservation_id
    WHERE rb.created_at < COALESCE(a.cancelled_at, {LIFETIME_END.format(r="ra")}, '9999-12-31')
      AND ra.created_at < COALESCE(b.cancelled_at, {LIFETIME_END.format(r="rb")}, '9999-12-31')"""

INVARIANTS = {
    "no seat ever in two active reservations or holds at once": OVERLAPPING_LIFETIMES,
    "no seat in two active reservations": """
        SELECT rs.seat_id FROM reservation_seats rs
        JOIN reservations r ON r.id = rs.reservation_id
        WHERE r.status = 'confirmed' AND rs.cancelled_at IS NULL GROUP BY rs.seat_id HAVING COUNT(*) > 1""",
    "no reservation without seats": """
        SELECT r.id FROM reservations r
        WHERE NOT EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.reservation_id = r.id)""",
    "an active reservation or hold has all its seats": """
        SELECT rs.reservation_id FROM reservation_seats rs
        JOIN reservations r ON r.id = rs.reservation_id
        JOIN seats s ON s.id = rs.seat_id
        WHERE r.status IN ('confirmed', 'held') AND rs.cancelled_at IS NULL
          AND (s.reservation_id IS NULL OR s.reservation_id <> r.id)""",
    "a taken seat belongs to an active reservation or hold that lists it": """
        SELECT s.id FROM seats s
        LEFT JOIN reservations r ON r.id = s.reservation_id
        LEFT JOIN reservation_seats rs ON rs.reservation_id = s.reservation_id AND rs.seat_id = s.id
                                       AND rs.cancelled_at IS NULL
        WHERE s.reservation_id IS NOT NULL AND (r.status IS NULL OR r.status NOT IN ('confirmed', 'held')
                                                OR rs.seat_id IS NULL)""",
    "a cancelled, released or expired one has no seat": """
        SELECT s.id FROM seats s JOIN reservations r ON r.id = s.reservation_id
        WHERE r.status IN ('cancelled', 'released', 'expired')""",
    "a hold has an expiry, a booking made in one step none": """
        SELECT r.id FROM reservations r
        WHERE (r.status IN ('held', 'expired', 'released') AND r.expires_at IS NULL)
           OR (r.status IN ('confirmed', 'cancelled') AND r.confirmed_at IS NULL)""",
    "a hold is confirmed before it expires": """
        SELECT r.id FROM reservations r
        WHERE r.expires_at IS NOT NULL AND r.confirmed_at IS NOT NULL AND r.confirmed_at >= r.expires_at""",
    "one reservation per idempotency key": """
        SELECT k.id FROM idempotency_keys k JOIN reservations booked ON booked.id = k.resource_id
        WHERE (SELECT COUNT(*) FROM reservations r
               WHERE r.user_id = k.user_id AND r.showtime_id = booked.showtime_id) <> 1""",
    "a booking's key names a reservation of its user": """
        SELECT k.id FROM idempotency_keys k
        WHERE (k.status IS NULL OR k.status = 201) AND NOT EXISTS (
            SELECT 1 FROM reservations r WHERE r.id = k.resource_id AND r.user_id = k.user_id)""",
    "every line at the showtime's price": """
        SELECT rs.reservation_id FROM reservation_seats rs
        JOIN reservations r ON r.id = rs.reservation_id JOIN showtimes sh ON sh.id = r.showtime_id
        WHERE rs.price_cents <> sh.price_cents""",
    # Cancelled as a whole, a reservation keeps the total of the seats it held until then.
    "the total is the sum of the lines kept": """
        SELECT r.id FROM reservations r
        WHERE r.total_cents <> (SELECT COALESCE(SUM(rs.price_cents), 0) FROM reservation_seats rs
                                WHERE rs.reservation_id = r.id
                                  AND (rs.cancelled_at IS NULL OR rs.cancelled_at >= r.cancelled_at))""",
    "no seat both free and in a line still held": """
        SELECT s.id FROM seats s JOIN reservation_seats rs ON rs.seat_id = s.id
        JOIN reservations r ON r.id = rs.reservation_id
        WHERE r.status = 'confirmed' AND rs.cancelled_at IS NULL AND s.reservation_id IS NULL""",
    "a cancelled reservation has no line still held": """
        SELECT rs.reservation_id FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
        WHERE r.status = 'cancelled' AND rs.cancelled_at IS NULL""",
    "one live ticket per seat held": """
        SELECT rs.reservation_id, rs.seat_id FROM reservation_seats rs
        JOIN reservations r ON r.id = rs.reservation_id
        WHERE r.status = 'confirmed' AND rs.cancelled_at IS NULL
          AND (SELECT COUNT(*) FROM tickets t WHERE t.reservation_id = rs.reservation_id
               AND t.seat_id = rs.seat_id AND t.voided_at IS NULL) <> 1""",
    "no live ticket for a seat given back": """
        SELECT t.id FROM tickets t
        JOIN reservation_seats rs ON rs.reservation_id = t.reservation_id AND rs.seat_id = t.seat_id
        JOIN reservations r ON r.id = t.reservation_id
        WHERE t.voided_at IS NULL AND (rs.cancelled_at IS NOT NULL OR r.status <> 'confirmed')""",
    "one check-in per ticket seat": """
        SELECT t.reservation_id, t.seat_id FROM tickets t WHERE t.checked_in_at IS NOT NULL
        GROUP BY t.reservation_id, t.seat_id HAVING COUNT(*) > 1""",
    "a checked-in ticket is live": """
        SELECT t.id FROM tickets t WHERE t.checked_in_at IS NOT NULL AND t.voided_at IS NOT NULL""",
}


class Database:
    def __init__(self, url):
        self.engine = create_engine(url)

    def rows(self, sql, **params):
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).all()

    def check_invariants(self, violations):
        results = []
        for name, sql in INVARIANTS.items():
            bad = self.rows(sql)
            violations.check(not bad, f"{name}: {bad[:5]}")
            results.append(f"{name}: {'ok' if not bad else 'VIOLATED'}")
        return results

    def confirmed(self, showtime_id):
        """{reservation id: sorted seat labels} of the showtime's active reservations."""
        held = {}
        for reservation_id, label in self.rows(
            """SELECT r.id, s.label FROM reservations r
               JOIN reservation_seats rs ON rs.reservation_id = r.id
               JOIN seats s ON s.id = rs.seat_id
               WHERE r.showtime_id = :showtime AND r.status = 'confirmed'""",
            showtime=showtime_id,
        ):
            held.setdefault(reservation_id, []).append(label)
        return {key: sorted(value) for key, value in held.items()}

    def reservation(self, reservation_id):
        rows = self.rows(
            """SELECT r.status, s.label FROM reservations r
               JOIN reservation_seats rs ON rs.reservation_id = r.id
               JOIN seats s ON s.id = rs.seat_id WHERE r.id = :id""",
            id=reservation_id,
        )
        return (rows[0][0], sorted(label for _, label in rows)) if rows else (None, [])

    def owners(self, showtime_id, labels):
        """{label: the reservation or hold id the seat points at}."""
        return {label: owner for label, owner in self.rows(
            "SELECT label, reservation_id FROM seats WHERE showtime_id = :showtime",
            showtime=showtime_id,
        ) if label in labels}

    def free_labels(self, showtime_id):
        return {label for (label,) in self.rows(
            "SELECT label FROM seats WHERE showtime_id = :showtime AND reservation_id IS NULL",
            showtime=showtime_id,
        )}

    def add_users(self, names, password):
        password_hash = generate_password_hash(password, method="pbkdf2:sha256:1")
        with Session(self.engine) as session:
            session.add_all(
                User(username=name, email=f"{name}@example.com", password_hash=password_hash)
                for name in names
            )
            session.commit()

    def close(self):
        self.engine.dispose()


# ---- scenarios --------------------------------------------------------------------


def same_seats(client, database, admin, users, number, violations):
    """Every user books A1 and A2 at once."""
    showtime_id = client.new_showtime(admin, number)
    answers = all_at_once(
        [lambda user=user: client.book(user, showtime_id, ["A1", "A2"]) for user in users]
    )
    statuses = Counter(status for status, _ in answers)
    violations.check(statuses == {201: 1, 409: len(users) - 1}, f"same-seats statuses {dict(statuses)}")
    held = database.confirmed(showtime_id)
    winners = [body["reservation"]["id"] for status, body in answers if status == 201]
    violations.check(list(held) == winners, f"same-seats: database {held}, clients saw {winners}")
    violations.check(list(held.values()) == [["A1", "A2"]], f"same-seats: seats held {held}")
    return statuses, showtime_id


def same_request(client, database, admin, users, number, violations):
    """One user sends one booking 20 times at once."""
    showtime_id = client.new_showtime(admin, number)
    user = users[number % len(users)]
    answers = all_at_once([lambda: client.book(user, showtime_id, ["B3", "B4"])] * 20)
    statuses = Counter(status for status, _ in answers)
    violations.check(statuses == {201: 1, 409: 19}, f"same-request statuses {dict(statuses)}")
    held = database.confirmed(showtime_id)
    violations.check(list(held.values()) == [["B3", "B4"]], f"same-request: seats held {held}")
    return statuses, showtime_id


def storm(client, database, admin, users, number, violations, server=None):
    """Users cancel while others book the freed, overlapping seat pairs; a bounded loop.

    With ``server``, one worker is killed with SIGKILL once the storm is under way.
    """
    showtime_id = client.new_showtime(admin, number)
    actors = users[:12]
    steps = 7  # odd: most actors end holding seats
    booked, cancelled, statuses = [], [], Counter()
    lock = threading.Lock()
    progress = threading.Semaphore(0)
    killed = []

    def act(user):
        mine = None
        rng = random.Random(f"{number}-{id(user)}")
        for _ in range(steps):
            if mine is None:
                seats = rng.choice(PAIRS)
                status, body = client.book(user, showtime_id, seats)
                if status == 201:
                    mine = body["reservation"]["id"]
                    with lock:
                        booked.append((mine, sorted(body["reservation"]["seats"])))
            else:
                status, _ = client.cancel(user, mine)
                if status == 200:
                    with lock:
                        cancelled.append(mine)
                    mine = None
            with lock:
                statuses[status] += 1
            progress.release()

    def kill_one_worker():
        for _ in range(len(actors) * steps // 3):  # a third of the way in
            progress.acquire()
        victim = random.choice(server.workers())
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    killer = threading.Thread(target=kill_one_worker) if server else None
    if killer:
        killer.start()
    all_at_once([lambda user=user: act(user) for user in actors])
    if killer:
        killer.join()

    allowed = {200, 201, 409} | ({CONNECTION_ERROR} if server else set())
    violations.check(set(statuses) <= allowed, f"storm statuses {dict(statuses)}")
    if server:
        violations.check(bool(killed), "no worker was killed")
        # The server keeps answering after the kill, and gunicorn replaces the worker.
        status, _ = client.call("GET", "/health")
        violations.check(status == 200, f"after the kill /health answered {status}")
        for _ in range(100):
            current = server.workers()
            if len(current) == WORKERS and killed[0] not in current:
                break
            time.sleep(0.1)
        violations.check(
            len(current) == WORKERS and killed[0] not in current,
            f"workers after the kill: {current}, killed {killed[0]}",
        )
    for reservation_id, seats in booked:
        status, in_database = database.reservation(reservation_id)
        violations.check(in_database == seats, f"201 for {reservation_id} {seats}, database {in_database}")
        if reservation_id in cancelled:
            violations.check(status == "cancelled", f"cancel of {reservation_id} answered 200, database {status}")
    # What clients are told is free is free in the database, and nothing else is.
    seat_map = client.ok("GET", f"/showtimes/{showtime_id}/seats", admin)
    shown_free = {seat["label"] for row in seat_map["rows"] for seat in row["seats"]
                  if seat["status"] == "available"}
    free = database.free_labels(showtime_id)
    violations.check(shown_free == free, f"seat map free {sorted(shown_free)}, database {sorted(free)}")
    held = [label for seats in database.confirmed(showtime_id).values() for label in seats]
    violations.check(len(held) == len(set(held)), f"storm: a seat held twice {sorted(held)}")
    overlaps = database.rows(OVERLAPPING_LIFETIMES + " AND ra.showtime_id = :showtime", showtime=showtime_id)
    violations.check(not overlaps, f"storm: seats sold twice at once {overlaps[:5]}")
    return statuses, showtime_id


def idempotent(client, database, admin, users, number, violations):
    """One user sends one keyed booking 20 times at once, then retries it once more."""
    showtime_id = client.new_showtime(admin, number)
    user = users[number % len(users)]
    key = f"race-{number}"
    answers = all_at_once([lambda: client.book_with_key(user, showtime_id, ["A5", "A6"], key)] * 20)
    answers.append(client.book_with_key(user, showtime_id, ["A5", "A6"], key))
    statuses = Counter("201 replayed" if replayed else status for status, _, replayed in answers)
    violations.check(statuses[201] == 1, f"idempotent: {statuses[201]} first answers {dict(statuses)}")
    violations.check(set(statuses) <= {201, "201 replayed", 409}, f"idempotent statuses {dict(statuses)}")
    violations.check(answers[-1][2], "idempotent: the retry after the storm was not a replay")
    held = database.confirmed(showtime_id)
    named = {body["reservation"]["id"] for status, body, _ in answers if status == 201}
    violations.check(list(held.values()) == [["A5", "A6"]], f"idempotent: seats held {held}")
    violations.check(named == set(held), f"idempotent: 201s name {named}, database {held}")
    in_use = [body for status, body, _ in answers if status == 409]
    violations.check(all("still running" in body["message"] for body in in_use), f"idempotent: 409s {in_use[:2]}")
    return statuses, showtime_id


def holds(client, database, admin, users, number, violations):
    """Half the users hold A1 and A2, the other half book them in one step, all at once.

    One wins. On a slow machine a winning hold can lapse (HOLD_SECONDS is 2 here)
    before the last racers arrive, and one of them may then win after it: allowed only
    when every earlier winner is a hold that lapsed.
    """
    showtime_id = client.new_showtime(admin, number)
    racers = users[:30]
    answers = all_at_once([
        (lambda user=user: client.hold(user, showtime_id, seats=["A1", "A2"])) if index % 2
        else (lambda user=user: client.book(user, showtime_id, ["A1", "A2"]))
        for index, user in enumerate(racers)
    ])
    statuses = Counter(status for status, _ in answers)
    violations.check(set(statuses) <= {201, 409} and statuses[201] >= 1, f"holds statuses {dict(statuses)}")
    winners = sorted((body.get("hold") or body.get("reservation"))["id"] for status, body in answers if status == 201)
    owners = database.owners(showtime_id, ["A1", "A2"])
    violations.check(
        bool(winners) and owners == {"A1": winners[-1], "A2": winners[-1]},
        f"holds: seats owned by {owners}, winners {winners}",
    )
    lapsed = {hold_id for hold_id, status in database.rows(
        "SELECT id, status FROM reservations WHERE showtime_id = :id", id=showtime_id) if status == "expired"}
    violations.check(set(winners[:-1]) <= lapsed, f"holds: winners {winners}, of which lapsed {sorted(lapsed)}")
    return statuses, showtime_id


def at_expiry(client, database, admin, users, number, violations, action):
    """A guest holds B1 and B2; as the hold lapses they ``action`` it while ten others grab the seats.

    Each racer starts at its own moment in the 0.3 s around the expiry, the holder
    from 250 ms before it to 30 ms after (a request takes tens of milliseconds when
    eleven arrive together), so rounds go either way. Either the holder's action wins and nobody else gets the seats, or the
    hold lapsed first and at most one other guest got them.
    """
    showtime_id = client.new_showtime(admin, number)
    holder, others = users[0], users[1:11]
    status, body = client.hold(holder, showtime_id, seats=["B1", "B2"])
    if not violations.check(status == 201, f"{action}-expiry: hold answered {status} {body}"):
        return Counter({status: 1}), showtime_id
    hold = body["hold"]
    expires = datetime.fromisoformat(hold["expires_at"]).timestamp()
    rng = random.Random(number)
    # The holder acts just before, at or just after the expiry, by round; the others anywhere near it.
    offsets = [(-0.25, -0.1, -0.04, 0.03)[number % 4]] + [rng.uniform(-0.15, 0.15) for _ in others]

    def at(offset, call):
        time.sleep(max(0.0, expires + offset - time.time()))
        return call()

    if action == "confirm":
        first = lambda: client.confirm(holder, hold["id"])[:2]  # noqa: E731
    else:
        first = lambda: client.call("POST", f"/holds/{hold['id']}/extend", holder)  # noqa: E731
    grabs = [
        (lambda user=user: client.hold(user, showtime_id, seats=["B1", "B2"])) if index % 2
        else (lambda user=user: client.book(user, showtime_id, ["B1", "B2"]))
        for index, user in enumerate(others)
    ]
    answers = all_at_once([lambda offset=offset, call=call: at(offset, call)
                           for offset, call in zip(offsets, [first] + grabs)])
    (holder_status, holder_body), grabbed = answers[0], answers[1:]
    statuses = Counter({f"{action} {holder_status}": 1})
    statuses.update(f"other {status}" for status, _ in grabbed)
    taken = [body for status, body in grabbed if status == 201]
    owners = database.owners(showtime_id, ["B1", "B2"])
    state, total = database.rows("SELECT status, total_cents FROM reservations WHERE id = :id", id=hold["id"])[0]
    if holder_status in (200, 201):
        violations.check(not taken, f"{action}-expiry: the holder's {action} won, and so did {taken}")
        violations.check(owners == {"B1": hold["id"], "B2": hold["id"]}, f"{action}-expiry: seats {owners}")
        violations.check(state == ("confirmed" if action == "confirm" else "held"), f"{action}-expiry: hold {state}")
    else:
        violations.check(holder_status == 409 and "expired" in holder_body["message"],
                         f"{action}-expiry: the holder got {holder_status} {holder_body}")
        violations.check(len(taken) <= 1, f"{action}-expiry: {len(taken)} others got the seats")
        violations.check(state in ("held", "expired"), f"{action}-expiry: a lapsed hold is {state}")
        if taken:
            winner = (taken[0].get("hold") or taken[0].get("reservation"))["id"]
            violations.check(owners == {"B1": winner, "B2": winner}, f"{action}-expiry: seats {owners}")
    violations.check(set(statuses) <= {f"{action} 200", f"{action} 201", f"{action} 409", "other 201", "other 409"},
                     f"{action}-expiry statuses {dict(statuses)}")
    violations.check(total == round(hold["total_price"] * 100), f"{action}-expiry: total {total}, quoted {hold}")
    return statuses, showtime_id


def confirm_expiry(client, database, admin, users, number, violations):
    return at_expiry(client, database, admin, users, number, violations, "confirm")


def extend_expiry(client, database, admin, users, number, violations):
    return at_expiry(client, database, admin, users, number, violations, "extend")


def keyed_statuses(violations, name, answers):
    """Counts of keyed duplicates: one first answer, the rest replays or "still running" 409s."""
    statuses = Counter("201 replayed" if replayed else status for status, _, replayed in answers)
    violations.check(statuses[201] == 1, f"{name}: {statuses[201]} first answers {dict(statuses)}")
    violations.check(set(statuses) <= {201, "201 replayed", 409}, f"{name} statuses {dict(statuses)}")
    violations.check(answers[-1][2], f"{name}: the retry after the storm was not a replay")
    in_use = [body for status, body, _ in answers if status == 409]
    violations.check(all("still running" in body["message"] for body in in_use), f"{name}: 409s {in_use[:2]}")
    return statuses


def hold_keyed(client, database, admin, users, number, violations):
    """20 keyed duplicates of a hold at once and a retry; then the same for its confirmation."""
    showtime_id = client.new_showtime(admin, number)
    user = users[number % len(users)]
    key = f"race-hold-{number}"

    def keyed_hold():
        try:
            response = requests.post(f"{client.base}/holds", json={"showtime_id": showtime_id, "quantity": 2},
                                     headers={**user, "Idempotency-Key": key}, timeout=60)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            return CONNECTION_ERROR, None, False
        if response.status_code == 201:
            client.quoted(response.json()["hold"])
        return response.status_code, response.json(), response.headers.get("Idempotent-Replayed") == "true"

    answers = all_at_once([keyed_hold] * 20)
    answers.append(keyed_hold())
    statuses = Counter({f"hold {k}": v for k, v in keyed_statuses(violations, "hold-keyed hold", answers).items()})
    held = {body["hold"]["id"] for status, body, _ in answers if status == 201}
    rows = database.rows("SELECT id, status FROM reservations WHERE showtime_id = :id", id=showtime_id)
    violations.check(len(held) == 1 and [row[0] for row in rows] == list(held), f"hold-keyed: {held}, {rows}")
    if len(held) != 1:
        return statuses, showtime_id
    hold_id = held.pop()
    answers = all_at_once([lambda: client.confirm(user, hold_id, key=f"{key}-confirm")] * 20)
    answers.append(client.confirm(user, hold_id, key=f"{key}-confirm"))
    statuses.update({f"confirm {k}": v for k, v in keyed_statuses(violations, "hold-keyed confirm", answers).items()})
    rows = database.rows("SELECT id, status FROM reservations WHERE showtime_id = :id", id=showtime_id)
    violations.check([tuple(row) for row in rows] == [(hold_id, "confirmed")], f"hold-keyed: after confirming {rows}")
    return statuses, showtime_id


def worker_holding(server, port):
    """The worker with an open connection to 127.0.0.1:``port`` (from /proc), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # established
                        inodes.add(fields[9])
        except FileNotFoundError:
            pass
    for pid in server.workers():
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return pid
    return None


def killed_answer(client, database, admin, users, number, violations, server=None, emails=None):
    """Kill the worker between a booking's commit and its answer; the keyed retry books nothing new.

    Odd rounds book in one step, even rounds confirm a hold. The worker is caught while
    it waits for the confirmation email (the stand-in stalls it), i.e. after the commit.
    """
    showtime_id = client.new_showtime(admin, number)
    name = f"{STALLING_GUEST}{number}"
    user = client.new_user(name)
    key = f"race-killed-{number}"
    if number % 2:
        def send():
            return client.book_with_key(user, showtime_id, ["A3", "A4"], key)
    else:
        status, body = client.hold(user, showtime_id, seats=["A3", "A4"])
        if not violations.check(status == 201, f"killed-answer: hold answered {status} {body}"):
            return Counter({status: 1}), showtime_id
        hold_id = body["hold"]["id"]

        def send():
            return client.confirm(user, hold_id, key=key)

    emails.rearm()
    first = []
    sender = threading.Thread(target=lambda: first.append(send()))
    sender.start()
    victim = None
    if violations.check(emails.stalled.wait(timeout=15), "killed-answer: the email never started"):
        for _ in range(50):
            victim = worker_holding(server, emails.port)
            if victim:
                break
            time.sleep(0.05)
    if violations.check(victim is not None, "killed-answer: no worker was found sending the email"):
        os.kill(victim, signal.SIGKILL)
    sender.join(timeout=60)
    emails.release()
    for _ in range(100):
        current = server.workers()
        if len(current) == WORKERS and victim not in current:
            break
        time.sleep(0.1)
    status, body, replayed = send()
    statuses = Counter({f"first {first[0][0] if first else 'none'}": 1, f"retry {status}": 1})
    violations.check(first and first[0][0] == CONNECTION_ERROR, f"killed-answer: the first answer {first}")
    violations.check(status == 201 and replayed, f"killed-answer: the retry {status} {body} replayed={replayed}")
    rows = database.rows("SELECT id, status FROM reservations WHERE showtime_id = :id", id=showtime_id)
    violations.check(len(rows) == 1 and rows[0][1] == "confirmed", f"killed-answer: reservations {rows}")
    if status == 201 and rows:
        violations.check(body["reservation"]["id"] == rows[0][0], f"killed-answer: retry named {body}, database {rows}")
    violations.check(database.owners(showtime_id, ["A3", "A4"]) == dict.fromkeys(["A3", "A4"], rows[0][0] if rows else None),
                     "killed-answer: the seats are not the booking's")
    return statuses, showtime_id


def check_ins(client, database, admin, users, number, violations):
    """20 scanners send each of a booking's three secrets at once."""
    showtime_id = client.new_showtime(admin, number, starts_in=timedelta(minutes=40))  # the door is open
    guest = users[number % len(users)]
    status, body = client.book(guest, showtime_id, ["A1", "A2", "A3"])
    if not violations.check(status == 201, f"check-in: booking answered {status} {body}"):
        return Counter({status: 1}), showtime_id
    reservation_id = body["reservation"]["id"]
    found = client.ok("GET", f"/reservations/{reservation_id}/tickets", guest)["tickets"]
    statuses = Counter()
    for ticket in found:
        answers = all_at_once([lambda secret=ticket["secret"]: client.check_in(admin, secret)] * 20)
        counted = Counter(status for status, _ in answers)
        statuses.update(counted)
        violations.check(counted == {200: 1, 409: 19}, f"check-in {ticket['seat']}: statuses {dict(counted)}")
        refused = [body["message"] for status, body in answers if status == 409]
        violations.check(all("already checked in" in message for message in refused), f"check-in: 409s {refused[:2]}")
    admitted = database.rows(
        "SELECT COUNT(*) FROM tickets WHERE reservation_id = :id AND checked_in_at IS NOT NULL", id=reservation_id
    )[0][0]
    violations.check(admitted == 3, f"check-in: {admitted} tickets checked in, 3 scanned")
    return statuses, showtime_id


def partial_cancels(client, database, admin, users, number, violations):
    """The owner gives back overlapping pairs of A1-A6 from 10 threads while 6 others book single seats."""
    showtime_id = client.new_showtime(admin, number)
    owner, others = users[0], users[1:7]
    seats = [f"A{n}" for n in range(1, 7)]
    status, body = client.book(owner, showtime_id, seats)
    if not violations.check(status == 201, f"partial-cancel: booking answered {status} {body}"):
        return Counter({status: 1}), showtime_id
    reservation_id = body["reservation"]["id"]
    pairs = [[f"A{n}", f"A{n % 6 + 1}"] for n in range(1, 7)] + [["A1", "A4"], ["A2", "A5"], ["A3", "A6"], ["A6"]]
    calls = [lambda pair=pair: ("cancel", client.cancel_seats(owner, reservation_id, pair)) for pair in pairs]
    calls += [lambda user=user, seat=seat: ("book", client.book(user, showtime_id, [seat]))
              for user, seat in zip(others, seats)]
    answers = all_at_once(calls)
    statuses = Counter(f"{kind} {status}" for kind, (status, _) in answers)
    violations.check(
        {status for _, (status, _) in answers} <= {200, 201, 409}, f"partial-cancel statuses {dict(statuses)}"
    )
    given_back = [seat for kind, (status, body) in answers if kind == "cancel" and status == 200
                  for seat in body["cancelled_seats"]]
    violations.check(len(given_back) == len(set(given_back)), f"partial-cancel: a seat given back twice {given_back}")
    rebooked = [body["reservation"]["seats"][0] for kind, (status, body) in answers if kind == "book" and status == 201]
    violations.check(set(rebooked) <= set(given_back), f"partial-cancel: booked {rebooked}, given back {given_back}")
    kept = sorted(set(seats) - set(given_back))
    state = client.ok("GET", f"/reservations/{reservation_id}", owner)
    violations.check(sorted(state["seats"]) == kept or state["status"] == "cancelled",
                     f"partial-cancel: seats {state['seats']}, expected {kept}")
    violations.check((state["status"] == "cancelled") == (not kept), f"partial-cancel: status {state['status']}")
    if kept:
        price = database.rows("SELECT price_cents FROM showtimes WHERE id = :id", id=showtime_id)[0][0]
        violations.check(round(state["total_price"] * 100) == price * len(kept),
                         f"partial-cancel: total {state['total_price']} for {kept}")
    return statuses, showtime_id


SCENARIOS = [
    ("same-seats", same_seats),
    ("same-request", same_request),
    ("storm", storm),
    ("worker-kill", storm),
    ("idempotent", idempotent),
    ("holds", holds),
    ("confirm-expiry", confirm_expiry),
    ("extend-expiry", extend_expiry),
    ("hold-keyed", hold_keyed),
    ("killed-answer", killed_answer),
    ("check-in", check_ins),
    ("partial-cancel", partial_cancels),
]


def run(database_name, database_url, workdir, rounds):
    print(f"== {database_name}: gunicorn, {WORKERS} workers", flush=True)
    violations = Violations()
    started = time.monotonic()
    emails = StallingEmails()
    server = Server(database_url, workdir, emails.url)
    database = Database(database_url)
    try:
        server.start()
        client = Client(server.base)
        admin = client.login(ADMIN["username"], ADMIN["password"])
        users = client.users(database, USERS)
        print(f"  server and {USERS} users ready after {time.monotonic() - started:.1f} s", flush=True)
        number = 0
        for name, scenario in SCENARIOS:
            for round_number in range(1, rounds + 1):
                number += 1
                extra = {"worker-kill": {"server": server},
                         "killed-answer": {"server": server, "emails": emails}}.get(name, {})
                before, round_started = len(violations), time.monotonic()
                statuses, _ = scenario(client, database, admin, users, number, violations, **extra)
                counts = " ".join(f"{status}x{count}" for status, count in sorted(statuses.items(), key=str))
                verdict = "ok" if len(violations) == before else "VIOLATED: " + "; ".join(violations[before:])
                took = time.monotonic() - round_started
                print(f"  {name:<14} round {round_number}: {counts:<40} {took:4.1f} s  {verdict}", flush=True)
        for line in database.check_invariants(violations):
            print(f"  check {line}")
        charged = dict(database.rows("SELECT id, total_cents FROM reservations WHERE expires_at IS NOT NULL "
                                     "AND status IN ('confirmed', 'cancelled')"))
        unlike = {hold_id: (client.quotes.get(hold_id), total) for hold_id, total in charged.items()
                  if client.quotes.get(hold_id) != total}
        violations.check(not unlike, f"confirmed holds charged other than quoted: {unlike}")
        print(f"  check every confirmed hold ({len(charged)}) charged its quote: {'ok' if not unlike else 'VIOLATED'}")
        status, _ = client.call("GET", "/health")
        violations.check(status == 200, f"/health answered {status} at the end")
    finally:
        server.stop()
        emails.stop()
        database.close()
    if violations:
        print(f"  see {server.log_path}")
    print(f"== {database_name}: {'FAILED' if violations else 'passed'} "
          f"in {time.monotonic() - started:.1f} s", flush=True)
    return not violations


def postgres_database():
    """A new database on the PostgreSQL server; returns (url, drop)."""
    name = f"cinema_race_{uuid.uuid4().hex[:10]}"
    server = create_engine(make_url(POSTGRES_SERVER), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()

    return make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False), drop


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["both", "sqlite", "postgresql"], default="both")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each scenario (default 3)")
    parser.add_argument("--scenario", action="append", choices=[name for name, _ in SCENARIOS],
                        help="run only this scenario (repeatable; default: all)")
    args = parser.parse_args()
    if args.scenario:
        SCENARIOS[:] = [(name, scenario) for name, scenario in SCENARIOS if name in args.scenario]
    passed = True
    with tempfile.TemporaryDirectory(prefix="cinema-race-") as workdir:
        if args.database in ("both", "postgresql"):
            url, drop = postgres_database()
            try:
                passed &= run("postgresql", url, workdir, args.rounds)
            finally:
                drop()
        if args.database in ("both", "sqlite"):
            passed &= run("sqlite", f"sqlite:///{os.path.join(workdir, 'race.db')}", workdir, args.rounds)
        if not passed:
            with open(os.path.join(workdir, "gunicorn.log")) as log:
                print(log.read()[-5000:])
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
