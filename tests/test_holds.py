"""Seat holds: hold, see, extend, release, confirm; expiry by the clock; the seat limit."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from app import create_app
from conftest import Cinema, assert_error, test_config
from models import EXPIRED, HELD, Reservation, Seat, Showtime, Ticket, db, utcnow


@pytest.fixture
def app(tmp_path):
    return create_app(test_config(tmp_path, HOLD_SECONDS=600, HOLD_MAX_SECONDS=1800))


@pytest.fixture
def scene(cinema):
    """A showtime of 20 seats (A1-B10), a guest with a hold on A1 and A2, and a second guest."""
    showtime = cinema.showtime_with_seats()
    ann = cinema.user("ann")
    bob = cinema.user("bob")
    response = hold(cinema, ann, showtime["id"], seats=["A1", "A2"])
    assert response.status_code == 201, response.json
    return Scene(cinema, showtime["id"], ann, bob, response.json["hold"])


class Scene:
    def __init__(self, cinema, showtime_id, ann, bob, hold):
        self.cinema, self.client, self.showtime_id = cinema, cinema.client, showtime_id
        self.ann, self.bob, self.hold = ann, bob, hold

    def seat_status(self, headers, label):
        seat_map = self.client.get(f"/showtimes/{self.showtime_id}/seats", headers=headers).json
        return {seat["label"]: seat["status"] for row in seat_map["rows"] for seat in row["seats"]}[label]


def hold(cinema, headers, showtime_id, **body):
    return cinema.client.post("/holds", json={"showtime_id": showtime_id, **body}, headers=headers)


def confirm(cinema, headers, hold_id):
    return cinema.client.post("/reservations", json={"hold_id": hold_id}, headers=headers)


def age(app, hold_id, seconds):
    """Move a hold ``seconds`` into the past (made and expiring that much earlier)."""
    with app.app_context():
        hold = db.session.get(Reservation, hold_id)
        db.session.execute(
            update(Reservation)
            .where(Reservation.id == hold_id)
            .values(
                created_at=hold.created_at - timedelta(seconds=seconds),
                expires_at=hold.expires_at - timedelta(seconds=seconds),
            )
        )
        db.session.commit()


def lapse(app, hold_id):
    """Let a hold run out, as the clock would: no write on its showtime follows."""
    with app.app_context():
        db.session.execute(
            update(Reservation).where(Reservation.id == hold_id).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()


def stored(app, hold_id):
    with app.app_context():
        return db.session.get(Reservation, hold_id)


def seconds_until(moment: str) -> float:
    return (datetime.fromisoformat(moment) - utcnow()).total_seconds()


# ---- holding ------------------------------------------------------------------------


def test_a_hold_names_its_seats_quote_and_expiry(scene):
    body = scene.hold
    assert body["status"] == "active"
    assert body["seats"] == ["A1", "A2"]
    assert body["total_price"] == 20.0  # two adult seats at the default $10
    assert [line["ticket_type"] for line in body["lines"]] == ["adult", "adult"]
    assert 595 <= body["expires_in_seconds"] <= 600
    assert 595 <= seconds_until(body["expires_at"]) <= 600


def test_the_created_answer_points_at_the_hold(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    response = hold(cinema, user, showtime["id"], tickets=[{"seat": "B5", "ticket_type": "child"}])
    assert response.status_code == 201
    assert response.json["message"] == "Seats held"
    location = response.headers["Location"]
    assert location.endswith(f"/holds/{response.json['hold']['id']}")
    again = cinema.client.get(location, headers=user)
    assert again.status_code == 200
    assert again.json["lines"] == response.json["hold"]["lines"]
    assert again.json["lines"][0]["price"] == 6.0  # child: 60% of $10


def test_held_seats_show_as_held_to_others_and_yours_to_the_holder(scene):
    assert scene.seat_status(scene.ann, "A1") == "yours"
    assert scene.seat_status(scene.bob, "A1") == "held"
    assert scene.seat_status(scene.bob, "A3") == "available"
    seat_map = scene.client.get(f"/showtimes/{scene.showtime_id}/seats", headers=scene.bob).json
    assert seat_map["seats_available"] == 18
    showtime = scene.client.get(f"/showtimes/{scene.showtime_id}", headers=scene.bob).json
    assert showtime["seats_available"] == 18


def test_the_seat_map_picture_draws_held_seats(scene):
    picture = scene.client.get(f"/showtimes/{scene.showtime_id}/seatmap.svg", headers=scene.bob)
    assert picture.status_code == 200
    text = picture.get_data(as_text=True)
    assert 'aria-label="Row A seat 1, standard, held' in text
    assert 'aria-label="Row A seat 3, standard, available' in text


@pytest.mark.parametrize("how", ["hold", "book"])
def test_held_seats_cannot_be_held_or_booked_by_anyone_else(scene, how):
    if how == "hold":
        response = hold(scene.cinema, scene.bob, scene.showtime_id, seats=["A2", "A3"])
    else:
        response = scene.cinema.book(scene.bob, scene.showtime_id, ["A2", "A3"])
    body = assert_error(response, 409, "A2 are already booked or held")
    assert body["errors"] == {"seats": ["A2"]}
    assert scene.seat_status(scene.bob, "A3") == "available"  # all or nothing


def test_best_available_passes_over_held_seats(cinema):
    showtime = cinema.showtime_with_seats()
    ann, bob = cinema.user(), cinema.user()
    first = cinema.client.get(f"/showtimes/{showtime['id']}/best-available?quantity=2", headers=bob).json["seats"]
    assert hold(cinema, ann, showtime["id"], seats=first).status_code == 201
    second = cinema.client.get(f"/showtimes/{showtime['id']}/best-available?quantity=2", headers=bob).json["seats"]
    assert not set(first) & set(second)


def test_a_quantity_holds_the_seats_best_available_offers(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    offered = cinema.client.get(f"/showtimes/{showtime['id']}/best-available?quantity=3", headers=user).json
    response = hold(cinema, user, showtime["id"], quantity=3)
    assert response.status_code == 201, response.json
    assert response.json["hold"]["seats"] == sorted(offered["seats"], key=lambda label: (label[0], int(label[1:])))
    # The next party of three gets three other seats side by side.
    other = hold(cinema, cinema.user(), showtime["id"], quantity=3).json["hold"]["seats"]
    assert not set(other) & set(offered["seats"])
    assert len({label[0] for label in other}) == 1


def test_a_quantity_takes_a_ticket_type_and_the_pickers_wishes(cinema):
    showtime = cinema.showtime_with_seats()
    cinema.client.patch(
        f"/showtimes/{showtime['id']}/seats", json={"seats": ["B1", "B2"], "type": "premium"}, headers=cinema.admin
    )
    user = cinema.user()
    response = hold(cinema, user, showtime["id"], quantity=2, ticket_type="child", seat_types=["premium"])
    assert response.status_code == 201, response.json
    assert response.json["hold"]["seats"] == ["B1", "B2"]
    assert {line["ticket_type"] for line in response.json["hold"]["lines"]} == {"child"}


def test_a_quantity_that_does_not_fit_together_is_a_409_unless_split_is_allowed(cinema):
    showtime = cinema.showtime_with_seats()
    admin = cinema.admin
    # Leave two free seats in each row, apart.
    for row in "AB":
        taken = [f"{row}{n}" for n in range(1, 11) if n not in (3, 8)]
        assert cinema.book(admin, showtime["id"], taken).status_code == 201
    user = cinema.user()
    assert_error(hold(cinema, user, showtime["id"], quantity=2), 409, "allow_split")
    response = hold(cinema, user, showtime["id"], quantity=2, allow_split=True)
    assert response.status_code == 201
    assert len(response.json["hold"]["seats"]) == 2


@pytest.mark.parametrize(
    "body, field",
    [
        ({"seats": ["A1"], "quantity": 1}, "seats"),
        ({}, "seats"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 51}, "quantity"),
        ({"quantity": "2"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": 2, "allow_split": 1}, "allow_split"),
        ({"quantity": 2, "accessible": 3}, "accessible"),
        ({"quantity": 2, "seat_types": ["balcony"]}, "seat_types"),
        ({"seats": ["A1"], "ticket_type": "child"}, "ticket_type"),
        ({"seats": ["A1"], "allow_split": True}, "allow_split"),
        ({"seats": ["A1", "a1"]}, "seats"),
    ],
)
def test_bad_hold_bodies_are_400s_naming_the_field(cinema, body, field):
    showtime = cinema.showtime_with_seats()
    response = hold(cinema, cinema.user(), showtime["id"], **body)
    error = assert_error(response, 400)
    assert field in error["errors"], error


def test_a_hold_needs_its_showtime(cinema):
    response = cinema.client.post("/holds", json={"seats": ["A1"]}, headers=cinema.user())
    assert "showtime_id" in assert_error(response, 400)["errors"]


def test_an_unknown_ticket_type_or_showtime(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    assert_error(hold(cinema, user, showtime["id"], quantity=1, ticket_type="vip"), 400, "vip")
    assert_error(hold(cinema, user, 987654, seats=["A1"]), 404, "Showtime 987654 not found")


def test_a_showtime_that_started_takes_no_holds(app, cinema):
    showtime = cinema.showtime_with_seats()
    with app.app_context():
        db.session.get(Showtime, showtime["id"]).start_time = utcnow() - timedelta(minutes=1)
        db.session.commit()
    assert_error(hold(cinema, cinema.user(), showtime["id"], seats=["A1"]), 409, "already started")


def test_holds_need_a_token(cinema):
    assert_error(cinema.client.post("/holds", json={"showtime_id": 1, "quantity": 1}), 401)
    assert_error(cinema.client.get("/holds/1"), 401)


# ---- seeing, extending, releasing ----------------------------------------------------


def test_a_hold_is_its_owners_and_the_admins_only(scene):
    hold_id = scene.hold["id"]
    assert scene.client.get(f"/holds/{hold_id}", headers=scene.ann).status_code == 200
    assert scene.client.get(f"/holds/{hold_id}", headers=scene.cinema.admin).status_code == 200
    for call in (
        lambda: scene.client.get(f"/holds/{hold_id}", headers=scene.bob),
        lambda: scene.client.post(f"/holds/{hold_id}/extend", headers=scene.bob),
        lambda: scene.client.delete(f"/holds/{hold_id}", headers=scene.bob),
        lambda: confirm(scene.cinema, scene.bob, hold_id),
    ):
        assert_error(call(), 404, f"Hold {hold_id} not found")
    assert scene.seat_status(scene.bob, "A1") == "held"  # nothing changed
    assert_error(scene.client.get("/holds/987654", headers=scene.ann), 404, "Hold 987654 not found")


def test_a_booking_made_in_one_step_is_not_a_hold(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    reservation = cinema.book(user, showtime["id"], ["A1"]).json["reservation"]
    assert_error(cinema.client.get(f"/holds/{reservation['id']}", headers=user), 404)


def test_an_unconfirmed_hold_is_not_a_reservation(scene):
    hold_id = scene.hold["id"]
    assert_error(scene.client.get(f"/reservations/{hold_id}", headers=scene.ann), 404)
    assert_error(scene.client.delete(f"/reservations/{hold_id}", headers=scene.ann), 404)
    assert scene.client.get("/reservations", headers=scene.ann).json == []
    assert scene.client.get("/reservations?all=true", headers=scene.cinema.admin).json == []


def test_releasing_frees_the_seats_at_once(scene):
    hold_id = scene.hold["id"]
    response = scene.client.delete(f"/holds/{hold_id}", headers=scene.ann)
    assert response.status_code == 200
    assert response.json == {"message": "Hold released"}
    assert scene.seat_status(scene.bob, "A1") == "available"
    assert scene.client.get(f"/holds/{hold_id}", headers=scene.ann).json["status"] == "released"
    assert scene.client.get(f"/holds/{hold_id}", headers=scene.ann).json["expires_in_seconds"] == 0
    assert_error(scene.client.delete(f"/holds/{hold_id}", headers=scene.ann), 409, "was released")
    assert_error(confirm(scene.cinema, scene.ann, hold_id), 409, "was released")
    assert scene.cinema.book(scene.bob, scene.showtime_id, ["A1", "A2"]).status_code == 201


def test_extending_gives_hold_seconds_from_now(app, scene):
    hold_id = scene.hold["id"]
    age(app, hold_id, 500)  # 100 seconds left
    assert scene.client.get(f"/holds/{hold_id}", headers=scene.ann).json["expires_in_seconds"] <= 100
    response = scene.client.post(f"/holds/{hold_id}/extend", headers=scene.ann)
    assert response.status_code == 200, response.json
    assert 595 <= response.json["expires_in_seconds"] <= 600


def test_extending_stops_at_the_cap_counted_from_creation(app, scene):
    hold_id = scene.hold["id"]
    age(app, hold_id, 1700)  # made 1,700 s ago: the cap is 100 s away (and the hold lapsed)
    with app.app_context():
        db.session.execute(
            update(Reservation).where(Reservation.id == hold_id).values(expires_at=utcnow() + timedelta(seconds=30))
        )
        db.session.commit()
    response = scene.client.post(f"/holds/{hold_id}/extend", headers=scene.ann)
    assert response.status_code == 200, response.json
    assert 95 <= response.json["expires_in_seconds"] <= 100
    again = scene.client.post(f"/holds/{hold_id}/extend", headers=scene.ann)
    assert_error(again, 409, "at most 1800 seconds")


def test_an_expired_hold_cannot_be_extended_released_or_confirmed(app, scene):
    hold_id = scene.hold["id"]
    lapse(app, hold_id)
    assert scene.client.get(f"/holds/{hold_id}", headers=scene.ann).json["status"] == "expired"
    assert_error(scene.client.post(f"/holds/{hold_id}/extend", headers=scene.ann), 409, "expired")
    assert_error(scene.client.delete(f"/holds/{hold_id}", headers=scene.ann), 409, "expired")
    assert_error(confirm(scene.cinema, scene.ann, hold_id), 409, "expired at")
    assert scene.client.get("/reservations", headers=scene.ann).json == []


# ---- expiry by the clock ------------------------------------------------------------


def test_a_lapsed_hold_frees_its_seats_with_no_write(app, scene):
    lapse(app, scene.hold["id"])
    assert scene.seat_status(scene.bob, "A1") == "available"
    assert scene.seat_status(scene.ann, "A1") == "available"
    assert stored(app, scene.hold["id"]).status == HELD  # nothing wrote it yet
    showtime = scene.client.get(f"/showtimes/{scene.showtime_id}", headers=scene.bob).json
    assert showtime["seats_available"] == 20
    listed = scene.client.get("/showtimes", headers=scene.bob).json
    assert [item["seats_available"] for item in listed if item["id"] == scene.showtime_id] == [20]
    offered = scene.client.get(f"/showtimes/{scene.showtime_id}/best-available?quantity=20&allow_split=true", headers=scene.bob)
    assert offered.status_code == 200


def test_the_next_write_takes_a_lapsed_holds_seats_over(app, scene):
    hold_id = scene.hold["id"]
    lapse(app, hold_id)
    response = scene.cinema.book(scene.bob, scene.showtime_id, ["A2"])
    assert response.status_code == 201, response.json
    assert stored(app, hold_id).status == EXPIRED
    with app.app_context():
        holders = dict(db.session.execute(select(Seat.label, Seat.reservation_id).where(Seat.label.in_(["A1", "A2"]))).all())
    assert holders == {"A1": None, "A2": response.json["reservation"]["id"]}
    assert_error(confirm(scene.cinema, scene.ann, hold_id), 409, "expired")
    assert scene.seat_status(scene.ann, "A2") == "booked"


def test_the_seat_map_etag_changes_when_a_hold_lapses(app, scene):
    url = f"/showtimes/{scene.showtime_id}/seats"
    tag = scene.client.get(url, headers=scene.bob).headers["ETag"]
    assert scene.client.get(url, headers={**scene.bob, "If-None-Match": tag}).status_code == 304
    lapse(app, scene.hold["id"])
    fresh = scene.client.get(url, headers={**scene.bob, "If-None-Match": tag})
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] != tag
    detail = f"/showtimes/{scene.showtime_id}"
    assert scene.client.get(detail, headers={**scene.bob, "If-None-Match": tag}).status_code == 200


def test_an_admin_can_block_a_lapsed_holds_seat_but_not_a_held_one(app, scene):
    url = f"/showtimes/{scene.showtime_id}/seats"
    blocked = scene.client.patch(url, json={"seats": ["A1"], "blocked": True}, headers=scene.cinema.admin)
    assert_error(blocked, 409, "booked or held")
    lapse(app, scene.hold["id"])
    blocked = scene.client.patch(url, json={"seats": ["A1"], "blocked": True}, headers=scene.cinema.admin)
    assert blocked.status_code == 200, blocked.json
    assert scene.seat_status(scene.bob, "A1") == "blocked"


# ---- confirming ---------------------------------------------------------------------


def test_confirming_books_the_held_seats_at_the_quoted_price(scene):
    hold_id = scene.hold["id"]
    # The price goes up after the quote: the hold keeps its quote.
    changed = scene.client.put(f"/showtimes/{scene.showtime_id}", json={"price": 15}, headers=scene.cinema.admin)
    assert changed.status_code == 200, changed.json
    response = confirm(scene.cinema, scene.ann, hold_id)
    assert response.status_code == 201, response.json
    reservation = response.json["reservation"]
    assert reservation["id"] == hold_id
    assert response.headers["Location"].endswith(f"/reservations/{hold_id}")
    assert reservation["status"] == "confirmed"
    assert reservation["seats"] == ["A1", "A2"]
    assert reservation["total_price"] == scene.hold["total_price"] == 20.0
    assert reservation["confirmed_at"] is not None
    assert scene.seat_status(scene.bob, "A1") == "booked"
    assert scene.seat_status(scene.ann, "A1") == "yours"
    assert scene.client.get(f"/holds/{hold_id}", headers=scene.ann).json["status"] == "confirmed"
    assert [item["id"] for item in scene.client.get("/reservations", headers=scene.ann).json] == [hold_id]


def test_a_hold_is_confirmed_once(scene):
    hold_id = scene.hold["id"]
    assert confirm(scene.cinema, scene.ann, hold_id).status_code == 201
    assert_error(confirm(scene.cinema, scene.ann, hold_id), 409, "already confirmed")
    assert_error(scene.client.delete(f"/holds/{hold_id}", headers=scene.ann), 409, "already confirmed")
    assert_error(scene.client.post(f"/holds/{hold_id}/extend", headers=scene.ann), 409, "already confirmed")


def test_a_confirmed_hold_cancels_like_any_booking(scene):
    hold_id = scene.hold["id"]
    confirm(scene.cinema, scene.ann, hold_id)
    assert scene.client.delete(f"/reservations/{hold_id}", headers=scene.ann).status_code == 200
    assert scene.seat_status(scene.bob, "A1") == "available"
    assert_error(confirm(scene.cinema, scene.ann, hold_id), 409, "already confirmed")


def test_a_confirmation_after_the_start_is_refused(app, scene):
    with app.app_context():
        db.session.get(Showtime, scene.showtime_id).start_time = utcnow() - timedelta(minutes=1)
        db.session.commit()
    assert_error(confirm(scene.cinema, scene.ann, scene.hold["id"]), 409, "already started")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"hold_id": "1"}, "hold_id"),
        ({"hold_id": 0}, "hold_id"),
        ({"hold_id": 10**30}, "hold_id"),
        ({"hold_id": 1, "showtime_id": 1}, "hold_id"),
        ({"hold_id": 1, "seats": ["A1"]}, "seats"),
        ({"seats": ["A1"]}, "showtime_id"),
    ],
)
def test_bad_confirmations_are_400s(cinema, body, field):
    response = cinema.client.post("/reservations", json=body, headers=cinema.user())
    assert field in assert_error(response, 400)["errors"]


def test_holds_can_be_retried_with_an_idempotency_key(app, cinema):
    showtime = cinema.showtime_with_seats()
    headers = {**cinema.user(), "Idempotency-Key": "hold-once"}
    body = {"showtime_id": showtime["id"], "quantity": 2}
    first = cinema.client.post("/holds", json=body, headers=headers)
    retry = cinema.client.post("/holds", json=body, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_data() == first.get_data()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Reservation)) == 1
    other = cinema.client.post("/holds", json={**body, "quantity": 3}, headers=headers)
    assert_error(other, 422, "Idempotency-Key")


# ---- the seat limit -----------------------------------------------------------------


@pytest.fixture
def limited(tmp_path):
    return Cinema(create_app(test_config(tmp_path, MAX_SEATS_PER_USER_PER_SHOWTIME=3)).test_client())


def test_a_guest_has_at_most_the_limit_held_and_booked(limited):
    showtime = limited.showtime_with_seats()
    user = limited.user()
    assert limited.book(user, showtime["id"], ["A1", "A2"]).status_code == 201
    over = hold(limited, user, showtime["id"], seats=["B1", "B2"])
    body = assert_error(over, 409, "At most 3 seats of one showtime per guest, held or booked: you have 2, so 1 more")
    assert body["errors"] == {"seats": ["limit 3, have 2, asked 2"]}
    assert hold(limited, user, showtime["id"], seats=["B1"]).status_code == 201
    assert_error(limited.book(user, showtime["id"], ["B2"]), 409, "you have 3, so 0 more")
    # Other showtimes and other guests have their own count; admins have none.
    other = limited.showtime_with_seats(start_time=None, hall="Studio 9")
    assert limited.book(user, other["id"], ["A1", "A2", "A3"]).status_code == 201
    assert limited.book(limited.user(), showtime["id"], ["A5", "A6", "A7"]).status_code == 201
    assert limited.book(limited.admin, showtime["id"], [f"B{n}" for n in range(3, 10)]).status_code == 201


def test_cancelled_released_and_lapsed_seats_leave_the_count(limited):
    app = limited.client.application
    showtime = limited.showtime_with_seats()
    user = limited.user()
    booked = limited.book(user, showtime["id"], ["A1", "A2", "A3"]).json["reservation"]
    assert_error(hold(limited, user, showtime["id"], seats=["B1"]), 409)
    limited.client.delete(f"/reservations/{booked['id']}", headers=user)
    first = hold(limited, user, showtime["id"], seats=["B1", "B2", "B3"]).json["hold"]
    limited.client.delete(f"/holds/{first['id']}", headers=user)
    second = hold(limited, user, showtime["id"], seats=["B4", "B5", "B6"]).json["hold"]
    lapse(app, second["id"])
    assert hold(limited, user, showtime["id"], seats=["B7", "B8", "B9"]).status_code == 201


# ---- settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"HOLD_SECONDS": 0},
        {"HOLD_SECONDS": 900, "HOLD_MAX_SECONDS": 600},
        {"HOLD_MAX_SECONDS": 100_000},
        {"MAX_SEATS_PER_USER_PER_SHOWTIME": 0},
    ],
)
def test_hold_settings_out_of_range_stop_the_start(tmp_path, settings):
    with pytest.raises(RuntimeError):
        create_app(test_config(tmp_path, **settings))


def test_hold_seconds_sets_the_expiry(tmp_path):
    cinema = Cinema(create_app(test_config(tmp_path, HOLD_SECONDS=90)).test_client())
    showtime = cinema.showtime_with_seats()
    body = hold(cinema, cinema.user(), showtime["id"], seats=["A1"]).json["hold"]
    assert 85 <= body["expires_in_seconds"] <= 90


def test_a_hold_on_a_withdrawn_showtime_cannot_be_confirmed(scene):
    # Holds are not bookings: an admin may archive the showtime; the hold then books nothing.
    deleted = scene.client.delete(f"/showtimes/{scene.showtime_id}", headers=scene.cinema.admin)
    assert deleted.status_code in (200, 204), deleted.get_data(as_text=True)
    assert_error(confirm(scene.cinema, scene.ann, scene.hold["id"]), 409, "withdrawn")
    assert scene.client.get("/reservations", headers=scene.ann).json == []


def test_confirming_sends_the_booking_email_once(tmp_path, resend_fake):
    app = create_app(test_config(tmp_path, RESEND_API_KEY="re_test", RESEND_API_URL=resend_fake.url))
    cinema = Cinema(app.test_client())
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    held = hold(cinema, user, showtime["id"], seats=["A1"]).json["hold"]
    assert [r for r in resend_fake.requests if r.path == "/emails"] == []  # a hold gets no email
    reservation = confirm(cinema, user, held["id"]).json["reservation"]
    sent = [r for r in resend_fake.requests if r.path == "/emails"]
    assert len(sent) == 1 and "A1" in sent[0].json["text"]
    assert reservation["email_status"] == "sent"


def test_a_hold_gets_its_tickets_when_it_is_confirmed(scene):
    hold_id = scene.hold["id"]
    assert_error(scene.client.get(f"/reservations/{hold_id}/tickets", headers=scene.ann), 404)
    assert confirm(scene.cinema, scene.ann, hold_id).status_code == 201
    tickets = scene.client.get(f"/reservations/{hold_id}/tickets", headers=scene.ann)
    assert tickets.status_code == 200, tickets.json
    assert sorted(ticket["seat"] for ticket in tickets.json["tickets"]) == ["A1", "A2"]
    assert len({ticket["secret"] for ticket in tickets.json["tickets"]}) == 2


def test_a_released_or_lapsed_hold_never_had_tickets(app, scene):
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    scene.client.delete(f"/holds/{scene.hold['id']}", headers=scene.ann)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
