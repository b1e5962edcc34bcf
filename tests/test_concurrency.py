"""Races through a real threaded HTTP server, on the test database (a SQLite file or PostgreSQL)."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from werkzeug.serving import make_server

from app import create_app
from conftest import ADMIN, future, test_config

ROUNDS = 3


@pytest.fixture
def server(tmp_path):
    """The app on a threaded werkzeug server at 127.0.0.1:<free port>."""
    app = create_app(test_config(tmp_path, TESTING=False))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", app
    httpd.shutdown()
    thread.join(timeout=5)


def token(base, username, password="password123"):
    response = requests.post(f"{base}/login", json={"username": username, "password": password})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def new_user(base, name):
    body = {"username": name, "email": f"{name}@example.com", "password": "password123"}
    assert requests.post(f"{base}/register", json=body).status_code == 201
    return token(base, name)


def new_showtime(base, admin, hour):
    movie = requests.post(
        f"{base}/movies", json={"title": f"Race {hour}", "genre": "Drama"}, headers=admin
    ).json()
    showtime = requests.post(
        f"{base}/showtimes",
        json={"movie_id": movie["id"], "start_time": future(hour=hour)},
        headers=admin,
    ).json()
    seats = requests.post(
        f"{base}/seats", json={"showtime_id": showtime["id"], "rows": "A-B", "seats_per_row": 5},
        headers=admin,
    )
    assert seats.status_code == 201
    return showtime["id"]


def all_at_once(calls):
    """Run the calls from as many threads, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        with requests.Session() as session:
            barrier.wait()
            return call(session)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def seats_held(base, headers, showtime_id):
    seat_map = requests.get(f"{base}/showtimes/{showtime_id}/seats", headers=headers).json()
    return {
        seat["label"]: seat["status"] for row in seat_map["rows"] for seat in row["seats"]
    }


def book_call(base, headers, showtime_id, seats):
    def call(session):
        return session.post(
            f"{base}/reservations",
            json={"showtime_id": showtime_id, "seats": seats},
            headers=headers,
            timeout=60,
        )

    return call


def test_twenty_users_race_for_one_seat(server):
    base, _ = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    users = [new_user(base, f"racer{number}") for number in range(20)]
    for round_number in range(ROUNDS):
        showtime_id = new_showtime(base, admin, hour=10 + round_number * 3)
        responses = all_at_once([book_call(base, user, showtime_id, ["A1"]) for user in users])
        statuses = Counter(response.status_code for response in responses)
        assert statuses == {201: 1, 409: 19}, statuses
        winner = next(i for i, r in enumerate(responses) if r.status_code == 201)
        for response in responses:
            if response.status_code == 409:
                assert response.json()["errors"]["seats"] == ["A1"]
        # Only the winner sees A1 as theirs; everyone else sees it booked.
        assert seats_held(base, users[winner], showtime_id)["A1"] == "yours"
        assert seats_held(base, users[(winner + 1) % 20], showtime_id)["A1"] == "booked"
        report = requests.get(f"{base}/admin/report", headers=admin).json()
        row = next(r for r in report["showtimes"] if r["showtime_id"] == showtime_id)
        assert row["seats_booked"] == 1


def test_one_user_sends_the_same_booking_fifteen_times(server):
    base, _ = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    user = new_user(base, "eager")
    for round_number in range(ROUNDS):
        showtime_id = new_showtime(base, admin, hour=10 + round_number * 3)
        responses = all_at_once(
            [book_call(base, user, showtime_id, ["A1", "A2"]) for _ in range(15)]
        )
        statuses = Counter(response.status_code for response in responses)
        assert statuses == {201: 1, 409: 14}, statuses
        mine = requests.get(
            f"{base}/reservations", headers=user, params={"per_page": 100}
        ).json()
        assert [r["seats"] for r in mine if r["showtime_id"] == showtime_id] == [["A1", "A2"]]


def test_overlapping_bookings_never_share_a_seat(server):
    """Ten users each want two adjacent seats of a row of five: pairs overlap."""
    base, _ = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    users = [new_user(base, f"pair{number}") for number in range(10)]
    showtime_id = new_showtime(base, admin, hour=12)
    wanted = [[f"A{n}", f"A{n + 1}"] for n in range(1, 5)]
    responses = all_at_once(
        [book_call(base, user, showtime_id, wanted[i % 4]) for i, user in enumerate(users)]
    )
    assert all(response.status_code in (201, 409) for response in responses)
    booked = [seat for r in responses if r.status_code == 201 for seat in r.json()["reservation"]["seats"]]
    assert len(booked) == len(set(booked)), booked
    held = seats_held(base, admin, showtime_id)
    assert sorted(label for label, status in held.items() if status != "available") == sorted(booked)


def test_overlapping_showtimes_in_one_hall_cannot_both_be_scheduled(server):
    """Ten admins schedule the same hall at overlapping times at once: one wins."""
    base, _ = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    movie = requests.post(
        f"{base}/movies", json={"title": "Clash", "genre": "Drama", "duration_minutes": 90},
        headers=admin,
    ).json()

    def schedule(minute):
        def call(session):
            body = {"movie_id": movie["id"], "start_time": future(hour=15, minute=minute), "hall": "One"}
            return session.post(f"{base}/showtimes", json=body, headers=admin, timeout=60)

        return call

    responses = all_at_once([schedule(minute) for minute in range(0, 50, 5)])

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 409: 9}, statuses
    listed = requests.get(f"{base}/showtimes", params={"per_page": 100}, headers=admin).json()
    assert [showtime["hall"] for showtime in listed] == ["One"]


def test_one_hall_under_different_spellings_cannot_be_double_scheduled(server):
    """Ten admins schedule one hall at once, each spelling its name differently: one wins."""
    base, _ = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    movie = requests.post(
        f"{base}/movies", json={"title": "Clash", "genre": "Drama", "duration_minutes": 90},
        headers=admin,
    ).json()
    spellings = ["Two", "two", "TWO", "tWo", "twO", " two", "Two ", "TWo", "tWO", "TwO"]

    def schedule(hall):
        def call(session):
            body = {"movie_id": movie["id"], "start_time": future(hour=15), "hall": hall}
            return session.post(f"{base}/showtimes", json=body, headers=admin, timeout=60)

        return call

    responses = all_at_once([schedule(hall) for hall in spellings])

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 409: 9}, statuses


def test_archiving_a_showtime_while_it_is_being_booked(server):
    """Bookings and the admin's delete race: either the delete sees a booking (409) or no booking lands."""
    base, _ = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    users = [new_user(base, f"late{number}") for number in range(8)]
    for round_number in range(ROUNDS):
        showtime_id = new_showtime(base, admin, hour=10 + round_number * 3)

        def delete(session, showtime_id=showtime_id):
            return session.delete(f"{base}/showtimes/{showtime_id}", headers=admin, timeout=60)

        calls = [book_call(base, user, showtime_id, [f"A{n + 1}" if n < 5 else f"B{n - 4}"])
                 for n, user in enumerate(users)]
        *bookings, deleted = all_at_once(calls + [delete])

        booked = [r for r in bookings if r.status_code == 201]
        assert all(r.status_code in (201, 404) for r in bookings), [r.status_code for r in bookings]
        if deleted.status_code == 200:
            assert booked == [], "a booking landed on an archived showtime"
        else:
            assert deleted.status_code == 409 and booked
        report = requests.get(f"{base}/admin/report", headers=admin).json()
        rows = [r for r in report["showtimes"] if r["showtime_id"] == showtime_id]
        assert sum(row["seats_booked"] for row in rows) == len(booked)
