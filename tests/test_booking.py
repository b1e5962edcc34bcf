"""The seat rules of booking.py, called directly (no HTTP): claim, conflict, release, cancel."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

import booking
from errors import Conflict, Invalid, NotFound
from models import CANCELLED, CONFIRMED, Hall, Movie, Reservation, Seat, Showtime, User, db, utcnow


@pytest.fixture
def ctx(app):
    """An app context with a movie, an upcoming showtime with seats A1-A4, and two guests."""
    with app.app_context():
        movie = Movie(title="Alien", genre="Horror", duration_minutes=117)
        start = utcnow() + timedelta(days=3)
        hall = Hall(name="Main")
        db.session.add(hall)
        db.session.flush()
        showtime = Showtime(
            movie=movie,
            start_time=start,
            end_time=start + timedelta(hours=2),
            hall=hall.name,
            hall_id=hall.id,
            price_cents=1250,
        )
        db.session.add(showtime)
        db.session.add_all(
            Seat(showtime=showtime, label=f"A{number}", row="A", number=number) for number in range(1, 5)
        )
        guests = [
            User(username=name, email=f"{name}@example.com", password_hash="x") for name in ("ann", "bob")
        ]
        db.session.add_all(guests)
        db.session.commit()
        yield SimpleNamespace(showtime_id=showtime.id, ann=guests[0], bob=guests[1])


def holders(showtime_id):
    """Seat label -> the id of the reservation holding it (None when free)."""
    return dict(db.session.execute(select(Seat.label, Seat.reservation_id).where(Seat.showtime_id == showtime_id)).all())


def test_book_claims_every_seat_and_prices_them(ctx):
    reservation = booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A1", "A2"]))

    assert reservation.status == CONFIRMED
    assert reservation.seat_labels == ["A1", "A2"]
    assert reservation.total_cents == 2500
    assert holders(ctx.showtime_id) == {"A1": reservation.id, "A2": reservation.id, "A3": None, "A4": None}


def test_a_taken_seat_is_a_conflict_and_books_nothing(ctx):
    first = booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A2"]))

    with pytest.raises(Conflict) as refused:
        booking.book(ctx.bob.id, ctx.showtime_id, booking.adult_tickets(["A1", "A2", "A3"]))

    assert refused.value.errors == {"seats": ["A2"]}
    assert "A2" in refused.value.message
    assert holders(ctx.showtime_id) == {"A1": None, "A2": first.id, "A3": None, "A4": None}
    assert db.session.scalar(select(func.count(Reservation.id))) == 1


def test_claim_seats_takes_only_free_seats(ctx):
    """The conditional UPDATE itself: a seat already held makes the claim fail whole."""
    booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A3"]))
    seat_ids = {label: seat.id for label, seat in booking.lock_seats(ctx.showtime_id, ["A3", "A4"]).items()}
    reservation = Reservation(user_id=ctx.bob.id, showtime_id=ctx.showtime_id, total_cents=0)
    db.session.add(reservation)
    db.session.flush()

    with pytest.raises(Conflict):
        booking.claim_seats(reservation.id, seat_ids, ["A3", "A4"])

    assert holders(ctx.showtime_id)["A4"] is None  # rolled back with the failed claim


def test_unknown_seats_are_invalid(ctx):
    with pytest.raises(Invalid) as refused:
        booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A1", "Z9"]))

    assert refused.value.errors == {"seats": ["Unknown seat: Z9"]}
    assert all(holder is None for holder in holders(ctx.showtime_id).values())


def test_unknown_showtime_is_not_found(ctx):
    with pytest.raises(NotFound):
        booking.book(ctx.ann.id, 987654, booking.adult_tickets(["A1"]))


def test_a_started_showtime_cannot_be_booked(ctx):
    db.session.get(Showtime, ctx.showtime_id).start_time = utcnow() - timedelta(minutes=1)
    db.session.commit()

    with pytest.raises(Conflict, match="already started"):
        booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A1"]))


def test_release_seats_frees_them(ctx):
    reservation = booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A1", "A4"]))

    booking.release_seats(reservation.id)
    db.session.commit()

    assert all(holder is None for holder in holders(ctx.showtime_id).values())


def test_cancel_frees_the_seats_and_keeps_the_row(ctx):
    reservation = booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A1", "A2"]))

    cancelled = booking.cancel(reservation.id, ctx.ann)

    assert cancelled.status == CANCELLED and cancelled.cancelled_at is not None
    assert all(holder is None for holder in holders(ctx.showtime_id).values())
    assert db.session.get(Reservation, reservation.id).status == CANCELLED
    # The seats can be booked again at once.
    assert booking.book(ctx.bob.id, ctx.showtime_id, booking.adult_tickets(["A1", "A2"])).status == CONFIRMED


def test_a_cancellation_owes_its_notice_until_it_is_sent(ctx):
    reservation = booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A1"]))
    db.session.get(Reservation, reservation.id).email_status = "sent"  # the confirmation went out
    db.session.commit()

    booking.cancel(reservation.id, ctx.ann)  # a worker that dies here sends nothing

    assert db.session.get(Reservation, reservation.id).email_status == "pending"


def test_cancel_twice_is_a_conflict(ctx):
    reservation = booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A1"]))
    booking.cancel(reservation.id, ctx.ann)
    again = booking.book(ctx.bob.id, ctx.showtime_id, booking.adult_tickets(["A1"]))

    with pytest.raises(Conflict, match="already cancelled"):
        booking.cancel(reservation.id, ctx.ann)

    assert holders(ctx.showtime_id)["A1"] == again.id  # the second cancel freed nothing


def test_someone_elses_reservation_is_not_found(ctx):
    reservation = booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A1"]))

    with pytest.raises(NotFound):
        booking.cancel(reservation.id, ctx.bob)
    with pytest.raises(NotFound):
        booking.get_reservation(reservation.id, ctx.bob)

    admin = SimpleNamespace(id=-1, is_admin=True)
    assert booking.get_reservation(reservation.id, admin).id == reservation.id


def test_seat_rows_tell_yours_from_booked(ctx):
    booking.book(ctx.ann.id, ctx.showtime_id, booking.adult_tickets(["A1"]))
    booking.book(ctx.bob.id, ctx.showtime_id, booking.adult_tickets(["A2"]))

    rows, total, available, _ = booking.seat_rows(db.session.get(Showtime, ctx.showtime_id), ctx.ann.id)

    assert (total, available) == (4, 2)
    assert rows == [
        {
            "row": "A",
            "gaps": [],
            "seats": [
                {"label": f"A{number}", "status": status, "type": "standard", "price": 12.5, "column": number}
                for number, status in enumerate(("yours", "booked", "available", "available"), start=1)
            ],
        }
    ]
