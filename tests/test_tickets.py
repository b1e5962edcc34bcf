"""Booking references, tickets and their QR codes, reissues, door staff and the check-in."""

import base64
import hashlib
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

import tickets
from app import create_app
from conftest import Cinema, assert_error, test_config
from models import db

SECRET_RE = re.compile(r"^[A-Z2-7]{32}$")


def soon(minutes=30) -> str:
    """A start time ``minutes`` from now, as an aware ISO time."""
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).replace(microsecond=0).isoformat()


def set_clock(monkeypatch, moment: datetime):
    """The rules' clock (tickets and booking) reads ``moment``."""
    monkeypatch.setattr("tickets.utcnow", lambda: moment)
    monkeypatch.setattr("booking.utcnow", lambda: moment)


def booked(cinema, seats=("A1", "A2"), start_time=None, **movie):
    """A booking of a new showtime: (reservation, owner's headers, showtime)."""
    movie_id = cinema.movie(**movie)["id"] if movie else None
    showtime = cinema.showtime_with_seats(start_time=start_time, movie_id=movie_id)
    owner = cinema.user()
    response = cinema.book(owner, showtime["id"], list(seats))
    assert response.status_code == 201, response.json
    return response.json["reservation"], owner, showtime


def tickets_of(cinema, reservation, headers):
    response = cinema.client.get(f"/reservations/{reservation['id']}/tickets", headers=headers)
    assert response.status_code == 200, response.json
    return {ticket["seat"]: ticket for ticket in response.json["tickets"]}


def staff_member(cinema):
    user, headers = cinema.user_and_headers()
    response = cinema.client.post(f"/users/{user['id']}/role", json={"role": "staff"}, headers=cinema.admin)
    assert response.status_code == 200, response.json
    return headers


def check_in(cinema, secret, headers=None):
    return cinema.client.post("/check-ins", json={"secret": secret}, headers=headers or cinema.admin)


# ---- references -------------------------------------------------------------------


def test_every_reservation_has_a_unique_reference(cinema):
    showtime = cinema.showtime_with_seats()
    owner = cinema.user()
    first = cinema.book(owner, showtime["id"], ["A1"]).json["reservation"]
    second = cinema.book(owner, showtime["id"], ["A2"]).json["reservation"]

    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{8}", first["reference"])
    assert first["reference"] != second["reference"]
    detail = cinema.client.get(f"/reservations/{first['id']}", headers=owner).json
    listed = cinema.client.get("/reservations", headers=owner).json
    assert detail["reference"] == first["reference"]
    assert {r["reference"] for r in listed} == {first["reference"], second["reference"]}


def test_a_reference_is_found_in_any_case_with_confusable_letters(app, cinema):
    reservation, owner, _ = booked(cinema)
    with app.app_context():
        db.session.execute(text("UPDATE reservations SET reference = '10KM1Z0Q' WHERE id = :id"), {"id": reservation["id"]})
        db.session.commit()

    for typed in ("10KM1Z0Q", "lokm-iz0q", "IOkm lZoQ", "1okmLzOq"):
        found = cinema.client.get("/reservations", query_string={"reference": typed}, headers=owner)
        assert found.status_code == 200
        assert [r["id"] for r in found.json] == [reservation["id"]], typed
        assert found.json[0]["reference"] == "10KM1Z0Q"


def test_a_reference_is_found_for_its_owner_and_admins_only(cinema):
    reservation, owner, _ = booked(cinema)
    reference = reservation["reference"].lower()

    stranger = cinema.client.get("/reservations", query_string={"reference": reference}, headers=cinema.user())
    admin = cinema.client.get("/reservations", query_string={"reference": reference}, headers=cinema.admin)

    assert stranger.status_code == 200 and stranger.json == []
    assert stranger.headers["X-Total-Count"] == "0"
    assert [r["id"] for r in admin.json] == [reservation["id"]]


@pytest.mark.parametrize("typed", ["ABC", "UUUUUUUU", "7KQ3M9XD9", "!!!!!!!!", "7KQ3M9X\u00e9"])
def test_a_malformed_reference_is_400(cinema, typed):
    response = cinema.client.get("/reservations", query_string={"reference": typed}, headers=cinema.user())

    body = assert_error(response, 400, "booking reference")
    assert "reference" in body["errors"]


def test_a_reference_with_control_characters_is_400(cinema):
    response = cinema.client.get("/reservations", query_string={"reference": "7KQ3\nM9XD"}, headers=cinema.user())

    assert_error(response, 400)


# ---- tickets ----------------------------------------------------------------------


def test_each_seat_has_a_ticket_with_a_secret_and_a_qr_code(app, cinema):
    showtime = cinema.showtime_with_seats()
    owner = cinema.user()
    body = {"showtime_id": showtime["id"], "tickets": [{"seat": "A2", "ticket_type": "child"}, {"seat": "A1"}]}
    reservation = cinema.client.post("/reservations", json=body, headers=owner).json["reservation"]

    response = cinema.client.get(f"/reservations/{reservation['id']}/tickets", headers=owner)

    assert response.status_code == 200
    assert response.json["reservation_id"] == reservation["id"]
    assert response.json["reference"] == reservation["reference"]
    found = response.json["tickets"]
    assert [(t["seat"], t["ticket_type"], t["seat_type"]) for t in found] == [
        ("A1", "adult", "standard"),
        ("A2", "child", "standard"),
    ]
    secrets = [ticket["secret"] for ticket in found]
    assert all(SECRET_RE.match(secret) for secret in secrets) and len(set(secrets)) == 2
    for ticket in found:
        assert ticket["qr_svg"].startswith("<svg") and ticket["qr_svg"].endswith("</svg>")
        assert ticket["checked_in_at"] is None
        with app.app_context():
            assert ticket["qr_svg"] == tickets.qr_svg(ticket["secret"])


def test_the_database_keeps_no_secret_only_its_hash(app, cinema):
    reservation, owner, _ = booked(cinema)
    secrets = [ticket["secret"] for ticket in tickets_of(cinema, reservation, owner).values()]

    with app.app_context():
        rows = db.session.execute(text("SELECT nonce, secret_hash FROM tickets")).all()
    stored = " ".join(value for row in rows for value in row)

    assert len(rows) == 2
    assert not any(secret in stored or secret.lower() in stored for secret in secrets)
    assert {row.secret_hash for row in rows} == {hashlib.sha256(s.encode()).hexdigest() for s in secrets}


def test_another_ticket_key_makes_other_secrets(tmp_path, cinema):
    """The secrets depend on the server's key: a database dump alone cannot make them."""
    reservation, owner, _ = booked(cinema)
    secrets = {ticket["secret"] for ticket in tickets_of(cinema, reservation, owner).values()}
    other = create_app(test_config(tmp_path, TICKET_SECRET_KEY="another-ticket-key-of-at-least-32-bytes"))

    shown = other.test_client().get(f"/reservations/{reservation['id']}/tickets", headers=owner).json["tickets"]

    assert {ticket["secret"] for ticket in shown}.isdisjoint(secrets)


def test_a_short_ticket_key_stops_the_start(tmp_path):
    with pytest.raises(RuntimeError, match="TICKET_SECRET_KEY"):
        create_app(test_config(tmp_path, TICKET_SECRET_KEY="short"))


def test_tickets_of_someone_elses_reservation_are_404(cinema):
    reservation, _, _ = booked(cinema)

    for headers in (cinema.user(), staff_member(cinema)):
        response = cinema.client.get(f"/reservations/{reservation['id']}/tickets", headers=headers)
        assert_error(response, 404, f"Reservation {reservation['id']} not found")
    assert len(tickets_of(cinema, reservation, cinema.admin)) == 2


def test_a_cancelled_reservation_has_no_tickets(cinema):
    reservation, owner, _ = booked(cinema)
    cinema.client.delete(f"/reservations/{reservation['id']}", headers=owner)

    assert tickets_of(cinema, reservation, owner) == {}


def test_the_confirmation_email_carries_a_qr_code_per_seat(tmp_path, resend_fake):
    app = create_app(test_config(tmp_path, RESEND_API_KEY="re_test", RESEND_API_URL=resend_fake.url))
    cinema = Cinema(app.test_client())
    reservation, owner, _ = booked(cinema)

    (email,) = resend_fake.requests
    attachments = {item["filename"]: item for item in email.json["attachments"]}
    assert set(attachments) == {f"reservation-{reservation['id']}.ics", "ticket-A1.png", "ticket-A2.png"}
    expected = tickets_of(cinema, reservation, owner)
    with app.app_context():
        for seat in ("A1", "A2"):
            png = base64.b64decode(attachments[f"ticket-{seat}.png"]["content"])
            assert png.startswith(b"\x89PNG") and attachments[f"ticket-{seat}.png"]["content_type"] == "image/png"
            assert png == tickets.qr_png(expected[seat]["secret"])
    assert reservation["reference"] in email.json["text"]
    assert not any(ticket["secret"] in email.json["text"] for ticket in expected.values())


# ---- reissue ----------------------------------------------------------------------


def test_a_reissue_gives_a_new_secret_and_voids_the_old_one(cinema):
    reservation, owner, _ = booked(cinema, start_time=soon(30))
    old = tickets_of(cinema, reservation, owner)["A1"]["secret"]

    response = cinema.client.post(f"/reservations/{reservation['id']}/tickets/a1/reissue", headers=owner)

    assert response.status_code == 200, response.json
    new = response.json["ticket"]
    assert new["seat"] == "A1" and SECRET_RE.match(new["secret"]) and new["secret"] != old
    assert new["qr_svg"].startswith("<svg")
    assert tickets_of(cinema, reservation, owner)["A1"]["secret"] == new["secret"]
    assert_error(check_in(cinema, old), 409, "voided")
    assert check_in(cinema, new["secret"]).status_code == 200


def test_reissue_failures(cinema):
    reservation, owner, _ = booked(cinema, seats=("A1", "A2", "A3"), start_time=soon(45))
    url = f"/reservations/{reservation['id']}/tickets"
    cancelled = cinema.client.post(f"/reservations/{reservation['id']}/cancel", json={"seats": ["A3"]}, headers=owner)
    assert cancelled.status_code == 200, cancelled.json
    check_in(cinema, tickets_of(cinema, reservation, owner)["A2"]["secret"])

    assert_error(cinema.client.post(f"{url}/B9/reissue", headers=owner), 404, "no seat B9")
    assert_error(cinema.client.post(f"{url}/A1/reissue", headers=cinema.user()), 404, "not found")
    assert_error(cinema.client.post(f"{url}/A3/reissue", headers=owner), 409, "cancelled")
    assert_error(cinema.client.post(f"{url}/A2/reissue", headers=owner), 409, "checked in")
    assert cinema.client.post(f"{url}/A1/reissue", headers=cinema.admin).status_code == 200


def test_no_reissue_once_the_film_is_over(cinema, monkeypatch):
    reservation, owner, showtime = booked(cinema, start_time=soon(30), duration_minutes=90)
    set_clock(monkeypatch, datetime.now(timezone.utc) + timedelta(minutes=121))

    response = cinema.client.post(f"/reservations/{reservation['id']}/tickets/A1/reissue", headers=owner)

    assert_error(response, 409, "ended")


# ---- roles ------------------------------------------------------------------------


def test_admins_grant_and_take_back_the_staff_role(cinema):
    user, headers = cinema.user_and_headers()
    url = f"/users/{user['id']}/role"

    granted = cinema.client.post(url, json={"role": "staff"}, headers=cinema.admin)
    assert granted.status_code == 200
    assert granted.json["user"]["role"] == "staff" and granted.json["user"]["is_admin"] is False
    assert cinema.client.get("/me", headers=headers).json["role"] == "staff"
    assert cinema.client.post("/login", json={"username": user["username"], "password": "password123"}).json["user"]["role"] == "staff"
    assert cinema.client.post(url, json={"role": "staff"}, headers=cinema.admin).status_code == 200  # idempotent

    taken = cinema.client.post(url, json={"role": "user"}, headers=cinema.admin)
    assert taken.json["user"]["role"] == "user"
    assert_error(check_in(cinema, "A" * 32, headers), 403, "Door staff")


def test_the_admin_role_and_the_old_promote_endpoint(cinema):
    user, headers = cinema.user_and_headers()
    other, _ = cinema.user_and_headers()

    made = cinema.client.post(f"/users/{user['id']}/role", json={"role": "admin"}, headers=cinema.admin)
    promoted = cinema.client.post(f"/users/promote/{other['id']}", headers=cinema.admin)

    assert made.json["user"]["role"] == "admin" and made.json["user"]["is_admin"] is True
    assert promoted.json["user"]["role"] == "admin"
    assert cinema.client.get("/users", headers=headers).status_code == 200


def test_role_changes_refused(cinema):
    user, headers = cinema.user_and_headers()
    me = cinema.client.get("/me", headers=cinema.admin).json
    staff = staff_member(cinema)

    assert_error(cinema.client.post(f"/users/{user['id']}/role", json={"role": "staff"}, headers=headers), 403)
    assert_error(cinema.client.post(f"/users/{user['id']}/role", json={"role": "staff"}, headers=staff), 403)
    assert_error(cinema.client.post(f"/users/{me['id']}/role", json={"role": "user"}, headers=cinema.admin), 409, "own role")
    assert_error(cinema.client.post("/users/9999/role", json={"role": "staff"}, headers=cinema.admin), 404)
    for bad in ({"role": "owner"}, {"role": "Staff"}, {"role": 1}, {}, {"role": "staff\u2028"}):
        response = cinema.client.post(f"/users/{user['id']}/role", json=bad, headers=cinema.admin)
        assert "role" in assert_error(response, 400)["errors"], bad
    assert_error(cinema.client.post(f"/users/{user['id']}/role", json={"role": "staff\u0000"}, headers=cinema.admin), 400)
    assert cinema.client.get("/me", headers=headers).json["role"] == "user"


def test_staff_check_in_and_do_nothing_else_of_an_admins(cinema):
    reservation, owner, showtime = booked(cinema, start_time=soon(30))
    staff = staff_member(cinema)
    secret = tickets_of(cinema, reservation, owner)["A1"]["secret"]

    assert check_in(cinema, secret, staff).status_code == 200
    assert_error(cinema.client.get("/users", headers=staff), 403)
    assert_error(cinema.client.post("/movies", json={"title": "X", "genre": "Y"}, headers=staff), 403)
    assert_error(cinema.client.get("/admin/report", headers=staff), 403)
    assert_error(cinema.client.get("/reservations?all=true", headers=staff), 403)
    assert_error(cinema.client.get(f"/reservations/{reservation['id']}", headers=staff), 404)
    assert_error(cinema.client.delete(f"/reservations/{reservation['id']}", headers=staff), 404)


def test_plain_users_cannot_check_in(cinema):
    reservation, owner, _ = booked(cinema, start_time=soon(30))
    secret = tickets_of(cinema, reservation, owner)["A1"]["secret"]

    assert_error(check_in(cinema, secret, owner), 403, "Door staff and admins only")
    assert tickets_of(cinema, reservation, owner)["A1"]["checked_in_at"] is None


# ---- check-in ---------------------------------------------------------------------


def test_the_first_check_in_admits_and_shows_the_seat(cinema):
    reservation, owner, showtime = booked(cinema, start_time=soon(30), title="Dune")
    ticket = tickets_of(cinema, reservation, owner)["A2"]

    response = check_in(cinema, ticket["secret"].lower())

    assert response.status_code == 200, response.json
    admitted = response.json["ticket"]
    assert (admitted["seat"], admitted["ticket_type"], admitted["seat_type"]) == ("A2", "adult", "standard")
    assert admitted["showtime_id"] == showtime["id"] and admitted["movie_title"] == "Dune"
    assert admitted["reservation_id"] == reservation["id"] and admitted["reference"] == reservation["reference"]
    assert admitted["start_time"] == showtime["start_time"]
    assert tickets_of(cinema, reservation, owner)["A2"]["checked_in_at"] == admitted["checked_in_at"]


def test_the_second_check_in_says_when_in_cinema_time(tmp_path, monkeypatch):
    app = create_app(test_config(tmp_path, CINEMA_TIMEZONE="America/New_York"))
    cinema = Cinema(app.test_client())
    reservation, owner, _ = booked(cinema, start_time=soon(30))
    secret = tickets_of(cinema, reservation, owner)["A1"]["secret"]
    moment = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    set_clock(monkeypatch, moment)
    check_in(cinema, secret)

    again = check_in(cinema, secret)

    local = moment.astimezone(app.config["CINEMA_TZ"]).strftime("%H:%M")
    assert local != moment.strftime("%H:%M")
    assert_error(again, 409, f"Seat A1: already checked in at {local}.")


def test_check_in_opens_before_the_start(cinema, monkeypatch):
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=5)
    reservation, owner, _ = booked(cinema, start_time=start.isoformat())
    secret = tickets_of(cinema, reservation, owner)["A1"]["secret"]

    assert_error(check_in(cinema, secret), 409, f"opens at {(start - timedelta(minutes=60)).strftime('%H:%M')}")
    set_clock(monkeypatch, start - timedelta(minutes=61))
    assert_error(check_in(cinema, secret), 409, "opens at")
    set_clock(monkeypatch, start - timedelta(minutes=60))
    assert check_in(cinema, secret).status_code == 200


def test_check_in_opening_follows_its_setting(tmp_path):
    cinema = Cinema(create_app(test_config(tmp_path, CHECK_IN_OPENS_MINUTES=10)).test_client())
    reservation, owner, _ = booked(cinema, start_time=soon(30))

    assert_error(check_in(cinema, tickets_of(cinema, reservation, owner)["A1"]["secret"]), 409, "opens at")


def test_no_check_in_once_the_film_is_over(cinema, monkeypatch):
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=30)
    reservation, owner, _ = booked(cinema, start_time=start.isoformat(), duration_minutes=100)
    secret = tickets_of(cinema, reservation, owner)["A1"]["secret"]

    set_clock(monkeypatch, start + timedelta(minutes=100))
    assert_error(check_in(cinema, secret), 409, "ended")
    set_clock(monkeypatch, start + timedelta(minutes=99))
    assert check_in(cinema, secret).status_code == 200


def test_cancelled_tickets_are_refused_at_the_door(cinema):
    reservation, owner, _ = booked(cinema, seats=("A1", "A2", "A3"), start_time=soon(40))
    found = tickets_of(cinema, reservation, owner)
    cinema.client.post(f"/reservations/{reservation['id']}/cancel", json={"seats": ["A1"]}, headers=owner)

    assert_error(check_in(cinema, found["A1"]["secret"]), 409, "Seat A1's booking was cancelled")
    cinema.client.delete(f"/reservations/{reservation['id']}", headers=cinema.admin)
    assert_error(check_in(cinema, found["A2"]["secret"]), 409, "cancelled")


@pytest.mark.parametrize(
    "secret", ["A" * 32, "a" * 32, " ", "x", "A" * 64, "AAAA-" * 6, "1" * 32, "\u00c4" * 32]
)
def test_unknown_secrets_are_404_with_one_message(cinema, secret):
    booked(cinema, start_time=soon(30))

    body = assert_error(check_in(cinema, secret), 404)
    assert body["message"] == "Unknown ticket."


@pytest.mark.parametrize("body", [{}, {"secret": ""}, {"secret": 12}, {"secret": None}, {"secret": "A" * 65}, {"secret": "A\nB"}, []])
def test_malformed_check_ins_are_400(cinema, body):
    assert_error(cinema.client.post("/check-ins", json=body, headers=cinema.admin), 400)


def test_unknown_secrets_are_rate_limited_and_good_scans_are_not(tmp_path):
    app = create_app(test_config(tmp_path, RATELIMIT_ENABLED=True, CHECK_IN_RATE_LIMIT="2 per minute"))
    cinema = Cinema(app.test_client())
    reservation, owner, _ = booked(cinema, seats=("A1", "A2", "A3"), start_time=soon(30))
    found = tickets_of(cinema, reservation, owner)

    for seat in ("A1", "A2", "A3"):
        assert check_in(cinema, found[seat]["secret"]).status_code == 200
    assert check_in(cinema, found["A1"]["secret"]).status_code == 409
    assert check_in(cinema, "B" * 32).status_code == 404
    assert check_in(cinema, "C" * 32).status_code == 404
    limited = check_in(cinema, found["A1"]["secret"])

    assert_error(limited, 429)
    assert int(limited.headers["Retry-After"]) > 0
