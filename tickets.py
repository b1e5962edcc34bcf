"""Booking references and tickets: secrets, QR codes, reissues and the check-in at the door.

Every seat of a confirmed reservation has one live ticket (a row of ``tickets``
whose ``voided_at`` is NULL). Its secret is what the QR code carries: 32 characters
of base32 (160 bits), the HMAC-SHA256 of the row's random 128-bit ``nonce`` under the
server's ticket key (TICKET_SECRET_KEY, or one derived from JWT_SECRET_KEY). The
database keeps the nonce and the secret's SHA-256, never the secret: a leaked dump
lets nobody make a secret that the door accepts, and the secret can still be shown
to its owner again (GET /reservations/<id>/tickets). The key must therefore stay the
same for the life of the tickets.

A check-in is one conditional ``UPDATE ... WHERE checked_in_at IS NULL AND voided_at
IS NULL`` whose row count says who won: of two scanners reading one code at once,
one admits and the other is told when the guest came in. Cancelling a seat and
reissuing its ticket void the ticket with the same kind of conditional UPDATE, so a
ticket is never both checked in and voided.
"""

import base64
import hashlib
import hmac
import io
import re
import secrets
from datetime import timedelta

import segno
from flask import current_app
from sqlalchemy import insert, select, update

from errors import Conflict, Invalid, NotFound
from models import (
    CONFIRMED,
    REFERENCE_ALPHABET,
    REFERENCE_LENGTH,
    Movie,
    Reservation,
    ReservationSeat,
    Seat,
    Showtime,
    Ticket,
    db,
    seat_sort_key,
    utcnow,
)
from scheduling import lock_showtimes
from schemas import SEAT_LABEL_RE

SECRET_BYTES = 20  # 160 bits; 32 base32 characters, no padding
SECRET_RE = re.compile(r"^[A-Z2-7]{32}\Z")
UNKNOWN_TICKET = "Unknown ticket."
# Letters a guest may read or type for another: Crockford's base32 decodes them so.
REFERENCE_CONFUSABLES = str.maketrans({"I": "1", "L": "1", "O": "0"})
REFERENCE_RE = re.compile(f"^[{REFERENCE_ALPHABET}]{{{REFERENCE_LENGTH}}}\\Z")


# ---- references -------------------------------------------------------------------


def normalize_reference(text: str) -> str:
    """A reference as stored: any case, hyphens and spaces dropped, I/L read as 1 and O as 0.

    Invalid when what is left is not 8 characters of the alphabet.
    """
    reference = re.sub(r"[\s-]", "", text).upper().translate(REFERENCE_CONFUSABLES)
    if not REFERENCE_RE.match(reference):
        raise Invalid(
            f"A booking reference is {REFERENCE_LENGTH} letters and digits, such as 7KQ3M9XD.",
            errors={"reference": ["Not a booking reference."]},
        )
    return reference


# ---- secrets ----------------------------------------------------------------------


def secret_for(nonce: str) -> str:
    """The ticket secret of a nonce (hex), under the server's ticket key."""
    digest = hmac.new(current_app.config["TICKET_KEY"], bytes.fromhex(nonce), hashlib.sha256).digest()
    return base64.b32encode(digest[:SECRET_BYTES]).decode()


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(reservation_id: int, seat_ids) -> None:
    """Add a live ticket for each seat, in the caller's transaction."""
    rows = []
    for seat_id in seat_ids:
        nonce = secrets.token_hex(16)
        rows.append(
            {"reservation_id": reservation_id, "seat_id": seat_id, "nonce": nonce, "secret_hash": secret_hash(secret_for(nonce))}
        )
    if rows:
        db.session.execute(insert(Ticket), rows)


def qr_code(secret: str):
    return segno.make(secret, error="m")


def qr_svg(secret: str) -> str:
    """The secret's QR code as an SVG document."""
    return qr_code(secret).svg_inline(scale=4, title=None)


def qr_png(secret: str) -> bytes:
    """The secret's QR code as a PNG image (for emails)."""
    buffer = io.BytesIO()
    qr_code(secret).save(buffer, kind="png", scale=6)
    return buffer.getvalue()


# ---- a reservation's tickets ------------------------------------------------------


def live_tickets(reservation: Reservation) -> list[dict]:
    """The live tickets of a reservation, in seat order: seat, types, secret, check-in time."""
    lines = {line.seat_id: line for line in reservation.lines if line.cancelled_at is None}
    if reservation.status != CONFIRMED or not lines:
        return []
    rows = db.session.scalars(
        select(Ticket).where(Ticket.reservation_id == reservation.id, Ticket.voided_at.is_(None))
    ).all()
    tickets = []
    for ticket in sorted((row for row in rows if row.seat_id in lines), key=lambda t: seat_sort_key(lines[t.seat_id].seat)):
        line = lines[ticket.seat_id]
        tickets.append(
            {
                "seat": line.seat.label,
                "seat_type": line.seat_type,
                "ticket_type": line.ticket_type,
                "secret": secret_for(ticket.nonce),
                "checked_in_at": ticket.checked_in_at,
                "issued_at": ticket.created_at,
            }
        )
    return tickets


def with_qr_codes(tickets: list[dict]) -> list[dict]:
    return [{**ticket, "qr_svg": qr_svg(ticket["secret"])} for ticket in tickets]


def void(reservation_id: int, seat_ids: list[int], now) -> list[str]:
    """Void the live tickets of these seats; returns the seats whose ticket is checked in.

    Checked-in tickets are left as they are; the caller then refuses and rolls back.
    """
    db.session.execute(
        update(Ticket)
        .where(
            Ticket.reservation_id == reservation_id,
            Ticket.seat_id.in_(seat_ids),
            Ticket.voided_at.is_(None),
            Ticket.checked_in_at.is_(None),
        )
        .values(voided_at=now)
        .execution_options(synchronize_session=False)
    )
    return list(
        db.session.scalars(
            select(Seat.label)
            .join(Ticket, Ticket.seat_id == Seat.id)
            .where(
                Ticket.reservation_id == reservation_id,
                Ticket.seat_id.in_(seat_ids),
                Ticket.voided_at.is_(None),
                Ticket.checked_in_at.is_not(None),
            )
            .order_by(Seat.id)
        )
    )


def film_end(showtime: Showtime, duration_minutes: int | None):
    """When the film is over: the start plus its length (two hours when unknown)."""
    return showtime.start_time + timedelta(minutes=duration_minutes or 120)


def reissue(reservation: Reservation, label: str) -> dict:
    """A new secret for one seat of the reservation; the old one is void from now on.

    Locks the showtime first, like cancellations, so that a reissue and a cancel of
    the same seat take turns. NotFound for a seat the reservation does not have;
    Conflict when the seat was cancelled, its ticket is checked in, or the film is over.
    """
    if reservation.status != CONFIRMED:
        raise Conflict(f"Reservation {reservation.id} is {reservation.status}; it has no tickets.")
    lock_showtimes(Showtime.id == reservation.showtime_id)
    if film_end(reservation.showtime, reservation.showtime.movie.duration_minutes) <= utcnow():
        raise Conflict("The showtime has ended; its tickets can no longer be reissued.")
    label = label.strip().upper()
    if not SEAT_LABEL_RE.match(label):
        raise NotFound(f"Reservation {reservation.id} has no seat {label[:6]!r}.")
    line = db.session.execute(
        select(ReservationSeat.seat_id, ReservationSeat.cancelled_at, Reservation.status)
        .join(Seat, Seat.id == ReservationSeat.seat_id)
        .join(Reservation, Reservation.id == ReservationSeat.reservation_id)
        .where(ReservationSeat.reservation_id == reservation.id, Seat.label == label)
    ).first()
    if line is None:
        raise NotFound(f"Reservation {reservation.id} has no seat {label[:6]}.")
    if line.cancelled_at is not None or line.status != CONFIRMED:
        raise Conflict(f"Seat {label} was cancelled; it has no ticket.")
    now = utcnow()
    checked_in = void(reservation.id, [line.seat_id], now)
    if checked_in:
        db.session.rollback()
        raise Conflict(f"Seat {label} is checked in; its ticket can no longer be reissued.")
    issue(reservation.id, [line.seat_id])
    db.session.commit()
    return next(ticket for ticket in live_tickets(reservation) if ticket["seat"] == label)


# ---- the door ---------------------------------------------------------------------

CHECK_IN_QUERY = (
    select(
        Ticket,
        Seat.label,
        ReservationSeat.seat_type,
        ReservationSeat.ticket_type,
        ReservationSeat.cancelled_at.label("line_cancelled_at"),
        Reservation.status,
        Reservation.reference,
        Showtime,
        Movie.title,
        Movie.duration_minutes,
    )
    .join(Seat, Seat.id == Ticket.seat_id)
    .join(
        ReservationSeat,
        (ReservationSeat.reservation_id == Ticket.reservation_id) & (ReservationSeat.seat_id == Ticket.seat_id),
    )
    .join(Reservation, Reservation.id == Ticket.reservation_id)
    .join(Showtime, Showtime.id == Reservation.showtime_id)
    .join(Movie, Movie.id == Showtime.movie_id)
)


def local_clock(moment) -> str:
    """``18:02``: a time of day in the cinema's time zone."""
    return moment.astimezone(current_app.config["CINEMA_TZ"]).strftime("%H:%M")


def check_in(secret: str, staff_id: int) -> dict:
    """Admit the ticket with this secret once; what the door shows about it.

    NotFound (one message whatever the cause) for a secret no ticket has; Conflict
    when it was checked in before (saying when), when its seat or booking was
    cancelled, when it was replaced by a reissue, when the film is over, or when
    check-in has not opened yet (CHECK_IN_OPENS_MINUTES before the start).
    """
    secret = secret.strip().upper()
    row = db.session.execute(CHECK_IN_QUERY.where(Ticket.secret_hash == secret_hash(secret))).first() if SECRET_RE.match(secret) else None
    if row is None:
        raise NotFound(UNKNOWN_TICKET)
    ticket, showtime = row.Ticket, row.Showtime
    refuse_entry(ticket, row)
    now = utcnow()
    if film_end(showtime, row.duration_minutes) <= now:
        raise Conflict(f"The showtime ended; seat {row.label}'s ticket is no longer valid.")
    opens = showtime.start_time - timedelta(minutes=current_app.config["CHECK_IN_OPENS_MINUTES"])
    if now < opens:
        raise Conflict(f"Check-in for this showtime opens at {local_clock(opens)}.")
    admitted = db.session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.checked_in_at.is_(None), Ticket.voided_at.is_(None))
        .values(checked_in_at=now, checked_in_by=staff_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not admitted:  # another scanner, a cancel or a reissue got there first
        db.session.rollback()
        row = db.session.execute(
            CHECK_IN_QUERY.where(Ticket.id == ticket.id).execution_options(populate_existing=True)
        ).first()
        refuse_entry(row.Ticket, row)
        raise Conflict("The ticket changed while it was checked in; scan it again.")
    db.session.commit()
    return {
        "seat": row.label,
        "seat_type": row.seat_type,
        "ticket_type": row.ticket_type,
        "reservation_id": ticket.reservation_id,
        "reference": row.reference,
        "showtime_id": showtime.id,
        "movie_title": row.title,
        "start_time": showtime.start_time,
        "hall": showtime.hall,
        "checked_in_at": now,
    }


def refuse_entry(ticket: Ticket, row) -> None:
    """Conflict for a ticket checked in already, cancelled or voided."""
    if ticket.checked_in_at is not None:
        raise Conflict(f"Seat {row.label}: already checked in at {local_clock(ticket.checked_in_at)}.")
    if row.line_cancelled_at is not None or row.status != CONFIRMED:
        raise Conflict(f"Seat {row.label}'s booking was cancelled; the ticket is void.")
    if ticket.voided_at is not None:
        raise Conflict(f"This ticket for seat {row.label} was voided: a newer one was issued.")
