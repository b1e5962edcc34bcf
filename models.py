"""Database models for the cinema booking API.

Times are stored in UTC and always come back timezone-aware; money is stored in
integer cents. The rule that matters most, "a seat belongs to at most one active
reservation", lives in the database: ``Seat.reservation_id`` points at the
reservation that currently holds the seat, and a booking claims seats with one
conditional ``UPDATE ... WHERE reservation_id IS NULL`` whose row count is checked
(see ``app.py``). ``reservation_seats`` keeps every seat a reservation ever had, so
cancelled bookings keep their history.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Optional

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates


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


# Reservation statuses. "held" is reserved for short seat holds with an expiry.
CONFIRMED = "confirmed"
CANCELLED = "cancelled"
HELD = "held"
RESERVATION_STATUSES = (CONFIRMED, CANCELLED, HELD)

# How the latest email of a reservation went (the confirmation, or the cancellation
# notice once cancelled): not yet tried, sent, failed, or written to the log.
EMAIL_STATUSES = ("pending", "sent", "failed", "logged")


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Carried by every token of the user: a token names this account, not only its id,
    # so an id reused after a reset or a deletion opens nothing. A new key ends every session.
    token_key: Mapped[str] = mapped_column(String(32), default=new_token_key)

    reservations: Mapped[list[Reservation]] = relationship(back_populates="user")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.username_key = self.username.lower()
        self.email = self.email.lower()


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleted movies are archived, not erased: reservations keep pointing at them.
    deleted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Bumped on every change: part of the ETags of the movie and its showtimes.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    showtimes: Mapped[list[Showtime]] = relationship(back_populates="movie")


def hall_key(name: str) -> str:
    """What a hall is known by: "Main", "MAIN" and " main " are one room."""
    return " ".join(name.split()).casefold()


def default_hall_key(context) -> str:
    """The key of the hall being inserted, for inserts that bypass the ORM."""
    return hall_key(context.get_current_parameters()["hall"])


class Showtime(db.Model):
    __tablename__ = "showtimes"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="showtime_price_not_negative"),
        Index("ix_showtimes_hall_key_start", "hall_key", "start_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    movie_id: Mapped[int] = mapped_column(ForeignKey("movies.id"), index=True)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When the hall is free again: start + duration + cleaning. Stored so that
    # the overlap check is one indexed query.
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    hall: Mapped[str] = mapped_column(String(50), default="Main")
    # The hall's name folded by hall_key(): what the overlap check compares. A
    # stored column, not an index on lower(hall): on SQLite lower() is the app's
    # own function (database.py), so an index built by any other connection
    # would disagree with the app's queries. Case folding can triple a name's length.
    hall_key: Mapped[str] = mapped_column(String(150), default=default_hall_key)
    price_cents: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Bumped in the same transaction as any change to the showtime or to the
    # status of one of its seats: the ETag of its seat map and of itself.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    movie: Mapped[Movie] = relationship(back_populates="showtimes")
    seats: Mapped[list[Seat]] = relationship(back_populates="showtime")

    @validates("hall")
    def keep_hall_key(self, attribute, hall):
        self.hall_key = hall_key(hall)
        return hall


reservation_seats = Table(
    "reservation_seats",
    db.metadata,
    Column("reservation_id", ForeignKey("reservations.id"), primary_key=True),
    Column("seat_id", ForeignKey("seats.id"), primary_key=True, index=True),
)


class Seat(db.Model):
    __tablename__ = "seats"
    __table_args__ = (
        UniqueConstraint("showtime_id", "label", name="uq_seat_showtime_label"),
        CheckConstraint("number >= 1", name="seat_number_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    showtime_id: Mapped[int] = mapped_column(ForeignKey("showtimes.id"))
    label: Mapped[str] = mapped_column(String(6))
    # "AA12" is row "AA", number 12: kept apart so seats sort naturally.
    row: Mapped[str] = mapped_column(String(2))
    number: Mapped[int]
    # The active reservation holding this seat, or NULL when the seat is free.
    reservation_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("reservations.id"), index=True
    )

    showtime: Mapped[Showtime] = relationship(back_populates="seats")


class Reservation(db.Model):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('confirmed', 'cancelled', 'held')", name="reservation_status_known"
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
    # Only for "held" reservations: when the hold lapses.
    expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    email_status: Mapped[str] = mapped_column(String(16), default="pending")

    user: Mapped[User] = relationship(back_populates="reservations")
    showtime: Mapped[Showtime] = relationship()
    seats: Mapped[list[Seat]] = relationship(secondary=reservation_seats)

    @property
    def seat_labels(self) -> list[str]:
        return [seat.label for seat in sorted(self.seats, key=seat_sort_key)]


class RevokedToken(db.Model):
    """A JWT that was logged out; kept until it would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def seat_sort_key(seat: Seat) -> tuple:
    """Natural seat order: rows A..Z then AA.., and A2 before A10."""
    return (len(seat.row), seat.row, seat.number)
