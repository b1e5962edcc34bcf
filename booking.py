"""The seat rules: claiming seats, releasing them, cancelling, and who sees which seat how.

A seat is sold at most once because the database says so: the claim is one
conditional UPDATE (``reservation_id IS NULL``) whose row count must equal the
number of seats asked for, or the whole transaction is rolled back. On
PostgreSQL the showtime's row is locked first and then its seats in id order,
so concurrent bookings, cancels and admin changes queue instead of passing
each other or deadlocking; on SQLite a write request opens with BEGIN
IMMEDIATE (see ``database.py``), which already serialises writers.

Holds. A hold is a reservation with status "held" and an ``expires_at``: its seats
point at it exactly as a booking's do, so the same conditional claim keeps a seat in
at most one active hold or booking. A hold lapses by the clock, with no background
job: every reader (seat map, best available, seat counts, ETags) treats a seat whose
hold has passed its ``expires_at`` as free. The row itself is only changed by the
next write on that showtime: a booking or a new hold, after locking the showtime
row, first marks the showtime's lapsed holds "expired" and frees their seats
(``lapse_expired_holds``), then claims seats as usual. Confirming, extending and
releasing a hold lock the same showtime row first and then change the hold with a
conditional UPDATE (``status = 'held' AND expires_at > now``), so a confirmation
and a takeover cannot both win: whichever takes the lock second sees what the first
did. On SQLite BEGIN IMMEDIATE serialises the same steps.

Plain functions over the session: they take plain values, commit their own
change, and raise the small exceptions of ``errors`` when a rule says no.
"""

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, false, func, insert, select, update
from sqlalchemy.orm import joinedload, selectinload

from errors import Conflict, Invalid, NotFound
from models import (
    BOOKING_STATUSES,
    CANCELLED,
    CONFIRMED,
    DEFAULT_TICKET_TYPE,
    HELD,
    RELEASED,
    Hall,
    Reservation,
    ReservationSeat,
    Seat,
    Showtime,
    db,
    holds_seats,
    utcnow,
)
import seatpicker
import tickets as ticket_rules
from pricing import bookable_ticket_types
from schemas import cinema_tz
from scheduling import bump_showtime_version, get_showtime, lapse_expired_holds, lock_showtimes


def reservation_query():
    """Reservations with what a response shows: showtime, movie and seats."""
    return select(Reservation).options(
        joinedload(Reservation.showtime).joinedload(Showtime.movie),
        selectinload(Reservation.lines).joinedload(ReservationSeat.seat),
    )


def fresh_reservation(reservation_id: int) -> Reservation:
    """The reservation as the database has it now, even when the session holds an older copy."""
    return db.session.scalar(
        reservation_query().where(Reservation.id == reservation_id).execution_options(populate_existing=True)
    )


def get_reservation(reservation_id: int, user) -> Reservation:
    """The reservation, if it is ``user``'s or ``user`` is an admin; else NotFound."""
    reservation = db.session.scalar(reservation_query().where(Reservation.id == reservation_id))
    if (
        reservation is None
        or (reservation.user_id != user.id and not user.is_admin)
        # A hold is not a booking until it is confirmed (see GET /holds/<id>).
        or reservation.status not in BOOKING_STATUSES
    ):
        # Same answer whether it does not exist or belongs to someone else.
        raise NotFound(f"Reservation {reservation_id} not found.")
    return reservation


def reservations_query(user_id: int | None):
    """Newest first: one user's reservations, or everyone's when ``user_id`` is None."""
    statement = (
        reservation_query()
        .where(Reservation.status.in_(BOOKING_STATUSES))
        .order_by(Reservation.created_at.desc(), Reservation.id.desc())
    )
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
    taken = dict(
        db.session.execute(
            select(Seat.label, Reservation.status)
            .join(Reservation, Seat.reservation_id == Reservation.id)
            .where(Seat.id.in_(seat_ids.values()), holds_seats(utcnow()))
        ).all()
    )
    labels_taken = sorted(taken, key=lambda label: labels.index(label)) or labels
    how = "booked" if HELD not in taken.values() else "booked or held"
    raise Conflict(
        f"Seats {', '.join(labels_taken)} are already {how}; nothing was booked.", errors={"seats": labels_taken}
    )


def open_sale(showtime_id: int) -> tuple[Showtime, datetime]:
    """Lock the showtime for a sale: (showtime, now); Conflict once it has started."""
    showtime = get_showtime(showtime_id, lock=True)
    now = utcnow()
    if showtime.start_time <= now:
        raise Conflict(f"Showtime {showtime.id} has already started.")
    lapse_expired_holds(showtime.id, now)
    return showtime, now


def check_seat_limit(user_id: int, showtime_id: int, wanted: int, limit: int | None):
    """Conflict when the user would have more than ``limit`` seats of the showtime held or booked.

    Runs under the showtime's lock, after the lapsed holds are freed, so every seat
    still pointing at one of the user's holds or bookings counts.
    """
    if limit is None:
        return
    have = db.session.scalar(
        select(func.count(Seat.id))
        .join(Reservation, Seat.reservation_id == Reservation.id)
        .where(Reservation.user_id == user_id, Reservation.showtime_id == showtime_id)
    )
    if have + wanted > limit:
        room = max(limit - have, 0)
        raise Conflict(
            f"At most {limit} seats of one showtime per guest, held or booked: you have {have}, "
            f"so {room} more at most.",
            errors={"seats": [f"limit {limit}, have {have}, asked {wanted}"]},
        )


def book(
    user_id: int,
    showtime_id: int,
    tickets: dict[str, str],
    may_override: bool = False,
    on_booked=None,
    seat_limit: int | None = None,
    hold_seconds: int | None = None,
) -> Reservation:
    """Book seats of a showtime for a user, all of them or none; or hold them.

    ``tickets`` maps each seat label to its ticket type; each line is priced at
    the showtime's price for the seat's type, through the ticket type's rule,
    and keeps that price whatever happens to the prices later.
    ``may_override`` (admins) sells companion seats on their own. ``seat_limit``
    caps the seats of this showtime the user may have held or booked at once.
    With ``hold_seconds`` the seats are held that long instead of booked (a hold,
    confirmed later by ``confirm_hold``). ``on_booked`` is called with the new
    reservation's id just before the commit, so that what it writes commits (or not)
    together with the booking.
    """
    ticket_types = bookable_ticket_types(tickets.values())
    showtime, now = open_sale(showtime_id)
    return sell(user_id, showtime, tickets, ticket_types, now, may_override, seat_limit, hold_seconds, on_booked)


def hold_best_available(
    user_id: int,
    showtime_id: int,
    quantity: int,
    ticket_type: str,
    wishes: dict,
    hold_seconds: int,
    may_override: bool = False,
    seat_limit: int | None = None,
    on_booked=None,
) -> Reservation:
    """Hold the ``quantity`` seats the picker chooses (see ``best_available``), under the lock.

    The pick and the claim run in one transaction with the showtime locked, so the
    seats picked are still free when they are claimed.
    """
    ticket_types = bookable_ticket_types([ticket_type])
    showtime, now = open_sale(showtime_id)
    pick = best_available(showtime, quantity, now=now, **wishes)
    tickets = dict.fromkeys(pick.labels, ticket_type)
    return sell(user_id, showtime, tickets, ticket_types, now, may_override, seat_limit, hold_seconds, on_booked)


def sell(user_id, showtime, tickets, ticket_types, now, may_override, seat_limit, hold_seconds, on_booked):
    """The claim shared by a booking and a hold, on a showtime ``open_sale`` locked."""
    labels = list(tickets)
    seats = lock_seats(showtime.id, labels)
    check_sellable(seats, may_override)
    check_seat_limit(user_id, showtime.id, len(labels), seat_limit)
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
        status=CONFIRMED if hold_seconds is None else HELD,
        total_cents=sum(line["price_cents"] for line in lines),
        created_at=now,
        updated_at=now,
        confirmed_at=now if hold_seconds is None else None,
        expires_at=None if hold_seconds is None else now + timedelta(seconds=hold_seconds),
    )
    db.session.add(reservation)
    db.session.flush()
    claim_seats(reservation.id, {label: seat.id for label, seat in seats.items()}, labels)
    db.session.execute(insert(ReservationSeat), [{"reservation_id": reservation.id, **line} for line in lines])
    if hold_seconds is None:  # a hold's tickets come with its confirmation
        ticket_rules.issue(reservation.id, [line["seat_id"] for line in lines])
    bump_showtime_version(showtime.id)
    if on_booked is not None:
        on_booked(reservation.id)
    db.session.commit()
    return db.session.scalar(reservation_query().where(Reservation.id == reservation.id))


# ---- holds ------------------------------------------------------------------------


def get_hold(hold_id: int, user) -> Reservation:
    """The hold (in any state, confirmed ones too), if it is ``user``'s or they are an admin."""
    hold = db.session.scalar(
        reservation_query().where(Reservation.id == hold_id, Reservation.expires_at.is_not(None))
    )
    if hold is None or (hold.user_id != user.id and not user.is_admin):
        raise NotFound(f"Hold {hold_id} not found.")
    return hold


def not_open(hold: Reservation, now: datetime) -> Conflict:
    """Why a hold can no longer be confirmed, extended or released."""
    state = hold.hold_state(now)
    if state == "confirmed":
        return Conflict(f"Hold {hold.id} is already confirmed: it is reservation {hold.id}.")
    if state == "released":
        return Conflict(f"Hold {hold.id} was released; nothing was booked.")
    return Conflict(f"Hold {hold.id} expired at {clock(hold.expires_at)}; nothing was booked. Hold the seats again.")


def clock(moment: datetime) -> str:
    """A time in the cinema's zone, as a message shows it (18:02:05)."""
    return moment.astimezone(cinema_tz()).strftime("%H:%M:%S")


def lock_hold(hold_id: int, user) -> tuple[Reservation, datetime]:
    """The hold, read again after its showtime's row is locked, and the time (see the docstring)."""
    hold = get_hold(hold_id, user)
    lock_showtimes(Showtime.id == hold.showtime_id)
    db.session.refresh(hold)
    return hold, utcnow()


def change_hold(hold: Reservation, now: datetime, **values):
    """Change the hold only while it is still active at ``now``; Conflict (rolled back) if not."""
    changed = db.session.execute(
        update(Reservation)
        .where(Reservation.id == hold.id, Reservation.status == HELD, Reservation.expires_at > now)
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        problem = not_open(hold, now)
        db.session.rollback()
        raise problem


def confirm_hold(hold_id: int, user, on_booked=None) -> Reservation:
    """Turn an active hold into a booking: the same seats, at the prices quoted when it was made.

    Conflict when it has expired (nothing is booked), was released, or is confirmed
    already; NotFound for someone else's. The reservation keeps the hold's id.
    """
    hold, now = lock_hold(hold_id, user)
    if hold.status == HELD and hold.showtime.deleted_at is not None:
        raise Conflict(f"Showtime {hold.showtime_id} was withdrawn; nothing was booked.")
    if hold.status == HELD and hold.showtime.start_time <= now:
        raise Conflict(f"Showtime {hold.showtime_id} has already started.")
    change_hold(hold, now, status=CONFIRMED, confirmed_at=now)
    ticket_rules.issue(hold.id, [line.seat_id for line in hold.lines])
    bump_showtime_version(hold.showtime_id)
    if on_booked is not None:
        on_booked(hold.id)
    db.session.commit()
    return fresh_reservation(hold.id)


def extend_hold(hold_id: int, user, hold_seconds: int, max_seconds: int) -> Reservation:
    """Give an active hold ``hold_seconds`` from now, never past ``max_seconds`` after it was made.

    Conflict when that adds nothing (the hold is at its cap), or the hold is no
    longer active.
    """
    hold, now = lock_hold(hold_id, user)
    cap = hold.created_at + timedelta(seconds=max_seconds)
    expires_at = min(now + timedelta(seconds=hold_seconds), cap)
    if hold.hold_state(now) == "active" and hold.expires_at >= expires_at:
        db.session.rollback()
        raise Conflict(
            f"Hold {hold_id} cannot be extended further: a hold lasts at most {max_seconds} seconds "
            f"from when it was made (until {clock(cap)}).",
        )
    change_hold(hold, now, expires_at=expires_at)
    bump_showtime_version(hold.showtime_id)
    db.session.commit()
    return fresh_reservation(hold.id)


def release_hold(hold_id: int, user) -> Reservation:
    """Give an active hold's seats back at once."""
    hold, now = lock_hold(hold_id, user)
    change_hold(hold, now, status=RELEASED)
    release_seats(hold.id)
    bump_showtime_version(hold.showtime_id)
    db.session.commit()
    return hold


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
    reservation = fresh_reservation(reservation_id)
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


def seat_rows(showtime: Showtime, user_id: int) -> tuple[list[dict], int, int, set[int]]:
    """The seat map's rows in natural order (A2 before A10), with the totals.

    Each seat is "available", "booked", "held" (someone else's hold that has not
    lapsed), "blocked", or "yours" when ``user_id`` booked or holds it, with its
    type, its adult price in dollars and the column it is drawn in; each row lists
    its empty columns (aisles, missing seats) as ``gaps``. Returns (rows,
    seats_total, seats_available, the users who booked or hold a seat).
    """
    prices = {}  # seat type -> dollars, looked up once per type
    rows, available, holders = [], 0, set()
    for label, row, number, column, seat_type, blocked, holder, held in seat_holders(showtime.id):
        if not rows or rows[-1]["row"] != row:
            rows.append({"row": row, "gaps": [], "seats": []})
        if holder is not None:
            holders.add(holder)
            status = "yours" if holder == user_id else "held" if held else "booked"
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
    return rows, sum(len(row["seats"]) for row in rows), available, holders


# Every seat of a showtime with whoever has it; built once (every seat map runs it).
SEAT_HOLDERS = (
    select(
        Seat.label, Seat.row, Seat.number, Seat.column, Seat.seat_type, Seat.blocked,
        Reservation.user_id, Reservation.status, Reservation.expires_at,
    )
    .outerjoin(Reservation, Seat.reservation_id == Reservation.id)
    .where(Seat.showtime_id == bindparam("showtime_id"))
    .order_by(func.length(Seat.row), Seat.row, Seat.number)
)


def seat_holders(showtime_id: int, now: datetime | None = None) -> list[tuple]:
    """Every seat in natural order: (label, row, number, column, type, blocked, holder, held).

    ``holder`` is the user whose booking or unlapsed hold has the seat (None when it
    is free, a lapsed hold counting as free); ``held`` says it is a hold.
    """
    now = now or utcnow()
    seats = db.session.connection().execute(SEAT_HOLDERS, {"showtime_id": showtime_id}).all()
    return [
        (*seat, None, False)
        if holder is None or (status == HELD and expires_at <= now)
        else (*seat, holder, status == HELD)
        for *seat, holder, status, expires_at in seats
    ]


def best_available(showtime: Showtime, quantity: int, now: datetime | None = None, **wishes) -> seatpicker.Pick:
    """The seats the picker would offer now (see seatpicker.py); holds nothing.

    Rows run front to back in label order (A nearest the screen), the order the seat
    map shows; the hall's plan may name a ``preferred_row``. Seats of unlapsed holds
    are taken. ``wishes`` are the picker's ``seat_types``, ``accessible`` and
    ``allow_split``. Conflict (NoSeats) when no choice fits.
    """
    spots = [
        seatpicker.SeatSpot(label, row, number, column or number, seat_type, holder is None and not blocked)
        for label, row, number, column, seat_type, blocked, holder, _ in seat_holders(showtime.id, now)
    ]
    rows = list(dict.fromkeys(spot.row for spot in spots))
    plan = db.session.scalar(select(Hall.plan).where(Hall.id == showtime.hall_id)) or {}
    preferred = plan.get("preferred_row") if plan.get("preferred_row") in rows else None
    try:
        return seatpicker.best_available(spots, quantity, rows_front_to_back=rows, preferred_row=preferred, **wishes)
    except seatpicker.NoSeats as error:
        raise Conflict(str(error)) from None
