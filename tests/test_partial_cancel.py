"""Changing a booking: giving back some seats, the cancellation cutoff, and the history kept."""

import logging
from datetime import datetime, timedelta, timezone

import pytest

from app import create_app
from conftest import Cinema, assert_error, test_config
from test_tickets import booked, check_in, soon, tickets_of


def cancel(cinema, reservation, headers, seats=None, **extra):
    body = {} if seats is None else {"seats": seats}
    return cinema.client.post(f"/reservations/{reservation['id']}/cancel", json=body, headers=headers, **extra)


def seat_map(cinema, showtime, headers):
    rows = cinema.client.get(f"/showtimes/{showtime['id']}/seats", headers=headers).json["rows"]
    return {seat["label"]: seat["status"] for row in rows for seat in row["seats"]}


def child_booking(cinema):
    """A1 adult ($10), A2 child ($6), A3 adult ($10) on a new showtime."""
    showtime = cinema.showtime_with_seats()
    owner = cinema.user()
    tickets = [{"seat": "A1"}, {"seat": "A2", "ticket_type": "child"}, {"seat": "A3"}]
    response = cinema.client.post("/reservations", json={"showtime_id": showtime["id"], "tickets": tickets}, headers=owner)
    assert response.status_code == 201, response.json
    assert response.json["reservation"]["total_price"] == 26.0
    return response.json["reservation"], owner, showtime


def test_giving_back_some_seats_keeps_the_rest(cinema, caplog):
    reservation, owner, showtime = child_booking(cinema)

    with caplog.at_level(logging.INFO, logger="cinema.emails"):
        response = cancel(cinema, reservation, owner, ["a2"])

    assert response.status_code == 200, response.json
    assert response.json["cancelled_seats"] == ["A2"]
    changed = response.json["reservation"]
    assert changed["status"] == "confirmed" and changed["cancelled_at"] is None
    assert changed["seats"] == ["A1", "A3"]
    assert changed["total_price"] == 20.0
    lines = {line["seat"]: line for line in changed["lines"]}
    assert set(lines) == {"A1", "A2", "A3"}
    assert lines["A2"]["cancelled_at"] is not None and lines["A2"]["price"] == 6.0
    assert lines["A1"]["cancelled_at"] is None and lines["A3"]["cancelled_at"] is None
    assert cinema.client.get(f"/reservations/{reservation['id']}", headers=owner).json == changed
    statuses = seat_map(cinema, showtime, owner)
    assert (statuses["A1"], statuses["A2"], statuses["A3"]) == ("yours", "available", "yours")
    assert set(tickets_of(cinema, reservation, owner)) == {"A1", "A3"}
    assert "Booking change for reservation" in caplog.text
    assert "Cancelled seats: A2" in caplog.text and "Seats: A1, A3" in caplog.text
    # Free at once: someone else books it.
    assert cinema.book(cinema.user(), showtime["id"], ["A2"]).status_code == 201


def test_giving_back_the_last_seats_cancels_the_reservation(cinema, caplog):
    reservation, owner, showtime = child_booking(cinema)
    cancel(cinema, reservation, owner, ["A1"])

    with caplog.at_level(logging.INFO, logger="cinema.emails"):
        response = cancel(cinema, reservation, owner, ["A3", "A2"])

    assert response.json["cancelled_seats"] == ["A2", "A3"]
    done = response.json["reservation"]
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    # Its history: every line, each with when it was given back; the seats and total it ended with.
    lines = {line["seat"]: line["cancelled_at"] for line in done["lines"]}
    assert lines["A2"] == lines["A3"] == done["cancelled_at"] and lines["A1"] < done["cancelled_at"]
    assert done["seats"] == ["A2", "A3"] and done["total_price"] == 16.0
    assert f"Booking cancellation for reservation {reservation['id']}" in caplog.text
    assert all(status == "available" for status in seat_map(cinema, showtime, owner).values())
    assert_error(cancel(cinema, reservation, owner, ["A2"]), 409, "already cancelled")
    assert_error(cancel(cinema, reservation, owner), 409, "already cancelled")


@pytest.mark.parametrize("how", ["post", "delete"])
def test_without_seats_every_seat_is_cancelled(cinema, how):
    reservation, owner, showtime = child_booking(cinema)
    cancel(cinema, reservation, owner, ["A2"])

    if how == "post":
        response = cancel(cinema, reservation, owner)
        assert response.status_code == 200 and response.json["cancelled_seats"] == ["A1", "A3"]
    else:
        assert cinema.client.delete(f"/reservations/{reservation['id']}", headers=owner).status_code == 200

    done = cinema.client.get(f"/reservations/{reservation['id']}", headers=owner).json
    assert done["status"] == "cancelled" and done["seats"] == ["A1", "A3"]
    assert all(line["cancelled_at"] for line in done["lines"])
    assert tickets_of(cinema, reservation, owner) == {}


def test_an_empty_post_body_cancels_everything(cinema):
    reservation, owner, _ = child_booking(cinema)

    response = cinema.client.post(f"/reservations/{reservation['id']}/cancel", headers=owner)

    assert response.status_code == 200, response.json
    assert response.json["reservation"]["status"] == "cancelled"


def test_cancelling_a_seat_twice_is_409_naming_it(cinema):
    reservation, owner, _ = child_booking(cinema)
    cancel(cinema, reservation, owner, ["A2"])

    body = assert_error(cancel(cinema, reservation, owner, ["A1", "A2"]), 409, "Seats A2 are already cancelled")

    assert body["errors"] == {"seats": ["A2"]}
    still = cinema.client.get(f"/reservations/{reservation['id']}", headers=owner).json
    assert still["seats"] == ["A1", "A3"] and still["total_price"] == 20.0  # nothing changed


def test_a_seat_the_reservation_never_had_is_400(cinema):
    reservation, owner, _ = child_booking(cinema)

    body = assert_error(cancel(cinema, reservation, owner, ["A1", "B7"]), 400, "has no seats B7")

    assert body["errors"] == {"seats": ["Not a seat of this reservation: B7"]}
    assert cinema.client.get(f"/reservations/{reservation['id']}", headers=owner).json["seats"] == ["A1", "A2", "A3"]


@pytest.mark.parametrize(
    "body",
    [
        {"seats": []},
        {"seats": ["A1", "a1"]},
        {"seats": ["not a seat"]},
        {"seats": "A1"},
        {"seats": [1]},
        {"seats": ["A1"] * 11},
        {"seats": ["A1"], "extra": True},
        {"seats": None},
    ],
)
def test_malformed_cancellations_are_400(cinema, body):
    reservation, owner, _ = child_booking(cinema)

    response = cinema.client.post(f"/reservations/{reservation['id']}/cancel", json=body, headers=owner)

    assert_error(response, 400)
    assert cinema.client.get(f"/reservations/{reservation['id']}", headers=owner).json["status"] == "confirmed"


def test_someone_elses_reservation_is_404(cinema):
    reservation, owner, _ = child_booking(cinema)

    assert_error(cancel(cinema, reservation, cinema.user(), ["A1"]), 404, "not found")
    assert_error(cinema.client.post("/reservations/999/cancel", json={}, headers=owner), 404)
    response = cancel(cinema, reservation, cinema.admin, ["A1"])
    assert response.status_code == 200 and response.json["cancelled_seats"] == ["A1"]


def test_the_cutoff_stops_owners_but_not_admins(cinema):
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=25)
    reservation, owner, _ = booked(cinema, seats=("A1", "A2"), start_time=start.isoformat())

    refused = assert_error(cancel(cinema, reservation, owner, ["A1"]), 409, "until 30 minutes before the start")
    assert (start - timedelta(minutes=30)).strftime("%H:%M") in refused["message"]
    assert_error(cinema.client.delete(f"/reservations/{reservation['id']}", headers=owner), 409, "30 minutes")
    assert cancel(cinema, reservation, cinema.admin, ["A1"]).status_code == 200
    assert cinema.client.delete(f"/reservations/{reservation['id']}", headers=cinema.admin).status_code == 200


def test_before_the_cutoff_owners_may_cancel(cinema):
    reservation, owner, _ = booked(cinema, start_time=soon(35))

    assert cancel(cinema, reservation, owner, ["A1"]).status_code == 200


def test_the_cutoff_follows_its_setting(tmp_path):
    cinema = Cinema(create_app(test_config(tmp_path, CANCELLATION_CUTOFF_MINUTES=0)).test_client())
    reservation, owner, _ = booked(cinema, start_time=soon(5))

    assert cancel(cinema, reservation, owner, ["A1"]).status_code == 200


@pytest.mark.parametrize("value", [-1, 10**6, "30"])
def test_a_bad_cutoff_setting_stops_the_start(tmp_path, value):
    with pytest.raises(RuntimeError, match="CANCELLATION_CUTOFF_MINUTES"):
        create_app(test_config(tmp_path, CANCELLATION_CUTOFF_MINUTES=value))


def test_no_one_cancels_once_the_showtime_started(cinema, monkeypatch):
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=45)
    reservation, owner, _ = booked(cinema, start_time=start.isoformat())
    monkeypatch.setattr("booking.utcnow", lambda: start)

    assert_error(cancel(cinema, reservation, cinema.admin, ["A1"]), 409, "has started")


def test_checked_in_seats_cannot_be_cancelled(cinema):
    reservation, owner, _ = booked(cinema, seats=("A1", "A2", "A3"), start_time=soon(45))
    check_in(cinema, tickets_of(cinema, reservation, owner)["A2"]["secret"])

    body = assert_error(cancel(cinema, reservation, cinema.admin, ["A1", "A2"]), 409, "Seats A2 are checked in")
    assert body["errors"] == {"seats": ["A2"]}
    assert_error(cancel(cinema, reservation, owner), 409, "A2")
    assert_error(cinema.client.delete(f"/reservations/{reservation['id']}", headers=owner), 409, "A2")
    # Nothing was given back, and A1's ticket still works.
    assert cinema.client.get(f"/reservations/{reservation['id']}", headers=owner).json["seats"] == ["A1", "A2", "A3"]
    assert check_in(cinema, tickets_of(cinema, reservation, owner)["A1"]["secret"]).status_code == 200
    assert cancel(cinema, reservation, owner, ["A3"]).status_code == 200


def test_a_retried_cancel_with_its_key_gets_the_first_answer(cinema):
    reservation, owner, _ = child_booking(cinema)
    headers = {**owner, "Idempotency-Key": "give-back-a2"}

    first = cancel(cinema, reservation, headers, ["A2"])
    again = cancel(cinema, reservation, headers, ["A2"])
    other = cancel(cinema, reservation, headers, ["A3"])

    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert_error(other, 422, "Idempotency-Key")
    assert cinema.client.get(f"/reservations/{reservation['id']}", headers=owner).json["seats"] == ["A1", "A3"]


def test_a_change_notice_goes_out_through_resend(tmp_path, resend_fake):
    app = create_app(test_config(tmp_path, RESEND_API_KEY="re_test", RESEND_API_URL=resend_fake.url))
    cinema = Cinema(app.test_client())
    reservation, owner, _ = child_booking(cinema)

    cancel(cinema, reservation, owner, ["A1"])
    cancel(cinema, reservation, owner, ["A3"])

    confirmation, first_change, second_change = resend_fake.requests
    assert first_change.json["subject"].startswith("Changed:")
    assert "Cancelled seats: A1" in first_change.json["text"]
    attached = [item["filename"] for item in second_change.json["attachments"]]
    assert attached == [f"reservation-{reservation['id']}.ics", "ticket-A2.png"]
    keys = {email.headers.get("Idempotency-Key") for email in (confirmation, first_change, second_change)}
    assert len(keys) == 3  # each change is an email of its own
    assert cinema.client.get(f"/reservations/{reservation['id']}", headers=owner).json["email_status"] == "sent"


def test_the_report_counts_only_the_seats_kept(cinema):
    reservation, owner, showtime = child_booking(cinema)

    cancel(cinema, reservation, owner, ["A3"])

    report = cinema.client.get("/admin/report", headers=cinema.admin).json
    (row,) = [row for row in report["showtimes"] if row["showtime_id"] == showtime["id"]]
    assert row["seats_booked"] == 2 and row["revenue"] == 16.0
    assert report["tickets_sold"] == 2 and report["total_reservations"] == 1


@pytest.mark.parametrize("seats", [["a2", "A1"], None])
def test_a_cancel_committed_but_never_answered_is_answered_the_same(cinema, monkeypatch, seats):
    """The worker died after the commit: the retry rebuilds the first answer, nothing runs twice."""
    import idempotency

    reservation, owner, _ = child_booking(cinema)
    headers = {**owner, "Idempotency-Key": "lost-answer"}
    monkeypatch.setattr(idempotency, "record_answer", lambda response: response)
    lost = cancel(cinema, reservation, headers, seats)
    monkeypatch.undo()

    retry = cancel(cinema, reservation, headers, seats)

    assert lost.status_code == retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json == lost.json
    assert lost.json["cancelled_seats"] == (["A1", "A2"] if seats else ["A1", "A2", "A3"])


def test_reissue_of_a_malformed_seat_is_404(cinema):
    reservation, owner, _ = booked(cinema)

    for seat in ("A%00", "%F0%9F%8E%9F", "A" * 300, "A0", "1A"):
        response = cinema.client.post(f"/reservations/{reservation['id']}/tickets/{seat}/reissue", headers=owner)
        assert_error(response, 404, "has no seat")
