"""Reservations: booking seats all-or-nothing, listing, reading and cancelling."""

from datetime import datetime, timedelta, timezone

from conftest import assert_error
from models import Reservation, Showtime, db

RESERVATION_KEYS = {
    "id",
    "showtime_id",
    "user_id",
    "seats",
    "total_price",
    "status",
    "created_at",
    "movie_title",
    "start_time",
}


def seat_statuses(cinema, showtime_id, headers=None):
    response = cinema.client.get(f"/showtimes/{showtime_id}/seats", headers=headers or cinema.admin)
    assert response.status_code == 200, response.get_json()
    return {seat["label"]: seat["status"] for row in response.json["rows"] for seat in row["seats"]}


def reservation_ids(response):
    assert response.status_code == 200, response.get_json()
    return [reservation["id"] for reservation in response.json]


def start_showtime(app, showtime_id):
    """Make a showtime look like it began an hour ago, straight in the database."""
    with app.app_context():
        showtime = db.session.get(Showtime, showtime_id)
        showtime.start_time = datetime.now(timezone.utc) - timedelta(hours=1)
        showtime.end_time = showtime.start_time + timedelta(hours=3)
        db.session.commit()


def age_reservation(app, reservation_id, **delta):
    """Pretend a reservation was made some time ago."""
    with app.app_context():
        reservation = db.session.get(Reservation, reservation_id)
        reservation.created_at = datetime.now(timezone.utc) - timedelta(**delta)
        db.session.commit()


# ---- POST /reservations -------------------------------------------------------------


def test_booking_returns_the_reservation(cinema):
    movie = cinema.movie(title="Arrival")
    showtime = cinema.showtime_with_seats(movie_id=movie["id"], price=12.5)
    user, headers = cinema.user_and_headers()

    response = cinema.book(headers, showtime["id"], ["A1", "A2"])
    assert response.status_code == 201, response.json
    assert set(response.json) == {"message", "reservation"}
    assert response.json["message"] == "Reservation confirmed"
    reservation = response.json["reservation"]
    assert RESERVATION_KEYS <= set(reservation)
    assert isinstance(reservation["id"], int)
    assert reservation["showtime_id"] == showtime["id"]
    assert reservation["user_id"] == user["id"]
    assert sorted(reservation["seats"]) == ["A1", "A2"]
    assert reservation["total_price"] == 25
    assert reservation["status"] == "confirmed"
    assert reservation["movie_title"] == "Arrival"
    assert reservation["start_time"] == showtime["start_time"]
    created_at = datetime.fromisoformat(reservation["created_at"])
    assert created_at.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - created_at) < timedelta(minutes=1)
    assert reservation["email_status"] == "logged"

    location = response.headers["Location"]
    assert location.endswith(f"/reservations/{reservation['id']}")
    fetched = cinema.client.get(location, headers=headers)
    assert fetched.status_code == 200
    assert fetched.json["id"] == reservation["id"]
    assert fetched.json["status"] == "confirmed"
    assert fetched.json["email_status"] == "logged"

    statuses = seat_statuses(cinema, showtime["id"], headers)
    assert statuses["A1"] == statuses["A2"] == "yours"
    assert statuses["A3"] == "available"


def test_total_uses_the_showtime_price(cinema):
    default_price = cinema.showtime_with_seats(hall="Main")
    custom_price = cinema.showtime_with_seats(hall="Hall 2", price=7.25)
    user = cinema.user()
    response = cinema.book(user, default_price["id"], ["A1", "A2", "A3"])
    assert response.json["reservation"]["total_price"] == 30
    response = cinema.book(user, custom_price["id"], ["B1", "B2"])
    assert response.json["reservation"]["total_price"] == 14.5


def test_lower_case_labels_are_accepted(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    response = cinema.book(user, showtime["id"], ["b2", "a1"])
    assert response.status_code == 201, response.json
    assert sorted(response.json["reservation"]["seats"]) == ["A1", "B2"]
    statuses = seat_statuses(cinema, showtime["id"], user)
    assert statuses["A1"] == statuses["B2"] == "yours"


def test_booking_is_all_or_nothing(cinema):
    showtime = cinema.showtime_with_seats()
    first = cinema.user("first")
    second = cinema.user("second")
    assert cinema.book(first, showtime["id"], ["A2"]).status_code == 201

    response = cinema.book(second, showtime["id"], ["A1", "A2"])
    body = assert_error(response, 409)
    assert "A2" in body["message"]
    assert body["errors"]["seats"] == ["A2"]

    statuses = seat_statuses(cinema, showtime["id"], second)
    assert statuses["A1"] == "available"
    assert statuses["A2"] == "booked"
    mine = cinema.client.get("/reservations", headers=second)
    assert mine.json == []
    assert mine.headers["X-Total-Count"] == "0"
    assert cinema.client.get(f"/showtimes/{showtime['id']}", headers=second).json["seats_available"] == 19


def test_booking_your_own_seat_again_is_409(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    assert cinema.book(user, showtime["id"], ["A1"]).status_code == 201
    body = assert_error(cinema.book(user, showtime["id"], ["A1", "A3"]), 409)
    assert body["errors"]["seats"] == ["A1"]
    assert seat_statuses(cinema, showtime["id"], user)["A3"] == "available"
    assert len(cinema.client.get("/reservations", headers=user).json) == 1


def test_invalid_seat_lists_are_refused(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    eleven = [f"A{number}" for number in range(1, 11)] + ["B1"]
    for seats in ([], ["A1", "A1"], ["A1", "a1"], eleven, ["A0"], "A1", None, [1]):
        body = assert_error(cinema.book(user, showtime["id"], seats), 400)
        assert "seats" in body["errors"], seats
    missing = cinema.client.post("/reservations", json={"showtime_id": showtime["id"]}, headers=user)
    assert "seats" in assert_error(missing, 400)["errors"]

    assert set(seat_statuses(cinema, showtime["id"], user).values()) == {"available"}
    assert cinema.client.get("/reservations", headers=user).json == []


def test_ten_seats_is_the_limit(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    ten = [f"A{number}" for number in range(1, 11)]
    response = cinema.book(user, showtime["id"], ten)
    assert response.status_code == 201, response.json
    assert len(response.json["reservation"]["seats"]) == 10


def test_unknown_labels_are_listed(cinema):
    showtime = cinema.showtime_with_seats()  # rows A-B, 10 seats each
    user = cinema.user()
    response = cinema.book(user, showtime["id"], ["A1", "Q7", "A11"])
    body = assert_error(response, 400)
    listed = body["errors"]["seats"]
    assert len(listed) == 2  # A1 exists and is not listed
    assert any("Q7" in entry for entry in listed)
    assert any("A11" in entry for entry in listed)
    assert seat_statuses(cinema, showtime["id"], user)["A1"] == "available"
    assert cinema.client.get("/reservations", headers=user).json == []


def test_unknown_or_deleted_showtime_is_404(cinema):
    user = cinema.user()
    assert_error(cinema.book(user, 9999, ["A1"]), 404)
    showtime = cinema.showtime_with_seats()
    assert cinema.client.delete(f"/showtimes/{showtime['id']}", headers=cinema.admin).status_code == 200
    assert_error(cinema.book(user, showtime["id"], ["A1"]), 404)


def test_showtime_id_must_be_an_integer(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    for value in (str(showtime["id"]), True, 0, None):
        body = assert_error(cinema.book(user, value, ["A1"]), 400)
        assert "showtime_id" in body["errors"], value


def test_booking_a_started_showtime_is_409(app, cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    start_showtime(app, showtime["id"])
    assert_error(cinema.book(user, showtime["id"], ["A1"]), 409)
    assert seat_statuses(cinema, showtime["id"], user)["A1"] == "available"
    assert cinema.client.get("/reservations", headers=user).json == []


def test_booking_needs_a_token(cinema):
    showtime = cinema.showtime_with_seats()
    response = cinema.client.post("/reservations", json={"showtime_id": showtime["id"], "seats": ["A1"]})
    assert_error(response, 401)
    assert seat_statuses(cinema, showtime["id"])["A1"] == "available"


# ---- GET /reservations --------------------------------------------------------------


def test_list_shows_only_your_own_newest_first(cinema):
    showtime = cinema.showtime_with_seats()
    alice = cinema.user("alice")
    bob = cinema.user("bob")
    older = cinema.book(alice, showtime["id"], ["A1"]).json["reservation"]["id"]
    cinema.book(bob, showtime["id"], ["B1"])
    newer = cinema.book(alice, showtime["id"], ["A2", "A3"]).json["reservation"]["id"]

    response = cinema.client.get("/reservations", headers=alice)
    assert reservation_ids(response) == [newer, older]
    assert response.headers["X-Total-Count"] == "2"
    first = response.json[0]
    assert RESERVATION_KEYS <= set(first)
    assert sorted(first["seats"]) == ["A2", "A3"]
    assert first["booked_ago"] == "now"


def test_booked_ago_is_humanized(app, cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    two_hours = cinema.book(user, showtime["id"], ["A1"]).json["reservation"]["id"]
    three_days = cinema.book(user, showtime["id"], ["A2"]).json["reservation"]["id"]
    age_reservation(app, two_hours, hours=2, seconds=5)
    age_reservation(app, three_days, days=3, seconds=5)

    response = cinema.client.get("/reservations", headers=user)
    by_id = {reservation["id"]: reservation["booked_ago"] for reservation in response.json}
    assert by_id[two_hours] == "2 hours ago"
    assert by_id[three_days] == "3 days ago"
    # Newest first means by booking time, not by id.
    assert reservation_ids(response) == [two_hours, three_days]


def test_list_is_paginated(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    ids = [cinema.book(user, showtime["id"], [f"A{n}"]).json["reservation"]["id"] for n in (1, 2, 3)]
    newest_first = ids[::-1]

    first = cinema.client.get("/reservations?per_page=2", headers=user)
    assert reservation_ids(first) == newest_first[:2]
    assert first.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in first.headers["Link"]

    second = cinema.client.get("/reservations?per_page=2&page=2", headers=user)
    assert reservation_ids(second) == newest_first[2:]
    assert 'rel="next"' not in second.headers["Link"]

    assert cinema.client.get("/reservations?page=9", headers=user).json == []
    assert_error(cinema.client.get("/reservations?per_page=101", headers=user), 400)
    assert_error(cinema.client.get("/reservations?page=0", headers=user), 400)


def test_admin_may_list_everybody(cinema):
    showtime = cinema.showtime_with_seats()
    alice_user, alice = cinema.user_and_headers("alice")
    bob_user, bob = cinema.user_and_headers("bob")
    cinema.book(alice, showtime["id"], ["A1"])
    cinema.book(bob, showtime["id"], ["B1"])

    everybody = cinema.client.get("/reservations?all=true", headers=cinema.admin)
    assert everybody.status_code == 200
    assert {reservation["user_id"] for reservation in everybody.json} == {alice_user["id"], bob_user["id"]}
    assert everybody.headers["X-Total-Count"] == "2"

    own = cinema.client.get("/reservations", headers=cinema.admin)
    assert own.json == []


def test_normal_user_cannot_list_everybody(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    cinema.book(cinema.user(), showtime["id"], ["B1"])
    assert_error(cinema.client.get("/reservations?all=true", headers=user), 403)


# ---- GET /reservations/<id> ---------------------------------------------------------


def test_get_one_reservation(cinema):
    showtime = cinema.showtime_with_seats()
    owner = cinema.user("owner")
    stranger = cinema.user("stranger")
    reservation = cinema.book(owner, showtime["id"], ["A1"]).json["reservation"]
    url = f"/reservations/{reservation['id']}"

    mine = cinema.client.get(url, headers=owner)
    assert mine.status_code == 200
    assert mine.json["id"] == reservation["id"]
    assert mine.json["seats"] == ["A1"]
    assert RESERVATION_KEYS <= set(mine.json)

    admin_view = cinema.client.get(url, headers=cinema.admin)
    assert admin_view.status_code == 200
    assert admin_view.json["user_id"] == reservation["user_id"]

    assert_error(cinema.client.get(url, headers=stranger), 404)
    assert_error(cinema.client.get("/reservations/9999", headers=owner), 404)
    assert_error(cinema.client.get(url), 401)


# ---- DELETE /reservations/<id> ------------------------------------------------------


def test_owner_cancels(cinema):
    showtime = cinema.showtime_with_seats()
    owner = cinema.user()
    reservation = cinema.book(owner, showtime["id"], ["A1", "A2"]).json["reservation"]
    url = f"/reservations/{reservation['id']}"

    response = cinema.client.delete(url, headers=owner)
    assert response.status_code == 200
    assert response.json == {"message": "Reservation cancelled successfully"}

    statuses = seat_statuses(cinema, showtime["id"], owner)
    assert statuses["A1"] == statuses["A2"] == "available"
    assert cinema.client.get(f"/showtimes/{showtime['id']}", headers=owner).json["seats_available"] == 20

    kept = cinema.client.get(url, headers=owner)
    assert kept.status_code == 200
    assert kept.json["status"] == "cancelled"
    assert sorted(kept.json["seats"]) == ["A1", "A2"]
    assert kept.json["total_price"] == reservation["total_price"]
    listed = cinema.client.get("/reservations", headers=owner).json
    assert [(r["id"], r["status"]) for r in listed] == [(reservation["id"], "cancelled")]


def test_second_cancel_is_409(cinema):
    showtime = cinema.showtime_with_seats()
    owner = cinema.user()
    reservation_id = cinema.book(owner, showtime["id"], ["A1"]).json["reservation"]["id"]
    assert cinema.client.delete(f"/reservations/{reservation_id}", headers=owner).status_code == 200
    assert_error(cinema.client.delete(f"/reservations/{reservation_id}", headers=owner), 409)
    assert cinema.client.get(f"/reservations/{reservation_id}", headers=owner).json["status"] == "cancelled"


def test_other_user_cannot_cancel(cinema):
    showtime = cinema.showtime_with_seats()
    owner = cinema.user("owner")
    stranger = cinema.user("stranger")
    reservation_id = cinema.book(owner, showtime["id"], ["A1"]).json["reservation"]["id"]

    assert_error(cinema.client.delete(f"/reservations/{reservation_id}", headers=stranger), 404)
    assert_error(cinema.client.delete("/reservations/9999", headers=owner), 404)
    assert cinema.client.get(f"/reservations/{reservation_id}", headers=owner).json["status"] == "confirmed"
    assert seat_statuses(cinema, showtime["id"], owner)["A1"] == "yours"
    assert seat_statuses(cinema, showtime["id"], stranger)["A1"] == "booked"


def test_admin_may_cancel_a_guests_reservation(cinema):
    showtime = cinema.showtime_with_seats()
    guest = cinema.user()
    reservation_id = cinema.book(guest, showtime["id"], ["B3"]).json["reservation"]["id"]

    response = cinema.client.delete(f"/reservations/{reservation_id}", headers=cinema.admin)
    assert response.status_code == 200
    assert response.json == {"message": "Reservation cancelled successfully"}
    assert cinema.client.get(f"/reservations/{reservation_id}", headers=guest).json["status"] == "cancelled"
    assert seat_statuses(cinema, showtime["id"], guest)["B3"] == "available"


def test_cancel_after_the_showtime_started_is_409(app, cinema):
    showtime = cinema.showtime_with_seats()
    owner = cinema.user()
    reservation_id = cinema.book(owner, showtime["id"], ["A1"]).json["reservation"]["id"]
    start_showtime(app, showtime["id"])

    assert_error(cinema.client.delete(f"/reservations/{reservation_id}", headers=owner), 409)
    assert cinema.client.get(f"/reservations/{reservation_id}", headers=owner).json["status"] == "confirmed"
    assert seat_statuses(cinema, showtime["id"], owner)["A1"] == "yours"


def test_freed_seats_can_be_booked_again(cinema):
    showtime = cinema.showtime_with_seats()
    first = cinema.user("first")
    second = cinema.user("second")
    old = cinema.book(first, showtime["id"], ["A1", "A2"]).json["reservation"]
    assert cinema.client.delete(f"/reservations/{old['id']}", headers=first).status_code == 200

    response = cinema.book(second, showtime["id"], ["A1", "A2"])
    assert response.status_code == 201, response.json
    assert response.json["reservation"]["id"] != old["id"]
    statuses = seat_statuses(cinema, showtime["id"], second)
    assert statuses["A1"] == statuses["A2"] == "yours"

    # The cancelled booking keeps its history and cannot be revived by cancelling again.
    history = cinema.client.get(f"/reservations/{old['id']}", headers=first).json
    assert history["status"] == "cancelled"
    assert sorted(history["seats"]) == ["A1", "A2"]
    assert_error(cinema.client.delete(f"/reservations/{old['id']}", headers=first), 409)
    assert seat_statuses(cinema, showtime["id"], second)["A1"] == "yours"
