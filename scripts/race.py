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

    def __init__(self, database_url, workdir):
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
            "RESEND_API_KEY": "",
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


# ---- the client -------------------------------------------------------------------


class Client:
    def __init__(self, base):
        self.base = base

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


# Two reservations of one seat whose lifetimes (booked .. cancelled) overlap: a seat
# that was sold twice at some moment, even if one of them was cancelled since.
OVERLAPPING_LIFETIMES = """
    SELECT a.seat_id, a.reservation_id, b.reservation_id FROM reservation_seats a
    JOIN reservations ra ON ra.id = a.reservation_id
    JOIN reservation_seats b ON b.seat_id = a.seat_id AND b.reservation_id > a.reservation_id
    JOIN reservations rb ON rb.id = b.reservation_id
    WHERE rb.created_at < COALESCE(a.cancelled_at, ra.cancelled_at, '9999-12-31')
      AND ra.created_at < COALESCE(b.cancelled_at, rb.cancelled_at, '9999-12-31')"""

INVARIANTS = {
    "no seat ever in two active reservations at once": OVERLAPPING_LIFETIMES,
    "no seat in two active reservations": """
        SELECT rs.seat_id FROM reservation_seats rs
        JOIN reservations r ON r.id = rs.reservation_id
        WHERE r.status = 'confirmed' AND rs.cancelled_at IS NULL GROUP BY rs.seat_id HAVING COUNT(*) > 1""",
    "no reservation without seats": """
        SELECT r.id FROM reservations r
        WHERE NOT EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.reservation_id = r.id)""",
    "an active reservation holds all its seats": """
        SELECT rs.reservation_id FROM reservation_seats rs
        JOIN reservations r ON r.id = rs.reservation_id
        JOIN seats s ON s.id = rs.seat_id
        WHERE r.status = 'confirmed' AND rs.cancelled_at IS NULL
          AND (s.reservation_id IS NULL OR s.reservation_id <> r.id)""",
    "a held seat belongs to an active reservation that lists it": """
        SELECT s.id FROM seats s
        LEFT JOIN reservations r ON r.id = s.reservation_id
        LEFT JOIN reservation_seats rs ON rs.reservation_id = s.reservation_id AND rs.seat_id = s.id
                                       AND rs.cancelled_at IS NULL
        WHERE s.reservation_id IS NOT NULL AND (r.status IS NULL OR r.status <> 'confirmed'
                                                OR rs.seat_id IS NULL)""",
    "a cancelled reservation holds no seat": """
        SELECT s.id FROM seats s JOIN reservations r ON r.id = s.reservation_id
        WHERE r.status = 'cancelled'""",
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
    ("check-in", check_ins),
    ("partial-cancel", partial_cancels),
]


def run(database_name, database_url, workdir, rounds):
    print(f"== {database_name}: gunicorn, {WORKERS} workers", flush=True)
    violations = Violations()
    started = time.monotonic()
    server = Server(database_url, workdir)
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
                extra = {"server": server} if name == "worker-kill" else {}
                before, round_started = len(violations), time.monotonic()
                statuses, _ = scenario(client, database, admin, users, number, violations, **extra)
                counts = " ".join(f"{status}x{count}" for status, count in sorted(statuses.items(), key=str))
                verdict = "ok" if len(violations) == before else "VIOLATED: " + "; ".join(violations[before:])
                took = time.monotonic() - round_started
                print(f"  {name:<14} round {round_number}: {counts:<40} {took:4.1f} s  {verdict}", flush=True)
        for line in database.check_invariants(violations):
            print(f"  check {line}")
        status, _ = client.call("GET", "/health")
        violations.check(status == 200, f"/health answered {status} at the end")
    finally:
        server.stop()
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
