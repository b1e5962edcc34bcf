"""Booking emails through the real Resend SDK, against a local fake of the API."""

import base64
import logging
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from conftest import Cinema, future, test_config
from fakes import FakeResend, closed_port_url
from models import Reservation, Showtime, db, utcnow

from app import create_app

API_KEY = "re_test_123"


@pytest.fixture
def app(tmp_path, resend_fake):
    return create_app(
        test_config(
            tmp_path,
            RESEND_API_KEY=API_KEY,
            RESEND_API_URL=resend_fake.url,
            RESEND_FROM="Test Cinema <tickets@cinema.example>",
            EMAIL_TIMEOUT=0.5,
            CINEMA_TIMEZONE="Europe/Berlin",
        )
    )


def book(cinema, title="Arrival", seats=("A2", "A1"), **movie_fields):
    movie = cinema.movie(title=title, **movie_fields)
    showtime = cinema.showtime_with_seats(movie_id=movie["id"], start_time=future(hour=18, minute=30), price=12.5)
    user, headers = cinema.user_and_headers("john_doe")
    response = cinema.book(headers, showtime["id"], list(seats))
    assert response.status_code == 201, response.json
    return response.json["reservation"], headers, showtime


def attachment_text(email) -> str:
    """The calendar file: the first attachment (the tickets' QR codes follow it)."""
    attachment = email.json["attachments"][0]
    assert attachment["filename"].endswith(".ics")
    return base64.b64decode(attachment["content"]).decode()


def email_status(cinema, reservation_id, headers):
    return cinema.client.get(f"/reservations/{reservation_id}", headers=headers).json["email_status"]


def send_pending(app):
    return app.test_cli_runner().invoke(args=["send-pending-emails"])


def test_confirmation_goes_through_resend(cinema, resend_fake):
    reservation, headers, showtime = book(cinema)

    assert reservation["email_status"] == "sent"
    assert email_status(cinema, reservation["id"], headers) == "sent"
    (email,) = resend_fake.requests
    assert email.path == "/emails"
    assert email.headers["Authorization"] == f"Bearer {API_KEY}"
    assert email.json["from"] == "Test Cinema <tickets@cinema.example>"
    assert email.json["to"] == ["john_doe@example.com"]
    local_start = showtime["start_time"][:10] + " 18:30"  # cinema local time, not UTC
    assert email.json["subject"] == f"Your tickets for Arrival on {local_start}"
    for body in (email.json["text"], email.json["html"]):
        assert "Hello john_doe," in body
        assert "Arrival" in body
        assert local_start in body
        assert "A1, A2" in body
        assert "$25.00" in body
        assert f"#{reservation['id']}" in body
    assert "<table>" in email.json["html"]


def test_calendar_attachment(cinema, resend_fake):
    reservation, _, showtime = book(cinema, duration_minutes=116)

    ics = attachment_text(resend_fake.requests[0])
    start = datetime.fromisoformat(showtime["start_time"]).astimezone(timezone.utc)
    lines = ics.split("\r\n")
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR" and lines[-1] == ""
    assert f"DTSTART:{start:%Y%m%dT%H%M%SZ}" in lines
    assert f"DTEND:{start + timedelta(minutes=116):%Y%m%dT%H%M%SZ}" in lines
    assert "SUMMARY:Arrival" in lines
    assert "LOCATION:Main" in lines
    assert f"UID:reservation-{reservation['id']}@cinema-booking" in lines
    assert "STATUS:CONFIRMED" in lines
    assert any(line.startswith("DESCRIPTION:Seats A1\\, A2") for line in lines)


def test_calendar_escapes_and_folds_long_titles(cinema, resend_fake):
    title = "Crouching Tiger, Hidden Dragon; the long director's cut of a much longer title é"
    book(cinema, title=title)

    ics = attachment_text(resend_fake.requests[0])
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n"))
    unfolded = ics.replace("\r\n ", "")
    assert "SUMMARY:Crouching Tiger\\, Hidden Dragon\\; the long director's cut" in unfolded


def test_html_escapes_what_users_typed(cinema, resend_fake):
    book(cinema, title="<script>alert(1)</script>")

    email = resend_fake.requests[0]
    assert "<script>" not in email.json["html"]
    assert "&lt;script&gt;" in email.json["html"]
    assert "<script>alert(1)</script>" in email.json["text"]


def test_idempotency_key_comes_from_the_reservation(cinema, resend_fake):
    first, _, _ = book(cinema)
    second = cinema.book(cinema.user(), first["showtime_id"], ["B1"]).json["reservation"]

    keys = [email.headers["Idempotency-Key"] for email in resend_fake.requests]
    assert keys[0].startswith(f"booking-confirmation/{first['id']}-")
    assert keys[1].startswith(f"booking-confirmation/{second['id']}-")
    assert keys[0] != keys[1]


@pytest.mark.parametrize("failure", [500, 422, "hang", "refused"])
def test_email_failure_keeps_the_booking_and_is_retried(app, cinema, resend_fake, caplog, failure):
    if failure == "refused":
        app.config["RESEND_API_URL"] = closed_port_url()
    else:
        resend_fake.mode = failure

    with caplog.at_level(logging.WARNING, logger="cinema.emails"):
        reservation, headers, _ = book(cinema)

    assert reservation["status"] == "confirmed"
    assert reservation["email_status"] == "failed"
    assert email_status(cinema, reservation["id"], headers) == "failed"
    assert f"reservation {reservation['id']} failed" in caplog.text
    assert resend_fake.delivered == []

    resend_fake.mode = "ok"
    app.config["RESEND_API_URL"] = resend_fake.url
    result = send_pending(app)

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 of 1 failed emails sent."
    assert email_status(cinema, reservation["id"], headers) == "sent"
    (email,) = resend_fake.delivered
    assert email.json["to"] == ["john_doe@example.com"]
    assert email.headers["Idempotency-Key"].startswith(f"booking-confirmation/{reservation['id']}-")
    assert send_pending(app).output.strip() == "0 of 0 failed emails sent."


def test_a_retry_never_sends_twice(app, cinema, resend_fake):
    """Resend got the first request but the answer was lost: the retry is the same request."""
    reservation, headers, _ = book(cinema)
    with app.app_context():
        db.session.get(Reservation, reservation["id"]).email_status = "failed"
        db.session.commit()

    assert send_pending(app).output.strip() == "1 of 1 failed emails sent."

    first, retry = resend_fake.requests
    assert retry.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]
    assert retry.json == first.json  # same key, same body: Resend replays its answer
    assert len(resend_fake.delivered) == 1


def test_send_pending_reports_emails_that_still_fail(app, cinema, resend_fake):
    resend_fake.mode = 500
    book(cinema)
    cinema.book(cinema.user(), cinema.client.get("/showtimes", headers=cinema.admin).json[0]["id"], ["B1"])

    result = send_pending(app)

    assert result.exit_code == 1
    assert result.output.strip() == "0 of 2 failed emails sent."


def test_cancellation_email(cinema, resend_fake):
    reservation, headers, _ = book(cinema)

    response = cinema.client.delete(f"/reservations/{reservation['id']}", headers=headers)

    assert response.status_code == 200
    confirmation, cancellation = resend_fake.delivered
    assert cancellation.json["to"] == ["john_doe@example.com"]
    assert cancellation.json["subject"].startswith("Cancelled: Arrival on ")
    assert "cancelled" in cancellation.json["text"]
    assert "A1, A2" in cancellation.json["html"]
    assert cancellation.headers["Idempotency-Key"].startswith(f"booking-cancellation/{reservation['id']}-")
    ics = attachment_text(cancellation)
    assert "STATUS:CANCELLED" in ics and "SEQUENCE:1" in ics
    assert f"UID:reservation-{reservation['id']}@cinema-booking" in ics  # replaces the booked event
    assert email_status(cinema, reservation["id"], headers) == "sent"


def test_failed_cancellation_email_is_retried_as_a_cancellation(app, cinema, resend_fake):
    reservation, headers, _ = book(cinema)
    resend_fake.mode = 422

    response = cinema.client.delete(f"/reservations/{reservation['id']}", headers=headers)

    assert response.status_code == 200
    assert email_status(cinema, reservation["id"], headers) == "failed"
    resend_fake.mode = "ok"
    assert send_pending(app).output.strip() == "1 of 1 failed emails sent."
    retried = resend_fake.delivered[-1]
    assert retried.json["subject"].startswith("Cancelled:")
    assert len(resend_fake.delivered) == 2


def test_without_an_api_key_emails_go_to_the_log(tmp_path, caplog):
    client = create_app(test_config(tmp_path)).test_client()
    cinema = Cinema(client)

    with caplog.at_level(logging.INFO, logger="cinema.emails"):
        reservation, headers, _ = book(cinema)
        client.delete(f"/reservations/{reservation['id']}", headers=headers)

    assert reservation["email_status"] == "logged"
    assert email_status(cinema, reservation["id"], headers) == "logged"
    assert f"Booking confirmation for reservation {reservation['id']} to john_doe@example.com" in caplog.text
    assert f"Booking cancellation for reservation {reservation['id']}" in caplog.text
    assert "Seats: A1, A2" in caplog.text


def test_send_pending_without_an_api_key_logs_them(tmp_path):
    app = create_app(test_config(tmp_path))
    cinema = Cinema(app.test_client())
    reservation, headers, _ = book(cinema)
    with app.app_context():
        db.session.get(Reservation, reservation["id"]).email_status = "failed"
        db.session.commit()

    assert send_pending(app).output.strip() == "1 of 1 failed emails sent."
    assert email_status(cinema, reservation["id"], headers) == "logged"


def test_a_retried_cancellation_repeats_the_same_request(app, cinema, resend_fake):
    reservation, headers, _ = book(cinema)
    resend_fake.mode = 422
    cinema.client.delete(f"/reservations/{reservation['id']}", headers=headers)
    resend_fake.mode = "ok"

    assert send_pending(app).exit_code == 0

    key = f"booking-cancellation/{reservation['id']}-"
    first, retry = [r for r in resend_fake.requests if r.headers.get("Idempotency-Key", "").startswith(key)]
    assert retry.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]
    assert retry.json == first.json  # the .ics included: a key must always mean one email


def test_no_transaction_is_open_while_resend_answers(cinema, monkeypatch):
    import emails

    open_during_send = []
    send = emails.send_with_resend

    def watched(message, config):
        open_during_send.append(db.session().in_transaction())
        return send(message, config)

    monkeypatch.setattr(emails, "send_with_resend", watched)
    reservation, headers, _ = book(cinema)
    cinema.client.delete(f"/reservations/{reservation['id']}", headers=headers)

    assert open_during_send == [False, False]  # the confirmation, then the cancellation


def store_before_the_rules(app, showtime_id, title, hall):
    """Text stored before control characters were refused, written straight to the database."""
    with app.app_context():
        showtime = db.session.get(Showtime, showtime_id)
        showtime.movie.title, showtime.hall = title, hall
        db.session.commit()


def test_line_breaks_stored_in_a_title_reach_neither_the_subject_nor_the_calendar(app, cinema, resend_fake):
    showtime = cinema.showtime_with_seats()
    store_before_the_rules(app, showtime["id"], "Heat\r\nBcc: evil@example.com", "Main\rHall")

    assert cinema.book(cinema.user("john_doe"), showtime["id"], ["A1"]).status_code == 201

    (email,) = resend_fake.requests
    subject = email.json["subject"]
    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith("Your tickets for Heat Bcc: evil@example.com on ")
    ics = attachment_text(email)
    assert re.search("\r(?!\n)", ics) is None  # no bare CR: every line ends with CRLF
    lines = ics.split("\r\n")
    assert "SUMMARY:Heat\\nBcc: evil@example.com" in lines
    assert "LOCATION:MainHall" in lines


def test_line_breaks_stored_in_a_title_never_start_a_log_line(tmp_path, caplog):
    app = create_app(test_config(tmp_path))
    cinema = Cinema(app.test_client())
    showtime = cinema.showtime_with_seats()
    store_before_the_rules(app, showtime["id"], "Heat\n2030-01-01 ERROR cinema: forged", "Main\u2028Hall")

    with caplog.at_level(logging.INFO, logger="cinema.emails"):
        assert cinema.book(cinema.user("john_doe"), showtime["id"], ["A1"]).status_code == 201

    assert "Movie: Heat 2030-01-01 ERROR cinema: forged" in caplog.text
    assert "(Main Hall)" in caplog.text
    assert not any(line.startswith("2030-01-01") for line in caplog.text.splitlines())


# ---- emails whose sender stopped (a worker killed between the commit and the send) ----


def book_without_email(cinema, monkeypatch):
    """A booking committed by a worker that stopped before its email: still ``pending``."""
    with monkeypatch.context() as patch:
        patch.setattr("app.send_booking_confirmation", lambda reservation: None)
        reservation, headers, _ = book(cinema)
    assert reservation["email_status"] == "pending"
    return reservation, headers


def pending_since(app, reservation_id, minutes):
    """Make the reservation's email look pending for ``minutes`` already."""
    with app.app_context():
        db.session.execute(
            update(Reservation)
            .where(Reservation.id == reservation_id)
            .values(updated_at=utcnow() - timedelta(minutes=minutes))
        )
        db.session.commit()


def test_an_email_pending_for_long_is_sent(app, cinema, resend_fake, monkeypatch):
    reservation, headers = book_without_email(cinema, monkeypatch)
    pending_since(app, reservation["id"], minutes=11)

    result = send_pending(app)

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 of 1 failed emails sent."
    assert email_status(cinema, reservation["id"], headers) == "sent"
    (email,) = resend_fake.delivered
    assert email.headers["Idempotency-Key"].startswith(f"booking-confirmation/{reservation['id']}-")
    assert send_pending(app).output.strip() == "0 of 0 failed emails sent."


@pytest.mark.parametrize("minutes, setting", [(0, None), (9, None), (11, 30)])
def test_an_email_that_may_be_in_flight_is_left_alone(app, cinema, resend_fake, monkeypatch, minutes, setting):
    """Younger than EMAIL_PENDING_AFTER_MINUTES (default 10), its sender may be at it now."""
    if setting:
        app.config["EMAIL_PENDING_AFTER_MINUTES"] = setting
    reservation, headers = book_without_email(cinema, monkeypatch)
    pending_since(app, reservation["id"], minutes)

    assert send_pending(app).output.strip() == "0 of 0 failed emails sent."
    assert email_status(cinema, reservation["id"], headers) == "pending"
    assert resend_fake.requests == []


class SlowResend(FakeResend):
    """Holds every email until ``release`` is set; ``received`` tells that one came in."""

    def __init__(self):
        super().__init__()
        self.received, self.release = threading.Event(), threading.Event()

    def answer(self, recorded):
        self.received.set()
        self.release.wait(timeout=15)
        return super().answer(recorded)


@pytest.mark.parametrize("email", ["failed", "pending for long"])
def test_two_runs_at_once_send_an_email_once(tmp_path, monkeypatch, email):
    """A cron run that starts while another one still waits for Resend leaves its emails alone."""
    slow = SlowResend()
    try:
        app = create_app(test_config(tmp_path, RESEND_API_KEY=API_KEY, RESEND_API_URL=slow.url, EMAIL_TIMEOUT=15))
        cinema = Cinema(app.test_client())
        reservation, headers = book_without_email(cinema, monkeypatch)
        pending_since(app, reservation["id"], minutes=11)
        if email == "failed":
            with app.app_context():
                db.session.get(Reservation, reservation["id"]).email_status = "failed"
                db.session.commit()
        first = []
        running = threading.Thread(target=lambda: first.append(send_pending(app)))
        running.start()
        slow.received.wait(timeout=15)  # the first run is waiting for Resend

        second = send_pending(app)
        slow.release.set()
        running.join(timeout=30)

        assert second.output.strip() == "0 of 0 failed emails sent."
        assert first[0].output.strip() == "1 of 1 failed emails sent."
        assert len(slow.requests) == 1
        assert email_status(cinema, reservation["id"], headers) == "sent"
    finally:
        slow.release.set()
        slow.stop()
