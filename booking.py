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

from datetime import timedelta

from flask import current_app
from sqlalchemy import false, func, insert, select, update
from sqlalchemy.orm import joinedload, selectinload

from errors import Conflict, Invalid, NotFound
from models import (
    CANCELLED,
    CONFIRMED,
    DEFAULT_TICKET_TYPE,
    Hall,
    Reservation,
    ReservationSeat,
    Seat,
    Showtime,
    db,
    utcnow,
)
import seatpicker
import tickets as ticket_rules
from pricing import bookable_ticket_types
from scheduling import bump_showtime_version, get_showtime, lock_showtimes


def reservation_query():
    """Reservations with what a response shows: showtime, movie and seats."""
    return select(Reservation).options(
        joinedload(Reservation.showtime).joinedload(Showtime.movie),
        selectinload(Reservation.lines).joinedload(ReservationSeat.seat),
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


def with_reference(statement, reference: str, user):
    """``statement`` narrowed to the reservation with this reference: ``user``'s, or anyone's for an admin."""
    statement = statement.where(Reservation.reference == reference)
    return statement if user.is_admin else statement.where(Reservation.user_id == user.id)


def lock_seats(showtime_id: int, labels: list[str]) -> dict[str, Seat]:
    """These seats by label (id, type, blocked), locked in id order (PostgreSQL).

    Bookings that share seats queue on the first shared one instead of
    deadlocking each other. Invalid when a label is not a seat of the showtime.
    """
    seats = {
        seat.label: seat
        for seat in db.session.execute(
            select(Seat.label, Seat.id, Seat.seat_type, Seat.blocked)
            .where(Seat.showtime_id == showtime_id, Seat.label.in_(labels))
            .order_by(Seat.id)
            .with_for_update()
        )
    }
    unknown = [label for label in labels if label not in seats]
    if unknown:
        raise Invalid(
            f"Showtime {showtime_id} has no seats {', '.join(unknown)}.",
            errors={"seats": [f"Unknown seat: {label}" for label in unknown]},
        )
    return seats


def check_sellable(seats: dict, may_override: bool):
    """Conflict for blocked seats, and for companion seats sold without an accessible one."""
    blocked = [label for label, seat in seats.items() if seat.blocked]
    if blocked:
        raise Conflict(f"Seats {', '.join(blocked)} are not for sale.", errors={"seats": blocked})
    types = {seat.seat_type for seat in seats.values()}
    if "companion" in types and "accessible" not in types and not may_override:
        companions = [label for label, seat in seats.items() if seat.seat_type == "companion"]
        raise Conflict(
            f"Seats {', '.join(companions)} are companion seats: they are sold together with "
            "the wheelchair space beside them. Add that space to the booking.",
            errors={"seats": companions},
        )


def claim_seats(reservation_id: int, seat_ids: dict[str, int], labels: list[str]):
    """Give the seats to the reservation, all or none: Conflict naming the taken ones.

    Only seats that are still free are taken. If fewer rows changed than were
    asked for, someone else holds one of them, and the whole transaction is
    rolled back.
    """
    claimed = db.session.execute(
        update(Seat)
        .where(Seat.id.in_(seat_ids.values()), Seat.reservation_id.is_(None), Seat.blocked.is_(false()))
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


def book(
    user_id: int, showtime_id: int, tickets: dict[str, str], may_override: bool = False, on_booked=None
) -> Reservation:
    """Book seats of a showtime for a user, all of them or none.

    ``tickets`` maps each seat label to its ticket type; each line is priced at
    the showtime's price for the seat's type, through the ticket type's rule,
    and keeps that price whatever happens to the prices later.
    ``may_override`` (admins) sells companion seats on their own. ``on_booked``
    is called with the new reservation's id just before the commit, so that what it
    writes commits (or not) together with the booking.
    """
    labels = list(tickets)
    ticket_types = bookable_ticket_types(tickets.values())
    showtime = get_showtime(showtime_id, lock=True)
    if showtime.start_time <= utcnow():
        raise Conflict(f"Showtime {showtime.id} has already started.")
    seats = lock_seats(showtime.id, labels)
    check_sellable(seats, may_override)
    lines = [
        {
            "seat_id": seat.id,
            "seat_type": seat.seat_type,
            "ticket_type": tickets[label],
            "price_cents": ticket_types[tickets[label]].price_for(showtime.price_of(seat.seat_type)),
        }
        for label, seat in seats.items()
    ]
    reservation = Reservation(
        user_id=user_id,
        showtime_id=showtime.id,
        status=CONFIRMED,
        total_cents=sum(line["price_cents"] for line in lines),
    )
    db.session.add(reservation)
    db.session.flush()
    claim_seats(reservation.id, {label: seat.id for label, seat in seats.items()}, labels)
    db.session.execute(insert(ReservationSeat), [{"reservation_id": reservation.id, **line} for line in lines])
    ticket_rules.issue(reservation.id, [line["seat_id"] for line in lines])
    bump_showtime_version(showtime.id)
    if on_booked is not None:
        on_booked(reservation.id)
    db.session.commit()
    return db.session.scalar(reservation_query().where(Reservation.id == reservation.id))


def adult_tickets(labels: list[str]) -> dict[str, str]:
    """The tickets of a booking that names only seats."""
    return dict.fromkeys(labels, DEFAULT_TICKET_TYPE)


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
    return cancel_seats(reservation_id, user)[0]


def cancel_seats(reservation_id: int, user, labels: list[str] | None = None) -> tuple[Reservation, list[str]]:
    """Give back these seats of the reservation (None: every seat it still holds).

    The seats are free at once, their tickets void, their lines keep their price and
    get a ``cancelled_at``; the total drops by those lines' prices. Giving back the
    last seats cancels the reservation. Locks the showtime, then the seats in id
    order, as a booking does. Returns the reservation as it now is and the seats
    given back, in seat order.

    Invalid for a seat the reservation never had; Conflict for one already given
    back, one whose ticket is checked in, a reservation already cancelled, a
    showtime that started, and for its owner (not an admin) from
    CANCELLATION_CUTOFF_MINUTES before the start.
    """
    reservation = get_reservation(reservation_id, user)
    refuse_unless_confirmed(reservation.id, reservation.status)
    lock_showtimes(Showtime.id == reservation.showtime_id)
    check_cancellable(reservation.showtime, user)
    # Read again under the showtime's lock: a cancel that got in first is seen.
    refuse_unless_confirmed(reservation.id, db.session.scalar(select(Reservation.status).where(Reservation.id == reservation_id)))
    lines = db.session.execute(
        select(ReservationSeat.seat_id, Seat.label, ReservationSeat.price_cents, ReservationSeat.cancelled_at)
        .join(Seat, Seat.id == ReservationSeat.seat_id)
        .where(ReservationSeat.reservation_id == reservation_id)
        .order_by(Seat.id)
    ).all()
    held = {line.label: line for line in lines if line.cancelled_at is None}
    chosen = list(held) if labels is None else chosen_seats(reservation_id, lines, held, labels)
    seat_ids = sorted(held[label].seat_id for label in chosen)
    db.session.execute(select(Seat.id).where(Seat.id.in_(seat_ids)).order_by(Seat.id).with_for_update())
    now = utcnow()
    checked_in = ticket_rules.void(reservation_id, seat_ids, now)
    if checked_in:
        db.session.rollback()
        raise Conflict(
            f"Seats {', '.join(checked_in)} are checked in; they cannot be cancelled.", errors={"seats": checked_in}
        )
    db.session.execute(
        update(ReservationSeat)
        .where(
            ReservationSeat.reservation_id == reservation_id,
            ReservationSeat.seat_id.in_(seat_ids),
            ReservationSeat.cancelled_at.is_(None),
        )
        .values(cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Seat)
        .where(Seat.id.in_(seat_ids), Seat.reservation_id == reservation_id)
        .values(reservation_id=None)
        .execution_options(synchronize_session=False)
    )
    kept = [line for line in held.values() if line.seat_id not in seat_ids]
    # The notice of the change is owed until it is sent (send-pending-emails retries it).
    values = {"updated_at": now, "email_status": "pending"}
    if kept:
        values["total_cents"] = sum(line.price_cents for line in kept)
    else:  # the total stays what the seats held until now cost, as its seats list shows them
        values.update(status=CANCELLED, cancelled_at=now)
    # Conditional, so that two cancels racing each other cannot both succeed.
    changed = db.session.execute(
        update(Reservation)
        .where(Reservation.id == reservation_id, Reservation.status == CONFIRMED)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.session.rollback()
        raise Conflict(f"Reservation {reservation_id} is already cancelled.")
    bump_showtime_version(reservation.showtime_id)
    db.session.commit()
    # As it now is, lines included: the answer and the email describe it.
    reservation = db.session.scalar(
        reservation_query().where(Reservation.id == reservation_id).execution_options(populate_existing=True)
    )
    return reservation, [line.seat.label for line in reservation.sorted_lines if line.seat_id in seat_ids]


def refuse_unless_confirmed(reservation_id: int, status: str):
    if status == CANCELLED:
        raise Conflict(f"Reservation {reservation_id} is already cancelled.")
    if status != CONFIRMED:
        raise Conflict(f"Reservation {reservation_id} is {status}; only a confirmed booking can be cancelled.")


def check_cancellable(showtime: Showtime, user):
    """Conflict once the showtime started, and for guests from the cutoff before it."""
    now = utcnow()
    if showtime.start_time <= now:
        raise Conflict("The showtime has started; the reservation can no longer be cancelled.")
    minutes = current_app.config["CANCELLATION_CUTOFF_MINUTES"]
    cutoff = showtime.start_time - timedelta(minutes=minutes)
    if now >= cutoff and not user.is_admin:
        local = cutoff.astimezone(current_app.config["CINEMA_TZ"]).strftime("%Y-%m-%d %H:%M")
        raise Conflict(
            f"Bookings can be cancelled until {minutes} minutes before the start ({local}); "
            "please ask at the box office."
        )


def chosen_seats(reservation_id: int, lines, held: dict, labels: list[str]) -> list[str]:
    """The labels asked for, each a seat the reservation still holds: else Invalid or Conflict."""
    known = {line.label for line in lines}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise Invalid(
            f"Reservation {reservation_id} has no seats {', '.join(unknown)}.",
            errors={"seats": [f"Not a seat of this reservation: {label}" for label in unknown]},
        )
    gone = [label for label in labels if label not in held]
    if gone:
        raise Conflict(f"Seats {', '.join(gone)} are already cancelled.", errors={"seats": gone})
    return labels


def seat_rows(showtime: Showtime, user_id: int) -> tuple[list[dict], int, int]:
    """The seat map's rows in natural order (A2 before A10), with the totals.

    Each seat is "available", "booked", "blocked", or "yours" when ``user_id``
    holds it, with its type, its adult price in dollars and the column it is
    drawn in; each row lists its empty columns (aisles, missing seats) as
    ``gaps``. Returns (rows, seats_total, seats_available).
    """
    seats = db.session.execute(
        select(Seat.label, Seat.row, Seat.number, Seat.column, Seat.seat_type, Seat.blocked, Reservation.user_id)
        .outerjoin(Reservation, Seat.reservation_id == Reservation.id)
        .where(Seat.showtime_id == showtime.id)
        .order_by(func.length(Seat.row), Seat.row, Seat.number)
    ).all()
    prices = {}  # seat type -> dollars, looked up once per type
    rows, available = [], 0
    for label, row, number, column, seat_type, blocked, holder in seats:
        if not rows or rows[-1]["row"] != row:
            rows.append({"row": row, "gaps": [], "seats": []})
        if holder is not None:
            status = "yours" if holder == user_id else "booked"
        elif blocked:
            status = "blocked"
        else:
            status, available = "available", available + 1
        if seat_type not in prices:
            prices[seat_type] = showtime.price_of(seat_type) / 100
        rows[-1]["seats"].append(
            {"label": label, "status": status, "type": seat_type, "price": prices[seat_type], "column": column or number}
        )
    for row in rows:
        taken = {seat["column"] for seat in row["seats"]}
        row["gaps"] = [column for column in range(1, max(taken) + 1) if column not in taken]
    return rows, len(seats), available


def best_available(showtime: Showtime, quantity: int, **wishes) -> seatpicker.Pick:
    """The seats the picker would offer now (see seatpicker.py); holds nothing.

    Rows run front to back in label order (A nearest the screen), the order the seat
    map shows; the hall's plan may name a ``preferred_row``. ``wishes`` are the
    picker's ``seat_types``, ``accessible`` and ``allow_split``. Conflict (NoSeats)
    when no choice fits.
    """
    seats = db.session.execute(
        select(Seat.label, Seat.row, Seat.number, Seat.column, Seat.seat_type, Seat.blocked, Seat.reservation_id)
        .where(Seat.showtime_id == showtime.id)
        .order_by(func.length(Seat.row), Seat.row, Seat.number)
    ).all()
    spots = [
        seatpicker.SeatSpot(label, row, number, column or number, seat_type, holder is None and not blocked)
        for label, row, number, column, seat_type, blocked, holder in seats
    ]
    rows = list(dict.fromkeys(spot.row for spot in spots))
    plan = db.session.scalar(select(Hall.plan).where(Hall.id == showtime.hall_id)) or {}
    preferred = plan.get("preferred_row") if plan.get("preferred_row") in rows else None
    try:
        return seatpicker.best_available(spots, quantity, rows_front_to_back=rows, preferred_row=preferred, **wishes)
    except seatpicker.NoSeats as error:
        raise Conflict(str(error)) from None
