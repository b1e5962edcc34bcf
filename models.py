"""Database models for the cinema booking API.

Times are stored in UTC and always come back timezone-aware; money is stored in
integer cents. The rule that matters most, "a seat belongs to at most one active
reservation", lives in the database: ``Seat.reservation_id`` points at the
reservation that currently holds the seat, and a booking claims seats with one
conditional ``UPDATE ... WHERE reservation_id IS NULL`` whose row count is checked
(see ``booking.py``). ``reservation_seats`` keeps every seat a reservation ever had,
with the seat type, ticket type and price it was sold at, so cancelled bookings keep
their history and a total never changes after the sale.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Optional

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    false,
    or_,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A datetime stored as naive UTC and always returned as aware UTC.

    SQLite has no time zones, so every value is normalised to UTC on the way in
    and tagged as UTC on the way out; PostgreSQL behaves the same way.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a time zone")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    # Constraint names fixed by rule, so migrations name them the same on every database.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# Objects stay readable after the commit that ends a request's writes: the
# response is built from them without reloading each one.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


# Reservation statuses. A booking is confirmed, later perhaps cancelled. A seat hold
# (see booking.py) is "held" until its expires_at, then confirmed, released by its
# holder, or "expired" once another write on the showtime takes its seats back.
# A held row whose expires_at has passed is expired already: readers go by the time.
CONFIRMED = "confirmed"
CANCELLED = "cancelled"
HELD = "held"
EXPIRED = "expired"
RELEASED = "released"
RESERVATION_STATUSES = (CONFIRMED, CANCELLED, HELD, EXPIRED, RELEASED)
# The statuses of bookings, as opposed to holds that were never confirmed.
BOOKING_STATUSES = (CONFIRMED, CANCELLED)

# How the latest email of a reservation went (the confirmation, or the cancellation
# notice once cancelled): not yet tried, sent, failed, or written to the log.
EMAIL_STATUSES = ("pending", "sent", "failed", "logged")

# What a seat is; a showtime has a price per type (see Showtime.prices).
SEAT_TYPES = ("standard", "premium", "accessible", "companion")
# The ticket type of a booking that names only seats.
DEFAULT_TICKET_TYPE = "adult"
# How a ticket type's price follows from the seat's price.
PRICE_RULES = ("percent", "amount_off", "fixed_price")
# Projection formats a showtime can have.
SHOWTIME_FORMATS = ("2D", "3D", "IMAX", "IMAX 3D", "4DX", "Dolby Cinema", "ScreenX")


# What a user may do: everything; check tickets in at the door; book for themselves.
ADMIN_ROLE, STAFF_ROLE, USER_ROLE = "admin", "staff", "user"
USER_ROLES = (USER_ROLE, STAFF_ROLE, ADMIN_ROLE)

# Booking references: Crockford's base32 alphabet (no I, L, O or U), 8 characters (40 bits).
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 8


def new_reference() -> str:
    """A random booking reference such as "7KQ3M9XD"."""
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def new_token_key() -> str:
    """A random key for a user's tokens: 16 bytes as 32 hex digits."""
    return secrets.token_hex(16)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    # Lower-cased username: makes "John" and "john" the same account.
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Door staff: may check tickets in (POST /check-ins) and nothing else of an admin's.
    is_staff: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Carried by every token of the user: a token names this account, not only its id,
    # so an id reused after a reset or a deletion opens nothing. A new key ends every session.
    token_key: Mapped[str] = mapped_column(String(32), default=new_token_key)

    reservations: Mapped[list[Reservation]] = relationship(back_populates="user")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.username_key = self.username.lower()
        self.email = self.email.lower()

    @property
    def role(self) -> str:
        """"admin", "staff" or "user" (see USER_ROLES)."""
        return ADMIN_ROLE if self.is_admin else STAFF_ROLE if self.is_staff else USER_ROLE


class Movie(db.Model):
    __tablename__ = "movies"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), index=True)
    genre: Mapped[str] = mapped_column(String(50), index=True)
    description: Mapped[Optional[str]] = mapped_column(Text)
    poster_url: Mapped[Optional[str]] = mapped_column(String(500))
    duration_minutes: Mapped[Optional[int]] = mapped_column(
        CheckConstraint("duration_minutes BETWEEN 1 AND 600", name="movie_duration_range")
    )
    # Free text, as the local rating board writes it: "PG-13", "FSK 12".
    age_rating: Mapped[Optional[str]] = mapped_column(String(16))
    language: Mapped[Optional[str]] = mapped_column(String(32))
    trailer_url: Mapped[Optional[str]] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleted movies are archived, not erased: reservations keep pointing at them.
    deleted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Bumped on every change: part of the ETags of the movie and its showtimes.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    showtimes: Mapped[list[Showtime]] = relationship(back_populates="movie")


def hall_key(name: str) -> str:
    """What a hall is known by: "Main", "MAIN" and " main " are one room."""
    return " ".join(name.split()).casefold()


class Hall(db.Model):
    """A screen. With a seat plan, a showtime scheduled in it gets its seats at once."""

    __tablename__ = "halls"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    # The name folded by hall_key(): "Main" and "MAIN" are one hall. Case folding
    # can triple a name's length.
    name_key: Mapped[str] = mapped_column(String(150), unique=True)
    # The plan as the admin wrote it (see seatplans.py), or None: seats added by hand.
    plan: Mapped[Optional[dict]] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.name_key = hall_key(self.name)


class Showtime(db.Model):
    __tablename__ = "showtimes"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="showtime_price_not_negative"),
        # The overlap check: one hall's showtimes around a time.
        Index("ix_showtimes_hall_id_start", "hall_id", "start_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    movie_id: Mapped[int] = mapped_column(ForeignKey("movies.id"), index=True)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When the hall is free again: start + duration + cleaning. Stored so that
    # the overlap check is one indexed query.
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    # The hall's name as shown; hall_id is the hall itself (every showtime has one).
    hall: Mapped[str] = mapped_column(String(50), default="Main")
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id"))
    # The price of a standard seat; ``prices`` holds the other seat types' prices in
    # cents where they differ (a type left out costs the standard price).
    price_cents: Mapped[int]
    prices: Mapped[Optional[dict]] = mapped_column(JSON(none_as_null=True))
    format: Mapped[str] = mapped_column(String(16), default="2D", server_default="2D")
    audio_language: Mapped[Optional[str]] = mapped_column(String(32))
    subtitles: Mapped[Optional[str]] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Bumped in the same transaction as any change to the showtime or to the
    # status of one of its seats: the ETag of its seat map and of itself.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    movie: Mapped[Movie] = relationship(back_populates="showtimes")
    seats: Mapped[list[Seat]] = relationship(back_populates="showtime")

    def price_of(self, seat_type: str) -> int:
        """The price in cents of a seat of this type (an adult ticket)."""
        return (self.prices or {}).get(seat_type, self.price_cents)


class ReservationSeat(db.Model):
    """One line of a reservation: a seat, and what it was sold as and for."""

    __tablename__ = "reservation_seats"
    __table_args__ = (CheckConstraint("price_cents >= 0", name="line_price_not_negative"),)

    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservations.id"), primary_key=True)
    seat_id: Mapped[int] = mapped_column(ForeignKey("seats.id"), primary_key=True, index=True)
    seat_type: Mapped[str] = mapped_column(String(16), default="standard", server_default="standard")
    ticket_type: Mapped[str] = mapped_column(
        String(16), default=DEFAULT_TICKET_TYPE, server_default=DEFAULT_TICKET_TYPE
    )
    price_cents: Mapped[int] = mapped_column(default=0, server_default="0")
    # When this seat was given back (a partial or whole cancellation); NULL while held.
    cancelled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    seat: Mapped[Seat] = relationship()


reservation_seats = ReservationSeat.__table__


class Seat(db.Model):
    __tablename__ = "seats"
    __table_args__ = (
        UniqueConstraint("showtime_id", "label", name="uq_seat_showtime_label"),
        CheckConstraint("number >= 1", name="seat_number_positive"),
        CheckConstraint(
            "seat_type IN ('standard', 'premium', 'accessible', 'companion')", name="seat_type_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    showtime_id: Mapped[int] = mapped_column(ForeignKey("showtimes.id"))
    label: Mapped[str] = mapped_column(String(6))
    # "AA12" is row "AA", number 12: kept apart so seats sort naturally.
    row: Mapped[str] = mapped_column(String(2))
    number: Mapped[int]
    # Where the seat is drawn in its row, aisles counted; None: at its number.
    column: Mapped[Optional[int]] = mapped_column()
    seat_type: Mapped[str] = mapped_column(String(16), default="standard", server_default="standard")
    # A broken or withheld seat: never sold while set.
    blocked: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The active reservation holding this seat, or NULL when the seat is free.
    reservation_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("reservations.id"), index=True
    )

    showtime: Mapped[Showtime] = relationship(back_populates="seats")


class Reservation(db.Model):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('confirmed', 'cancelled', 'held', 'expired', 'released')",
            name="reservation_status_known",
        ),
        CheckConstraint("total_cents >= 0", name="reservation_total_not_negative"),
        Index("ix_reservations_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    showtime_id: Mapped[int] = mapped_column(ForeignKey("showtimes.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=CONFIRMED)
    total_cents: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    cancelled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Set on holds only: when the hold lapses (the last expiry it had, once it is
    # confirmed, released or expired). NULL: booked in one step.
    expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # When it became a booking: its creation for one-step bookings, the confirmation for holds.
    confirmed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    email_status: Mapped[str] = mapped_column(String(16), default="pending")
    # Short, unambiguous and unique: what a guest reads out at the desk (see new_reference).
    reference: Mapped[str] = mapped_column(String(REFERENCE_LENGTH), unique=True, default=new_reference)

    user: Mapped[User] = relationship(back_populates="reservations")
    showtime: Mapped[Showtime] = relationship()
    # Every seat it ever had (cancelled ones too), with its frozen price.
    lines: Mapped[list[ReservationSeat]] = relationship(viewonly=True)

    @property
    def sorted_lines(self) -> list[ReservationSeat]:
        return sorted(self.lines, key=lambda line: seat_sort_key(line.seat))

    @property
    def kept_lines(self) -> list[ReservationSeat]:
        """The lines it holds; once cancelled as a whole, those it held until then."""
        return [
            line
            for line in self.sorted_lines
            if line.cancelled_at is None or (self.cancelled_at is not None and line.cancelled_at >= self.cancelled_at)
        ]

    @property
    def seat_labels(self) -> list[str]:
        return [line.seat.label for line in self.kept_lines]

    @property
    def cancelled_labels(self) -> list[str]:
        """Seats given back before the rest (partial cancellations)."""
        kept = {line.seat_id for line in self.kept_lines}
        return [line.seat.label for line in self.sorted_lines if line.seat_id not in kept]

    def hold_state(self, now: datetime) -> str:
        """What a hold is at ``now``: "active", "expired", "released" or "confirmed"."""
        if self.status == HELD:
            return "active" if self.expires_at > now else EXPIRED
        if self.status in BOOKING_STATUSES:
            return "confirmed"
        return self.status  # expired or released

    def seconds_left(self, now: datetime) -> int:
        """Whole seconds until an active hold lapses; 0 for any other."""
        if self.hold_state(now) != "active":
            return 0
        return int((self.expires_at - now).total_seconds())


class Ticket(db.Model):
    """One issued ticket secret for a seat of a reservation (see tickets.py).

    The secret itself is never stored: it is derived from ``nonce`` with the server's
    ticket key, and looked up by its SHA-256 (``secret_hash``). A reissue voids the row
    and adds a new one, so an old secret still answers "voided".
    """

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_reservation_seat", "reservation_id", "seat_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservations.id"))
    seat_id: Mapped[int] = mapped_column(ForeignKey("seats.id"))
    nonce: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    voided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    checked_in_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))

def holds_seats(now: datetime):
    """SQL: this reservation still has its seats at ``now`` (booked, or held and not lapsed)."""
    return or_(
        Reservation.status == CONFIRMED,
        and_(Reservation.status == HELD, Reservation.expires_at > now),
    )


class TicketType(db.Model):
    """Who a ticket is for (adult, child, ...) and how its price follows from the seat's.

    ``percent``: ``value`` percent of the seat's price (rounded to the cent);
    ``amount_off``: the seat's price less ``value`` cents, never below zero;
    ``fixed_price``: ``value`` cents whatever the seat.
    """

    __tablename__ = "ticket_types"
    __table_args__ = (
        CheckConstraint("price_rule IN ('percent', 'amount_off', 'fixed_price')", name="price_rule_known"),
        CheckConstraint("value >= 0", name="value_not_negative"),
    )

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    price_rule: Mapped[str] = mapped_column(String(16))
    value: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    position: Mapped[int] = mapped_column(default=100, server_default="100")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def percent(self) -> int | None:
        return self.value if self.price_rule == "percent" else None

    @property
    def amount(self) -> int | None:
        """Cents off or the fixed price; None for a percentage."""
        return None if self.price_rule == "percent" else self.value

    def price_for(self, seat_price_cents: int) -> int:
        if self.price_rule == "percent":
            return (seat_price_cents * self.value + 50) // 100
        if self.price_rule == "amount_off":
            return max(0, seat_price_cents - self.value)
        return self.value


# The ticket types a new database starts with (the migration inserts the same rows).
DEFAULT_TICKET_TYPES = (
    {"code": "adult", "name": "Adult", "price_rule": "percent", "value": 100, "position": 1},
    {"code": "child", "name": "Child (under 12)", "price_rule": "percent", "value": 60, "position": 2},
    {"code": "senior", "name": "Senior (65+)", "price_rule": "amount_off", "value": 200, "position": 3},
    {"code": "student", "name": "Student", "price_rule": "amount_off", "value": 150, "position": 4},
)


class RevokedToken(db.Model):
    """A JWT that was logged out; kept until it would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class IdempotencyKey(db.Model):
    """A retried write's key (Idempotency-Key) and the first answer to it; see idempotency.py.

    Written in the same transaction as the change, with ``status`` NULL; the answer
    is filled in once it is known.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the method, the path and the body: what the key was first used for.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # What the change created (a reservation's id), set before its commit.
    resource_id: Mapped[Optional[int]] = mapped_column()
    status: Mapped[Optional[int]] = mapped_column()
    body: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    location: Mapped[Optional[str]] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def seat_sort_key(seat: Seat) -> tuple:
    """Natural seat order: rows A..Z then AA.., and A2 before A10."""
    return (len(seat.row), seat.row, seat.number)
