"""Idempotency-Key: a retried booking or cancellation gets the first answer back and changes nothing."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

import booking
import idempotency
from app import create_app
from conftest import ADMIN, Cinema, assert_error, test_config
from models import IdempotencyKey, Reservation, db, utcnow
from test_concurrency import all_at_once, new_showtime, new_user, server, token  # noqa: F401 - server is a fixture

API_KEY = "re_test_123"
KEY = "9b2f3c1e-booking-1"


@pytest.fixture
def app(tmp_path, resend_fake):
    return create_app(test_config(tmp_path, RESEND_API_KEY=API_KEY, RESEND_API_URL=resend_fake.url))


def keyed(headers, key=KEY, name="Idempotency-Key"):
    return {**headers, name: key}


def emails(resend_fake):
    return [request for request in resend_fake.requests if request.path == "/emails"]


def reservation_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Reservation))


def test_a_retry_gets_the_first_answer_and_books_once(app, cinema, resend_fake):
    showtime = cinema.showtime_with_seats()
    headers = keyed(cinema.user())
    body = {"showtime_id": showtime["id"], "seats": ["A1", "A2"]}

    first = cinema.client.post("/reservations", json=body, headers=headers)
    retry = cinema.client.post("/reservations", json=body, headers=headers)

    assert first.status_code == 201, first.json
    assert "Idempotent-Replayed" not in first.headers
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_data() == first.get_data()
    assert retry.headers["Location"] == first.headers["Location"]
    assert reservation_count(app) == 1
    assert len(emails(resend_fake)) == 1


def test_the_same_body_in_another_key_order_and_the_x_header_are_the_same_request(app, cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    first = cinema.client.post(
        "/reservations", json={"showtime_id": showtime["id"], "seats": ["A1"]}, headers=keyed(user)
    )

    retry = cinema.client.post(
        "/reservations",
        json={"seats": ["A1"], "showtime_id": showtime["id"]},
        headers=keyed(user, name="X-Idempotency-Key"),
    )

    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_data() == first.get_data()
    assert reservation_count(app) == 1


def test_the_key_used_for_another_body_or_path_is_refused(app, cinema):
    showtime = cinema.showtime_with_seats()
    headers = keyed(cinema.user())
    cinema.client.post("/reservations", json={"showtime_id": showtime["id"], "seats": ["A1"]}, headers=headers)

    other_body = cinema.client.post(
        "/reservations", json={"showtime_id": showtime["id"], "seats": ["A2"]}, headers=headers
    )
    other_path = cinema.client.delete("/reservations/1", headers=headers)

    assert_error(other_body, 422, "used for another request")
    assert_error(other_path, 422, "used for another request")
    assert reservation_count(app) == 1
    seats = cinema.client.get(f"/showtimes/{showtime['id']}/seats", headers=headers).json
    assert seats["rows"][0]["seats"][1]["status"] == "available"  # A2
    assert cinema.client.get("/reservations/1", headers=headers).json["status"] == "confirmed"


def test_another_users_same_key_is_their_own(app, cinema):
    showtime = cinema.showtime_with_seats()

    one, other = keyed(cinema.user()), keyed(cinema.user())
    first = cinema.book(one, showtime["id"], ["A1"])
    second = cinema.book(other, showtime["id"], ["A2"])
    retries = [cinema.book(one, showtime["id"], ["A1"]), cinema.book(other, showtime["id"], ["A2"])]

    assert first.status_code == 201 and second.status_code == 201, second.json
    assert "Idempotent-Replayed" not in second.headers
    assert second.json["reservation"]["id"] != first.json["reservation"]["id"]
    assert [retry.get_data() for retry in retries] == [first.get_data(), second.get_data()]
    assert all(retry.headers["Idempotent-Replayed"] == "true" for retry in retries)
    assert reservation_count(app) == 2


def test_after_the_window_the_key_runs_again(tmp_path, monkeypatch):
    app = create_app(test_config(tmp_path, IDEMPOTENCY_KEY_HOURS=1))
    cinema = Cinema(app.test_client())
    showtime = cinema.showtime_with_seats()
    headers = keyed(cinema.user())
    first = cinema.book(headers, showtime["id"], ["A1"])
    assert first.status_code == 201
    within = cinema.book(headers, showtime["id"], ["A1"])
    assert within.headers["Idempotent-Replayed"] == "true"
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr(idempotency, "utcnow", lambda: later)

    again = cinema.book(headers, showtime["id"], ["A1"])

    # It ran again: A1 is the first booking's now.
    assert_error(again, 409, "already booked")
    assert "Idempotent-Replayed" not in again.headers
    other = cinema.book(headers, showtime["id"], ["A2"])
    assert other.status_code == 201, other.json  # the key is free for a new request
    with app.app_context():
        # The expired row is gone; the new answer is kept.
        assert db.session.scalars(select(IdempotencyKey.status)).all() == [201]


def test_a_conflict_is_not_kept_so_the_retry_can_succeed(app, cinema):
    showtime = cinema.showtime_with_seats()
    holder = cinema.user()
    held = cinema.book(holder, showtime["id"], ["A1"]).json["reservation"]["id"]
    headers = keyed(cinema.user())

    refused = cinema.book(headers, showtime["id"], ["A1"])
    assert_error(refused, 409, "already booked")
    assert cinema.client.delete(f"/reservations/{held}", headers=holder).status_code == 200
    retry = cinema.book(headers, showtime["id"], ["A1"])

    assert retry.status_code == 201, retry.json
    assert "Idempotent-Replayed" not in retry.headers
    assert cinema.book(headers, showtime["id"], ["A1"]).headers["Idempotent-Replayed"] == "true"


def test_a_refusal_other_than_a_conflict_is_kept(app, cinema):
    headers = keyed(cinema.user())
    first = cinema.book(headers, 999, ["A1"])

    retry = cinema.book(headers, 999, ["A1"])

    assert_error(first, 404, "not found")
    assert_error(retry, 404, "not found")
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_data() == first.get_data()


def test_a_retried_cancellation_gets_the_first_answer(app, cinema, resend_fake):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    reservation_id = cinema.book(user, showtime["id"], ["A1"]).json["reservation"]["id"]
    headers = keyed(user, "cancel-1")

    first = cinema.client.delete(f"/reservations/{reservation_id}", headers=headers)
    retry = cinema.client.delete(f"/reservations/{reservation_id}", headers=headers)
    unkeyed = cinema.client.delete(f"/reservations/{reservation_id}", headers=user)

    assert first.status_code == 200, first.json
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_data() == first.get_data()
    assert_error(unkeyed, 409, "already cancelled")  # without the key it is a new request
    assert len(emails(resend_fake)) == 2  # the confirmation and one cancellation notice


@pytest.mark.parametrize(
    "key", ["", "k" * 256, "clé", "tab\there", "bell\x07"], ids=["empty", "too-long", "not-ascii", "tab", "control"]
)
def test_bad_keys_are_refused(app, cinema, key):
    showtime = cinema.showtime_with_seats()

    response = cinema.book(keyed(cinema.user(), key), showtime["id"], ["A1"])

    assert_error(response, 400, "printable ASCII")
    assert reservation_count(app) == 0


def test_a_key_of_255_printable_characters_is_taken(app, cinema):
    showtime = cinema.showtime_with_seats()
    key = ("~ !" * 85)[:255]

    headers = keyed(cinema.user(), key)

    response = cinema.book(headers, showtime["id"], ["A1"])

    assert response.status_code == 201, response.json
    assert cinema.book(headers, showtime["id"], ["A1"]).headers["Idempotent-Replayed"] == "true"


def test_both_headers_must_agree(app, cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()

    differing = cinema.book({**user, "Idempotency-Key": "a", "X-Idempotency-Key": "b"}, showtime["id"], ["A1"])
    agreeing = cinema.book({**user, "Idempotency-Key": "a", "X-Idempotency-Key": "a"}, showtime["id"], ["A1"])

    assert_error(differing, 400, "differ")
    assert agreeing.status_code == 201, agreeing.json


# ---- a worker that dies between the commit and the answer -----------------------------


def test_a_booking_committed_but_never_answered_is_not_booked_again(app, cinema, resend_fake, monkeypatch):
    """The worker died after the commit: the answer was never recorded. The retry rebuilds it."""
    showtime = cinema.showtime_with_seats()
    headers = keyed(cinema.user())
    monkeypatch.setattr(idempotency, "record_answer", lambda response: response)
    lost = cinema.book(headers, showtime["id"], ["A1", "A2"])
    monkeypatch.undo()

    retry = cinema.book(headers, showtime["id"], ["A1", "A2"])

    assert lost.status_code == 201
    assert retry.status_code == 201, retry.json
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Location"] == lost.headers["Location"]
    assert retry.json["reservation"]["id"] == lost.json["reservation"]["id"]
    assert retry.json["reservation"]["seats"] == ["A1", "A2"]
    assert reservation_count(app) == 1
    assert len(emails(resend_fake)) == 1


def test_a_cancellation_committed_but_never_answered_is_answered_the_same(app, cinema, resend_fake, monkeypatch):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    reservation_id = cinema.book(user, showtime["id"], ["A1"]).json["reservation"]["id"]
    monkeypatch.setattr(idempotency, "record_answer", lambda response: response)
    lost = cinema.client.delete(f"/reservations/{reservation_id}", headers=keyed(user))
    monkeypatch.undo()

    retry = cinema.client.delete(f"/reservations/{reservation_id}", headers=keyed(user))

    assert lost.status_code == 200
    assert retry.status_code == 200, retry.json
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_data() == lost.get_data()
    assert len(emails(resend_fake)) == 2


# ---- at once, through a real threaded server ------------------------------------------


def is_postgresql(app) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "postgresql"


def test_a_retry_while_the_first_is_still_booking(server, monkeypatch):
    """PostgreSQL answers 409 with Retry-After at once; SQLite makes it wait, then replays."""
    base, app = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    showtime_id = new_showtime(base, admin, hour=11)
    headers = keyed(new_user(base, "patient"))
    inside, release = threading.Event(), threading.Event()
    bump = booking.bump_showtime_version

    def slow_bump(showtime_id):
        inside.set()
        release.wait(timeout=30)
        bump(showtime_id)

    monkeypatch.setattr(booking, "bump_showtime_version", slow_bump)
    book = {"json": {"showtime_id": showtime_id, "seats": ["A1"]}, "headers": headers, "timeout": 60}
    answers = {}
    first = threading.Thread(target=lambda: answers.update(first=requests.post(f"{base}/reservations", **book)))
    first.start()
    assert inside.wait(timeout=30)  # the first holds its transaction open

    if is_postgresql(app):
        retry = requests.post(f"{base}/reservations", **book)
        assert_http_error(retry, 409, "still running")
        assert retry.headers["Retry-After"] == "1"
        release.set()
        first.join(timeout=60)
        retry = requests.post(f"{base}/reservations", **book)
    else:
        waiting = threading.Thread(target=lambda: answers.update(retry=requests.post(f"{base}/reservations", **book)))
        waiting.start()
        release.set()
        first.join(timeout=60)
        waiting.join(timeout=60)
        retry = answers["retry"]

    assert answers["first"].status_code == 201, answers["first"].text
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["reservation"]["id"] == answers["first"].json()["reservation"]["id"]
    assert reservation_count(app) == 1


def assert_http_error(response, status, message_part):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["error"] and message_part in body["message"]


def test_the_same_keyed_booking_sent_at_once_books_once(server):
    base, app = server
    admin = token(base, ADMIN["username"], ADMIN["password"])
    user = new_user(base, "hasty")
    for round_number in range(3):
        showtime_id = new_showtime(base, admin, hour=10 + round_number * 3)
        headers = keyed(user, f"round-{round_number}")
        book = {"json": {"showtime_id": showtime_id, "seats": ["A1", "A2"]}, "headers": headers, "timeout": 60}

        answers = all_at_once([lambda session: session.post(f"{base}/reservations", **book)] * 8)
        retry = requests.post(f"{base}/reservations", **book)

        statuses = Counter(
            (answer.status_code, answer.headers.get("Idempotent-Replayed")) for answer in answers + [retry]
        )
        assert statuses[(201, None)] == 1, statuses
        assert set(statuses) <= {(201, None), (201, "true"), (409, None)}, statuses
        (first,) = [answer for answer in answers if "Idempotent-Replayed" not in answer.headers and answer.ok]
        for answer in answers + [retry]:
            if answer.status_code == 201:
                assert answer.headers["Location"] == first.headers["Location"]
                assert answer.json()["reservation"]["id"] == first.json()["reservation"]["id"]
            else:
                assert_http_error(answer, 409, "still running")
                assert answer.headers["Retry-After"] == "1"
        assert retry.headers["Idempotent-Replayed"] == "true"
        mine = requests.get(f"{base}/reservations", headers=user, params={"per_page": 100}).json()
        assert [r["seats"] for r in mine if r["showtime_id"] == showtime_id] == [["A1", "A2"]]
