"""Check-ins and partial cancellations racing through a real threaded server."""

from collections import Counter
from datetime import datetime, timedelta, timezone

import requests

from conftest import ADMIN
from test_concurrency import all_at_once, new_user, server, token  # noqa: F401 - server is a fixture

SCANNERS = 12


def showtime_starting_soon(base, admin, number):
    """A showtime 40 minutes ahead (its door is open), with seats A1-A5 and B1-B5."""
    movie = requests.post(f"{base}/movies", json={"title": f"Door {number}", "genre": "Drama"}, headers=admin).json()
    start = (datetime.now(timezone.utc) + timedelta(minutes=40)).replace(microsecond=0)
    showtime = requests.post(
        f"{base}/showtimes", json={"movie_id": movie["id"], "start_time": start.isoformat(), "hall": f"Door {number}"},
        headers=admin,
    ).json()
    seats = requests.post(
        f"{base}/seats", json={"showtime_id": showtime["id"], "rows": "A-B", "seats_per_row": 5}, headers=admin
    )
    assert seats.status_code == 201, seats.json()
    return showtime["id"]


def test_scanners_on_one_secret_admit_exactly_once(server):
    base, _ = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    guest = new_user(base, "guest")
    showtime_id = showtime_starting_soon(base, admin, 0)
    booking = requests.post(
        f"{base}/reservations", json={"showtime_id": showtime_id, "seats": ["A1", "A2", "A3"]}, headers=guest
    ).json()["reservation"]
    found = requests.get(f"{base}/reservations/{booking['id']}/tickets", headers=guest).json()["tickets"]

    for ticket in found:  # a round per seat
        def scan(session, secret=ticket["secret"]):
            return session.post(f"{base}/check-ins", json={"secret": secret}, headers=admin, timeout=60)

        answers = all_at_once([scan] * SCANNERS)

        statuses = Counter(answer.status_code for answer in answers)
        assert statuses == {200: 1, 409: SCANNERS - 1}, statuses
        refusals = [answer.json()["message"] for answer in answers if answer.status_code == 409]
        assert all("already checked in at" in message for message in refusals), refusals
    shown = requests.get(f"{base}/reservations/{booking['id']}/tickets", headers=guest).json()["tickets"]
    assert all(ticket["checked_in_at"] for ticket in shown)


def test_a_scan_and_a_cancel_of_one_seat_never_both_win(server):
    """At once: the door scans A1 while an admin gives A1 back. One of them wins, never both."""
    base, _ = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    guest = new_user(base, "late_guest")
    showtime_id = showtime_starting_soon(base, admin, 1)
    outcomes = Counter()
    for seat in ("A1", "A2", "A3", "A4", "A5"):
        booking = requests.post(
            f"{base}/reservations", json={"showtime_id": showtime_id, "seats": [seat]}, headers=guest
        ).json()["reservation"]
        (ticket,) = requests.get(f"{base}/reservations/{booking['id']}/tickets", headers=guest).json()["tickets"]

        def scan(session, secret=ticket["secret"]):
            return session.post(f"{base}/check-ins", json={"secret": secret}, headers=admin, timeout=60)

        def give_back(session, reservation_id=booking["id"], seat=seat):
            return session.post(
                f"{base}/reservations/{reservation_id}/cancel", json={"seats": [seat]}, headers=admin, timeout=60
            )

        scanned, cancelled = all_at_once([scan, give_back])

        assert {scanned.status_code, cancelled.status_code} == {200, 409}, (scanned.json(), cancelled.json())
        outcomes["admitted" if scanned.status_code == 200 else "cancelled"] += 1
        status = requests.get(f"{base}/reservations/{booking['id']}", headers=guest).json()["status"]
        assert status == ("confirmed" if scanned.status_code == 200 else "cancelled")
    assert sum(outcomes.values()) == 5
