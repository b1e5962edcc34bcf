"""The seat rules: claiming seats, releasing them, cancelling, and who sees which seat how.

A seat is sold at most once because the database says so: the claim is one
conditional UPDATE (``reservation_id IS NULL``) whose row count must equal the
number of seats asked for, or the whole transaction is rolled back. On
PostgreSQL the showtime's row is locked first and then its seats in id order,
so concurrent bookings, cancels and admin changes queue instead of passing
each other or deadlocking; on SQLite a write request opens with BEGIN
IMMEDIATE (see ``database.py``), which already serialises writers.

Plain functions over the session: they take plain values, commit their own
change, and raise the small exceptions of ``errors`` when a rule says no.
"""

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import joinedload, selectinload

from errors import Conflict, Invalid, NotFound
from models import CANCELLED, CONFIRMED, Reservation, Seat, Showtime, db, reservation_seats, utcnow
from scheduling import bump_showtime_version, get_showtime, lock_showtimes


def reservation_query():
    """Reservations with what a response shows: showtime, movie and seats."""
    return select(Reservation).options(
        joinedload(Reservation.showtime).joinedload(Showtime.movie),
        selectinload(Reservation.seats),
    )


def get_reservation(reservation_id: int, user) -> Reservation:
    """The reservation, if it is ``user``'s or ``user`` is an admin; else NotFound."""
    reservation = db.session.scalar(reservation_query().where(Reservation.id == reservation_id))
    if reservation is None or (reservation.user_id != user.id and not user.is_admin):
        # Same answer whether it does not exist or belongs to someone else.
        raise NotFound(f"Reservation {reservation_id} not found.")
    return reservation


def reservations_query(user_id: int | None):
    """Newest first: one user's reservations, or everyone's when ``user_id`` is None."""
    statement = reservation_query().order_by(Reservation.created_at.desc(), Reservation.id.desc())
    if user_id is not None:
        statement = statement.where(Reservation.user_id == user_id)
    return statement


def lock_seats(showtime_id: int, labels: list[str]) -> dict[str, int]:
    """The ids of these seats by label, locked in id order (PostgreSQL).

    Bookings that share seats queue on the first shared one instead of
    deadlocking each other. Invalid when a label is not a seat of the showtime.
    """
    seat_ids = dict(
        db.session.execute(
            select(Seat.label, Seat.id)
            .where(Seat.showtime_id == showtime_id, Seat.label.in_(labels))
            .order_by(Seat.id)
            .with_for_update()
        ).all()
    )
    unknown = [label for label in labels if label not in seat_ids]
    if unknown:
        raise Invalid(
            f"Showtime {showtime_id} has no seats {', '.join(unknown)}.",
            errors={"seats": [f"Unknown seat: {label}" for label in unknown]},
        )
    return seat_ids


def claim_seats(reservation_id: int, seat_ids: dict[str, int], labels: list[str]):
    """Give the seats to the reservation, all or none: Conflict naming the taken ones.

    Only seats that are still free are taken. If fewer rows changed than were
    asked for, someone else holds one of them, and the whole transaction is
    rolled back.
    """
    claimed = db.session.execute(
        update(Seat)
        .where(Seat.id.in_(seat_ids.values()), Seat.reservation_id.is_(None))
        .values(reservation_id=reservation_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed == len(labels):
        return
    db.session.rollback()
    taken = db.session.scalars(
        select(Seat.label).where(Seat.id.in_(seat_ids.values()), Seat.reservation_id.is_not(None))
    ).all()
    taken = sorted(taken, key=lambda label: labels.index(label)) or labels
    raise Conflict(
        f"Seats {', '.join(taken)} are already booked; nothing was booked.", errors={"seats": taken}
    )


def book(user_id: int, showtime_id: int, labels: list[str]) -> Reservation:
    """Book these seats of a showtime for a user, all of them or none."""
    showtime = get_showtime(showtime_id, lock=True)
    if showtime.start_time <= utcnow():
        raise Conflict(f"Showtime {showtime.id} has already started.")
    seat_ids = lock_seats(showtime.id, labels)
    reservation = Reservation(
        user_id=user_id,
        showtime_id=showtime.id,
        status=CONFIRMED,
        total_cents=showtime.price_cents * len(labels),
    )
    db.session.add(reservation)
    db.session.flush()
    claim_seats(reservation.id, seat_ids, labels)
    db.session.execute(
        insert(reservation_seats),
        [{"reservation_id": reservation.id, "seat_id": seat_id} for seat_id in seat_ids.values()],
    )
    bump_showtime_version(showtime.id)
    db.session.commit()
    return db.session.scalar(reservation_query().where(Reservation.id == reservation.id))


def release_seats(reservation_id: int):
    """Free every seat the reservation holds, in the same lock order as a booking."""
    db.session.execute(
        select(Seat.id).where(Seat.reservation_id == reservation_id).order_by(Seat.id).with_for_update()
    )
    db.session.execute(
        update(Seat)
        .where(Seat.reservation_id == reservation_id)
        .values(reservation_id=None)
        .execution_options(synchronize_session=False)
    )


def cancel(reservation_id: int, user) -> Reservation:
    """Cancel ``user``'s reservation (an admin's: anyone's); its seats are free at once."""
    reservation = get_reservation(reservation_id, user)
    if reservation.status == CANCELLED:
        raise Conflict(f"Reservation {reservation_id} is already cancelled.")
    lock_showtimes(Showtime.id == reservation.showtime_id)
    if reservation.showtime.start_time <= utcnow():
        raise Conflict("The showtime has started; the reservation can no longer be cancelled.")
    # Conditional, so that two cancels racing each other cannot both succeed.
    changed = db.session.execute(
        update(Reservation)
        .where(Reservation.id == reservation_id, Reservation.status == CONFIRMED)
        # The cancellation notice is owed until it is sent (send-pending-emails retries it).
        .values(status=CANCELLED, cancelled_at=utcnow(), updated_at=utcnow(), email_status="pending")
        # The email describes the reservation as it now is.
        .execution_options(synchronize_session="evaluate")
    ).rowcount
    if not changed:
        raise Conflict(f"Reservation {reservation_id} is already cancelled.")
    release_seats(reservation_id)
    bump_showtime_version(reservation.showtime_id)
    db.session.commit()
    return reservation


def seat_rows(showtime_id: int, user_id: int) -> tuple[list[dict], int, int]:
    """The seat map's rows in natural order (A2 before A10), with the totals.

    Each seat is "available", "booked", or "yours" when ``user_id`` holds it.
    Returns (rows, seats_total, seats_available).
    """
    seats = db.session.execute(
        select(Seat.label, Seat.row, Reservation.user_id)
        .outerjoin(Reservation, Seat.reservation_id == Reservation.id)
        .where(Seat.showtime_id == showtime_id)
        .order_by(func.length(Seat.row), Seat.row, Seat.number)
    ).all()
    rows, available = [], 0
    for label, row, holder in seats:
        if not rows or rows[-1]["row"] != row:
            rows.append({"row": row, "seats": []})
        if holder is None:
            status, available = "available", available + 1
        else:
            status = "yours" if holder == user_id else "booked"
        rows[-1]["seats"].append({"label": label, "status": status})
    return rows, len(seats), available
