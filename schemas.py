"""Request and response schemas (marshmallow), shared by validation and the OpenAPI spec."""

import re
from datetime import datetime, time, timezone
from decimal import Decimal, InvalidOperation

import humanize
from flask import current_app
from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema
from webargs.fields import DelimitedList

import seatplans
from models import DEFAULT_TICKET_TYPE, PRICE_RULES, SEAT_TYPES, SHOWTIME_FORMATS, USER_ROLES, utcnow

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}\Z")
# Deliberately simple: something@something.tld, no spaces, one @.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
SEAT_LABEL_RE = re.compile(r"^([A-Z]{1,2})([1-9][0-9]{0,2})\Z")
ROW_RE = re.compile(r"^[A-Z]{1,2}\Z")
ROW_RANGE_RE = re.compile(r"^([A-Z])\s*-\s*([A-Z])\Z")
# C0 and C1 control characters, DEL, and Unicode's line and paragraph separators:
# they end lines in email headers, calendar files and logs, or are invisible.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The same but for the newline and tab that prose may hold.
PROSE_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# Halves of a UTF-16 pair on their own (JSON's "\ud800"): no database can store them.
LONE_SURROGATES = re.compile("[\ud800-\udfff]")


def cinema_tz():
    return current_app.config["CINEMA_TZ"]


def to_utc(value: datetime) -> datetime:
    """Read a naive datetime as cinema local time; return aware UTC."""
    if value.tzinfo is None:
        tz = cinema_tz()
        earlier, later = value.replace(tzinfo=tz, fold=0), value.replace(tzinfo=tz, fold=1)
        # A local time the clocks skip (spring forward) or pass twice (fall back)
        # names no single instant: only an offset can say which one is meant.
        if earlier.utcoffset() != later.utcoffset():
            if earlier.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != value:
                raise ValidationError(
                    f"{value.isoformat()} does not exist in {tz}: the clocks skip it. "
                    "Give another time, or an offset."
                )
            raise ValidationError(
                f"{value.isoformat()} happens twice in {tz} (the clocks go back): add an offset, "
                f"{earlier.isoformat()} for the first or {later.isoformat()} for the second."
            )
        value = earlier
    return value.astimezone(timezone.utc)


def local_day_bounds(day):
    """The UTC instants where a local calendar day starts and the next one starts."""
    # A day with a clock change lasts 23 or 25 hours. Should midnight itself be
    # skipped or repeated, fold=0 (the default) still gives the day's first instant.
    tz = cinema_tz()
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day.fromordinal(day.toordinal() + 1), time.min, tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


# Times outside these years are refused: nothing in a cinema needs them, and
# arithmetic near datetime's limits (year 9999) would overflow.
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999


class LocalDate(fields.Date):
    """A calendar date (YYYY-MM-DD) in the cinema's time zone."""

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
            raise ValidationError(f"Years {EARLIEST_YEAR} to {LATEST_YEAR} only.")
        return day


class LocalDateTime(fields.DateTime):
    """ISO 8601 in and out: naive input is cinema local time, output carries the offset."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            raise ValidationError(f"Years {EARLIEST_YEAR} to {LATEST_YEAR} only.")
        return to_utc(moment)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(cinema_tz()).isoformat()


class Dollars(fields.Field):
    """Money: integer cents inside, a JSON number of dollars outside."""

    default_error_messages = {
        "invalid": "Must be a number of dollars, at most two decimal places.",
        "range": "Must be between 0 and 10000.",
    }

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value / 100

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.make_error("invalid")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise self.make_error("invalid") from None
        if not amount.is_finite():
            raise self.make_error("invalid")
        # The range first: quantize() fails on numbers with more digits than Decimal keeps.
        if not 0 <= amount <= 10000:
            raise self.make_error("range")
        if amount != amount.quantize(Decimal("0.01")):
            raise self.make_error("invalid")
        return int(amount * 100)


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, floats and numeric strings."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """A JSON true or false, nothing that merely looks like one (0, "yes")."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


MAX_ID = 2**31 - 1  # ids are 32-bit integers on every database


def Id(**kwargs):
    """An id in a JSON body: a real integer, positive."""
    return StrictInteger(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


def QueryId(**kwargs):
    """An id in a query string, where every value arrives as text."""
    return fields.Integer(strict=False, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class Text(fields.String):
    """A line of text: no control characters, no line breaks, no lone surrogates."""

    controls = CONTROL_CHARACTERS
    default_error_messages = {
        "control": "Must not contain control characters or line breaks.",
        "surrogate": "Must be valid Unicode (a lone surrogate such as \\ud800 is not).",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if LONE_SURROGATES.search(text):
            raise self.make_error("surrogate")
        if self.controls is not None and self.controls.search(text):
            raise self.make_error("control")
        return text


class Prose(Text):
    """Text over several lines: newlines and tabs, but no other control characters."""

    controls = PROSE_CONTROL_CHARACTERS
    default_error_messages = {"control": "Must not contain control characters other than newlines and tabs."}


class Secret(Text):
    """A password: any characters that can be encoded (control characters too)."""

    controls = None


def seat_label(value):
    """Normalise one seat label ("a1" -> "A1") or raise ValidationError."""
    if not isinstance(value, str):
        raise ValidationError("Seat labels are strings like 'A1'.")
    label = value.strip().upper()
    if not SEAT_LABEL_RE.match(label):
        raise ValidationError(f"'{value[:20]}' is not a seat label like 'A1' or 'AA12'.")
    return label


class SeatLabel(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return seat_label(super()._deserialize(value, attr, data, **kwargs))


def refuse_long_list(data, name: str, limit: int, message: str):
    """Refuse a list in a body before its items are read, each a possible error of its own."""
    if isinstance(data, dict) and isinstance(data.get(name), list) and len(data[name]) > limit:
        raise ValidationError(message, name)


def no_duplicates(labels):
    seen, duplicates = set(), []
    for label in labels:
        if label in seen and label not in duplicates:
            duplicates.append(label)
        seen.add(label)
    if duplicates:
        raise ValidationError(f"Duplicate seats: {', '.join(duplicates)}.")


# ---- errors -----------------------------------------------------------------------


class ErrorSchema(Schema):
    """Every error body, whatever the status."""

    status = fields.Integer(required=True, metadata={"example": 404})
    error = fields.String(required=True, metadata={"example": "Not Found"})
    message = fields.String(required=True, metadata={"example": "Movie 7 not found."})
    errors = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "Validation errors and conflicts: field name -> what is wrong "
            "(a list of messages, or of the offending values such as seat labels)",
            "example": {"title": ["Missing data for required field."]},
        },
    )
    error_id = fields.String(
        metadata={"description": "500 only: the id under which the error was logged"}
    )


# ---- users and auth ---------------------------------------------------------------


class RegisterSchema(Schema):
    username = Text(
        required=True,
        validate=validate.Regexp(
            USERNAME_RE, error="3 to 32 letters, digits, '_', '.' or '-'."
        ),
        metadata={"example": "john_doe"},
    )
    email = Text(
        required=True,
        validate=[
            validate.Length(max=254),
            validate.Regexp(EMAIL_RE, error="Not a valid email address."),
        ],
        metadata={"example": "john@example.com"},
    )
    password = Secret(
        required=True,
        load_only=True,
        validate=validate.Length(min=8, max=128, error="Between {min} and {max} characters."),
        metadata={"example": "password123"},
    )


class LoginSchema(Schema):
    username = Text(
        required=True,
        validate=validate.Length(min=1, max=254),
        metadata={"description": "Username or email", "example": "john_doe"},
    )
    password = Secret(required=True, load_only=True, validate=validate.Length(min=1, max=128))


class LogoutQuerySchema(Schema):
    everywhere = fields.Boolean(
        load_default=False, metadata={"description": "End every session of the user, not only this one"}
    )


class UserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    email = fields.String()
    is_admin = fields.Boolean()
    role = fields.String(metadata={"enum": list(USER_ROLES)})
    created_at = LocalDateTime()


class LoginUserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    is_admin = fields.Boolean()
    role = fields.String(metadata={"enum": list(USER_ROLES)})


class RegisterResponseSchema(Schema):
    message = fields.String()
    user = fields.Nested(UserSchema(only=("id", "username", "email", "is_admin")))


class TokenResponseSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    user = fields.Nested(LoginUserSchema)


class AccessTokenSchema(Schema):
    access_token = fields.String()


class MessageSchema(Schema):
    message = fields.String()


class PromoteResponseSchema(MessageSchema):
    user = fields.Nested(UserSchema)


class RoleSchema(Schema):
    role = Text(
        required=True,
        validate=validate.OneOf(USER_ROLES),
        metadata={"example": "staff", "description": "admin: everything; staff: check-in at the door; user: bookings"},
    )


# ---- lists ------------------------------------------------------------------------


class PageQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class UsersQuerySchema(PageQuerySchema):
    pass


# ---- movies -----------------------------------------------------------------------


class MovieSchema(Schema):
    id = fields.Integer(dump_only=True)
    title = Text(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"example": "Inception"},
    )
    genre = Text(
        required=True,
        validate=validate.Length(min=1, max=50),
        metadata={"example": "Sci-Fi"},
    )
    description = Prose(
        allow_none=True,
        validate=validate.Length(max=5000),
        metadata={"example": "A thief who steals corporate secrets..."},
    )
    poster_url = Text(
        allow_none=True,
        validate=[
            validate.Length(max=500),
            validate.URL(schemes={"http", "https"}, require_tld=False),
        ],
        metadata={"example": "https://res.cloudinary.com/demo/image/upload/inception.jpg"},
    )
    duration_minutes = StrictInteger(
        allow_none=True, validate=validate.Range(min=1, max=600), metadata={"example": 148}
    )
    age_rating = Text(
        allow_none=True,
        validate=validate.Length(min=1, max=16),
        metadata={"description": "As the rating board writes it", "example": "PG-13"},
    )
    language = Text(
        allow_none=True, validate=validate.Length(min=1, max=32), metadata={"example": "English"}
    )
    trailer_url = Text(
        allow_none=True,
        validate=[validate.Length(max=500), validate.URL(schemes={"http", "https"}, require_tld=False)],
        metadata={"example": "https://www.youtube.com/watch?v=YoHD9XEInc0"},
    )
    created_at = LocalDateTime(dump_only=True)

    @validates_schema
    def title_and_genre_not_blank(self, data, **kwargs):
        for name in ("title", "genre"):
            if name in data and not data[name].strip():
                raise ValidationError("Must not be blank.", name)


class MoviesQuerySchema(PageQuerySchema):
    genre = Text(validate=validate.Length(min=1, max=50))


class SearchTerm(Text):
    """A search term: surrounding spaces dropped, blank refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        term = super()._deserialize(value, attr, data, **kwargs).strip()
        if not term:
            raise ValidationError("Must not be blank.")
        return term


class MovieSearchQuerySchema(PageQuerySchema):
    title = SearchTerm(validate=validate.Length(max=200))
    genre = SearchTerm(validate=validate.Length(max=50))
    q = SearchTerm(
        validate=validate.Length(max=200),
        metadata={"description": "Matches the title or the genre"},
    )

    @validates_schema
    def needs_a_criterion(self, data, **kwargs):
        if not any(data.get(name) for name in ("title", "genre", "q")):
            raise ValidationError("Give at least one of title, genre or q.", "_schema")


# ---- showtimes --------------------------------------------------------------------


class ShowtimeSchema(Schema):
    id = fields.Integer()
    movie_id = fields.Integer()
    movie_title = fields.String()
    start_time = LocalDateTime()
    end_time = LocalDateTime(
        metadata={"description": "When the hall is free again (film + cleaning)"}
    )
    hall = fields.String()
    hall_id = fields.Integer()
    price = Dollars(metadata={"description": "A standard seat, adult ticket"})
    prices = fields.Dict(
        keys=fields.String(),
        values=Dollars(),
        metadata={
            "description": "Adult price per seat type",
            "example": {"standard": 10, "premium": 14, "accessible": 10, "companion": 10},
        },
    )
    format = fields.String(metadata={"enum": list(SHOWTIME_FORMATS)})
    audio_language = fields.String(allow_none=True)
    subtitles = fields.String(allow_none=True)
    seats_total = fields.Integer()
    seats_available = fields.Integer()


class SeatTypePrices(fields.Dict):
    """Dollars per seat type; every key a known seat type."""

    def __init__(self, **kwargs):
        super().__init__(
            keys=fields.String(validate=validate.OneOf(SEAT_TYPES)),
            values=Dollars(),
            **kwargs,
        )


class ShowtimeCreateSchema(Schema):
    movie_id = Id(required=True, metadata={"example": 5})
    start_time = LocalDateTime(required=True, metadata={"example": "2030-05-01T18:00:00"})
    hall = Text(
        load_default="Main",
        validate=validate.Length(min=1, max=50),
        metadata={"example": "Main"},
    )
    price = Dollars(metadata={"description": "Standard seat price in dollars", "example": 10})
    prices = SeatTypePrices(
        metadata={
            "description": "Price per seat type in dollars; a type left out costs the standard "
            "price. `standard` here is the same as `price`.",
            "example": {"premium": 14},
        }
    )
    format = fields.String(validate=validate.OneOf(SHOWTIME_FORMATS), metadata={"example": "2D"})
    audio_language = Text(
        allow_none=True, validate=validate.Length(min=1, max=32), metadata={"example": "English"}
    )
    subtitles = Text(
        allow_none=True, validate=validate.Length(min=1, max=32), metadata={"example": "German"}
    )

    @validates_schema
    def hall_not_blank(self, data, **kwargs):
        if "hall" in data and not data["hall"].strip():
            raise ValidationError("Must not be blank.", "hall")

    @validates_schema
    def one_standard_price(self, data, **kwargs):
        standard = (data.get("prices") or {}).get("standard")
        if standard is not None and "price" in data and standard != data["price"]:
            raise ValidationError("prices.standard and price differ; give one.", "prices")


class ShowtimeUpdateSchema(ShowtimeCreateSchema):
    movie_id = Id()
    start_time = LocalDateTime()
    hall = Text(validate=validate.Length(min=1, max=50))


class ShowtimeRangeQuerySchema(PageQuerySchema):
    date = LocalDate(metadata={"description": "Local date, YYYY-MM-DD"})
    from_ = LocalDateTime(data_key="from")
    to = LocalDateTime()
    movie_id = QueryId()
    format = fields.String(validate=validate.OneOf(SHOWTIME_FORMATS))
    audio_language = SearchTerm(validate=validate.Length(max=32), metadata={"description": "Exact, any case"})
    subtitles = SearchTerm(validate=validate.Length(max=32), metadata={"description": "Exact, any case"})
    language = SearchTerm(validate=validate.Length(max=32), metadata={"description": "The movie's, exact, any case"})
    age_rating = SearchTerm(validate=validate.Length(max=16), metadata={"description": "The movie's, exact, any case"})

    @validates_schema
    def range_in_order(self, data, **kwargs):
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError("'from' must not be after 'to'.", "to")


class ShowtimeSearchQuerySchema(ShowtimeRangeQuerySchema):
    @validates_schema
    def needs_a_criterion(self, data, **kwargs):
        if not any(data.get(name) for name in ("date", "from_", "to")):
            raise ValidationError("Give a date, or from and/or to.", "_schema")


class MovieDetailSchema(MovieSchema):
    showtimes = fields.List(fields.Nested(ShowtimeSchema))


# ---- seats ------------------------------------------------------------------------


class SeatsCreateSchema(Schema):
    showtime_id = Id(required=True, metadata={"example": 3})
    seats = fields.List(
        SeatLabel(),
        validate=validate.Length(min=1, max=1000),
        metadata={"example": ["A1", "A2", "A3"]},
    )
    rows = fields.Raw(
        metadata={
            "description": 'A range of single letters like "A-J", or a list like ["A", "AA"]',
            "example": "A-J",
        }
    )
    seats_per_row = StrictInteger(validate=validate.Range(min=1, max=999))
    type = fields.String(
        load_default="standard",
        validate=validate.OneOf(SEAT_TYPES),
        metadata={"description": "The seat type of every seat added"},
    )

    @pre_load
    def not_too_many_labels(self, data, **kwargs):
        refuse_long_list(data, "seats", 1000, "At most 1000 seats at once.")
        return data

    @validates_schema
    def labels_or_rows(self, data, **kwargs):
        if "seats" in data:
            if "rows" in data or "seats_per_row" in data:
                raise ValidationError("Give either seats, or rows with seats_per_row.")
            no_duplicates(data["seats"])
            return
        if "rows" not in data or "seats_per_row" not in data:
            raise ValidationError("Give seats, or rows with seats_per_row.")
        rows = parse_rows(data["rows"])
        if len(rows) * data["seats_per_row"] > 1000:
            raise ValidationError("At most 1000 seats at once.")


def parse_rows(value) -> list[str]:
    """ "A-C" -> ["A", "B", "C"]; ["a", "AA"] -> ["A", "AA"]; else ValidationError."""
    if isinstance(value, str):
        match = ROW_RANGE_RE.match(value.strip().upper())
        if not match or match.group(1) > match.group(2):
            raise ValidationError('A row range looks like "A-J".', "rows")
        first, last = (ord(letter) for letter in match.groups())
        return [chr(code) for code in range(first, last + 1)]
    if not isinstance(value, list) or not value or len(value) > 1000:
        raise ValidationError('Give a range like "A-J" or a list of 1 to 1000 rows.', "rows")
    rows = []
    for row in value:
        if not isinstance(row, str) or not ROW_RE.match(row.strip().upper()):
            raise ValidationError("Rows are one or two letters.", "rows")
        rows.append(row.strip().upper())
    if len(set(rows)) != len(rows):
        raise ValidationError("Duplicate rows.", "rows")
    return rows


class SeatsCreatedSchema(MessageSchema):
    seats = fields.List(fields.String())


class SeatSchema(Schema):
    label = fields.String()
    status = fields.String(metadata={"enum": ["available", "booked", "yours", "blocked"]})
    type = fields.String(metadata={"enum": list(SEAT_TYPES)})
    price = Dollars(metadata={"description": "An adult ticket for this seat"})
    column = fields.Integer(metadata={"description": "Where to draw the seat in its row, from 1; aisles leave gaps"})


class SeatRowSchema(Schema):
    row = fields.String()
    gaps = fields.List(
        fields.Integer(), metadata={"description": "Columns of this row with no seat (aisles, pillars)"}
    )
    seats = fields.List(fields.Nested(SeatSchema))


class SeatChangeSchema(Schema):
    seats = fields.List(
        SeatLabel(),
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"example": ["E7", "E8"]},
    )
    type = fields.String(validate=validate.OneOf(SEAT_TYPES), metadata={"example": "premium"})
    blocked = StrictBoolean(
        metadata={"description": "true: never sold (a broken seat); false: for sale again", "example": True}
    )

    @validates_schema
    def something_to_change(self, data, **kwargs):
        if "type" not in data and "blocked" not in data:
            raise ValidationError("Give type and/or blocked.", "_schema")
        try:
            no_duplicates(data.get("seats", []))
        except ValidationError as error:
            raise ValidationError(error.messages, "seats") from None


class SeatChangedSchema(MessageSchema):
    seats = fields.List(fields.String())


class SeatMapSchema(Schema):
    showtime_id = fields.Integer()
    movie_title = fields.String()
    start_time = LocalDateTime()
    hall = fields.String()
    price = Dollars()
    seats_total = fields.Integer()
    seats_available = fields.Integer()
    rows = fields.List(fields.Nested(SeatRowSchema))


# ---- reservations -----------------------------------------------------------------


TICKET_TYPE_CODE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,15}\Z")


class TicketSchema(Schema):
    seat = SeatLabel(required=True, metadata={"example": "A1"})
    ticket_type = Text(
        load_default=DEFAULT_TICKET_TYPE,
        validate=validate.Length(min=1, max=16),
        metadata={"example": "child"},
    )


class SeatsOrTickets(Schema):
    """A showtime and its seats: ``seats`` (adult tickets) or ``tickets`` (a type each)."""

    showtime_id = Id(metadata={"example": 3})
    seats = fields.List(
        SeatLabel(),
        validate=validate.Length(min=1, error="Pick at least one seat."),
        metadata={"example": ["A1", "A2"], "description": "Seats, every ticket adult; or give tickets"},
    )
    tickets = fields.List(
        fields.Nested(TicketSchema),
        validate=validate.Length(min=1, error="Pick at least one seat."),
        metadata={
            "description": "A seat and a ticket type each, instead of seats",
            "example": [{"seat": "A1", "ticket_type": "adult"}, {"seat": "A2", "ticket_type": "child"}],
        },
    )
    # The ways of choosing seats a body may use; exactly one of them.
    choices = ("seats", "tickets")

    @pre_load
    def seats_within_limit(self, data, **kwargs):
        limit = current_app.config["MAX_SEATS_PER_RESERVATION"]
        for name in ("seats", "tickets"):
            refuse_long_list(data, name, limit, f"At most {limit} seats per reservation.")
        return data

    @validates_schema
    def seats_or_tickets(self, data, **kwargs):
        given = [name for name in self.choices if name in data]
        if len(given) != 1:
            raise ValidationError(f"Give {', or '.join(self.choices)} (exactly one).", self.choices[0])
        if "showtime_id" not in data and given != ["hold_id"]:
            raise ValidationError("Missing data for required field.", "showtime_id")
        if given[0] not in ("seats", "tickets"):
            return
        field = given[0]
        seats = data["seats"] if "seats" in data else [ticket["seat"] for ticket in data["tickets"]]
        try:
            no_duplicates(seats)
        except ValidationError as error:
            raise ValidationError(error.messages, field) from None


class ReservationCreateSchema(SeatsOrTickets):
    hold_id = Id(metadata={"description": "Confirm this hold (POST /holds) instead: nothing else goes with it"})
    choices = ("seats", "tickets", "hold_id")

    @validates_schema
    def hold_alone(self, data, **kwargs):
        if "hold_id" in data and "showtime_id" in data:
            raise ValidationError("A hold names its showtime already: give hold_id alone.", "hold_id")


class HoldCreateSchema(SeatsOrTickets):
    quantity = StrictInteger(
        validate=validate.Range(min=1, max=50),
        metadata={"description": "Hold the best seats for this many people (instead of seats)", "example": 2},
    )
    ticket_type = Text(
        validate=validate.Length(min=1, max=16),
        metadata={"description": "With quantity: every seat's ticket type (default adult)", "example": "adult"},
    )
    seat_types = fields.List(
        fields.String(validate=validate.OneOf(SEAT_TYPES)),
        validate=validate.Length(min=1, max=len(SEAT_TYPES)),
        metadata={"description": "With quantity: only these seat types"},
    )
    accessible = StrictInteger(
        validate=validate.Range(min=0, max=50),
        metadata={"description": "With quantity: how many seats are wheelchair spaces"},
    )
    allow_split = StrictBoolean(
        metadata={"description": "With quantity: accept seats apart when no group of them is free together"}
    )
    choices = ("seats", "tickets", "quantity")

    @validates_schema
    def wishes_with_quantity(self, data, **kwargs):
        wishes = [name for name in ("ticket_type", "seat_types", "accessible", "allow_split") if name in data]
        if wishes and "quantity" not in data:
            raise ValidationError(f"{', '.join(wishes)} go with quantity only.", wishes[0])
        if data.get("accessible", 0) > data.get("quantity", 0):
            raise ValidationError("At most quantity seats can be accessible.", "accessible")


class ReservationLineSchema(Schema):
    seat = fields.String(attribute="seat.label")
    seat_type = fields.String(metadata={"enum": list(SEAT_TYPES)})
    ticket_type = fields.String()
    price = Dollars(attribute="price_cents", metadata={"description": "Frozen at booking time"})
    cancelled_at = LocalDateTime(allow_none=True, metadata={"description": "When this seat was given back; null while held"})


class ReservationSchema(Schema):
    id = fields.Integer()
    reference = fields.String(metadata={"example": "7KQ3M9XD", "description": "The booking reference (any case)"})
    showtime_id = fields.Integer()
    user_id = fields.Integer()
    seats = fields.List(
        fields.String(),
        attribute="seat_labels",
        metadata={"description": "The seats it holds (cancelled: those it held until then)"},
    )
    lines = fields.List(
        fields.Nested(ReservationLineSchema),
        attribute="sorted_lines",
        metadata={"description": "Every seat it ever had, given-back ones with their cancelled_at"},
    )
    total_price = Dollars(attribute="total_cents", metadata={"description": "The sum of the lines still held"})
    status = fields.String(metadata={"enum": ["confirmed", "cancelled"]})
    created_at = LocalDateTime()
    cancelled_at = LocalDateTime(allow_none=True, metadata={"description": "null until cancelled"})
    confirmed_at = LocalDateTime(
        allow_none=True, metadata={"description": "When it was booked (a hold: when it was confirmed)"}
    )
    movie_title = fields.Function(lambda r: r.showtime.movie.title, metadata={"type": "string"})
    start_time = LocalDateTime(attribute="showtime.start_time")
    hall = fields.String(attribute="showtime.hall")
    email_status = fields.String()
    booked_ago = fields.Method(
        "humanized_age", metadata={"type": "string", "example": "2 hours ago"}
    )

    def humanized_age(self, reservation):
        return humanize.naturaltime(datetime.now(timezone.utc) - reservation.created_at)


class ReservationCreatedSchema(MessageSchema):
    reservation = fields.Nested(ReservationSchema)


class ReservationsQuerySchema(PageQuerySchema):
    all = fields.Boolean(
        load_default=False, metadata={"description": "Admins only: every user's reservations"}
    )
    reference = Text(
        validate=validate.Length(min=1, max=32),
        metadata={
            "example": "7KQ3M9XD",
            "description": "The reservation with this reference (any case; I, L read as 1, O as 0); "
            "yours, or anyone's for an admin",
        },
    )


class CancelSeatsSchema(Schema):
    seats = fields.List(
        SeatLabel(),
        validate=validate.Length(min=1, error="Name at least one seat, or send no seats to cancel all."),
        metadata={"example": ["A3"], "description": "The seats to give back; leave out to cancel every seat"},
    )

    @pre_load
    def seats_within_limit(self, data, **kwargs):
        limit = current_app.config["MAX_SEATS_PER_RESERVATION"]
        refuse_long_list(data, "seats", limit, f"At most {limit} seats per reservation.")
        return data

    @validates_schema
    def seats_once(self, data, **kwargs):
        try:
            no_duplicates(data.get("seats", []))
        except ValidationError as error:
            raise ValidationError(error.messages, "seats") from None


class CancelledSeatsSchema(MessageSchema):
    cancelled_seats = fields.List(fields.String(), metadata={"example": ["A3"]})
    reservation = fields.Nested(ReservationSchema)


class TicketOutSchema(Schema):
    seat = fields.String(metadata={"example": "A1"})
    seat_type = fields.String(metadata={"enum": list(SEAT_TYPES)})
    ticket_type = fields.String(metadata={"example": "adult"})
    secret = fields.String(metadata={"description": "What the QR code carries; whoever has it gets in once"})
    qr_svg = fields.String(metadata={"description": "The QR code of the secret, an SVG document"})
    issued_at = LocalDateTime()
    checked_in_at = LocalDateTime(allow_none=True)


class TicketsSchema(Schema):
    reservation_id = fields.Integer()
    reference = fields.String()
    tickets = fields.List(fields.Nested(TicketOutSchema))


class ReissuedSchema(MessageSchema):
    ticket = fields.Nested(TicketOutSchema)


class CheckInSchema(Schema):
    secret = Text(required=True, validate=validate.Length(min=1, max=64), metadata={"example": "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"})


class CheckedInTicketSchema(Schema):
    seat = fields.String()
    seat_type = fields.String(metadata={"enum": list(SEAT_TYPES)})
    ticket_type = fields.String()
    reservation_id = fields.Integer()
    reference = fields.String()
    showtime_id = fields.Integer()
    movie_title = fields.String()
    start_time = LocalDateTime()
    hall = fields.String()
    checked_in_at = LocalDateTime()


class CheckedInSchema(MessageSchema):
    ticket = fields.Nested(CheckedInTicketSchema)


class HoldSchema(Schema):
    id = fields.Integer()
    showtime_id = fields.Integer()
    user_id = fields.Integer()
    status = fields.Function(
        lambda hold: hold.hold_state(utcnow()),
        metadata={
            "type": "string",
            "enum": ["active", "expired", "released", "confirmed"],
            "description": "confirmed: it became reservation id (GET /reservations/{id})",
        }
    )
    seats = fields.List(fields.String(), attribute="seat_labels")
    lines = fields.List(fields.Nested(ReservationLineSchema), attribute="sorted_lines")
    total_price = Dollars(attribute="total_cents", metadata={"description": "Quoted: what confirming it costs"})
    created_at = LocalDateTime()
    expires_at = LocalDateTime()
    expires_in_seconds = fields.Function(
        lambda hold: hold.seconds_left(utcnow()),
        metadata={"type": "integer", "description": "0 once it is no longer active"},
    )
    movie_title = fields.Function(lambda r: r.showtime.movie.title, metadata={"type": "string"})
    start_time = LocalDateTime(attribute="showtime.start_time")
    hall = fields.String(attribute="showtime.hall")


class HoldCreatedSchema(MessageSchema):
    hold = fields.Nested(HoldSchema)


class BestAvailableQuerySchema(Schema):
    quantity = fields.Integer(
        required=True, validate=validate.Range(min=1, max=50), metadata={"description": "How many seats", "example": 2}
    )
    seat_types = DelimitedList(
        fields.String(validate=validate.OneOf(SEAT_TYPES)),
        metadata={"description": "Only these types, comma-separated (standard,premium)"},
    )
    accessible = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=50),
        metadata={"description": "How many of the seats are wheelchair spaces; companion seats come with them"},
    )
    allow_split = fields.Boolean(
        load_default=False, metadata={"description": "Accept seats apart when no group of them is free together"}
    )

    @validates_schema
    def accessible_within_quantity(self, data, **kwargs):
        if data.get("accessible", 0) > data.get("quantity", 0):
            raise ValidationError("At most quantity seats can be accessible.", "accessible")


class BestAvailableSchema(Schema):
    showtime_id = fields.Integer()
    seats = fields.List(fields.String(), metadata={"example": ["G7", "G8"]})
    together = fields.Boolean(metadata={"description": "In one row, side by side, no aisle between"})
    explanation = fields.String(
        metadata={"example": "2 seats together in row G, the hall's preferred row, centred in the row."}
    )


# ---- halls -------------------------------------------------------------------------


class SeatPlan(fields.Dict):
    """A hall's seat plan (see seatplans.py); checked whole, every problem listed."""

    def _deserialize(self, value, attr, data, **kwargs):
        plan = super()._deserialize(value, attr, data, **kwargs)
        try:
            seatplans.expand(plan)
        except seatplans.PlanError as error:
            raise ValidationError(error.problems) from None
        return plan


PLAN_EXAMPLE = {
    "rows": [
        {"rows": "A-H", "seats": 14, "aisles": [4, 10]},
        {"rows": "J-K", "seats": 14, "aisles": [4, 10], "type": "premium"},
    ],
    "seat_types": {"A1-A2": "accessible", "A3-A4": "companion"},
    "no_seats": ["E7"],
}


class HallSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = Text(required=True, validate=validate.Length(min=1, max=50), metadata={"example": "Studio 1"})
    plan = SeatPlan(
        allow_none=True,
        metadata={
            "description": "Rows of seats with aisles, seat types and missing seats; null for a hall "
            "whose showtimes get their seats by hand (POST /seats). "
            'A 10-row hall: {"rows": [{"rows": "A-J", "seats": 12}]}. 30 rows with two aisles and '
            'premium back rows: {"rows": [{"rows": "A-Z", "seats": 24, "aisles": [6, 18]}, '
            '{"rows": "AA-AD", "seats": 24, "aisles": [6, 18], "type": "premium"}], '
            '"seat_types": {"A1-A2": "accessible", "A3": "companion"}}. Each row block: `rows` '
            '("A-J", "K" or a list), `seats` (1-100 a row), `aisles` (seat numbers an aisle '
            "follows), `type` (standard, premium, accessible, companion). `seat_types` maps "
            'a seat or a range within a row ("A1-A4") to a type; `no_seats` lists seats that '
            "do not exist (a pillar).",
            "example": PLAN_EXAMPLE,
        },
    )
    seats_total = fields.Integer(dump_only=True, metadata={"description": "Seats the plan makes"})
    created_at = LocalDateTime(dump_only=True)

    @validates_schema
    def name_not_blank(self, data, **kwargs):
        if "name" in data and not data["name"].strip():
            raise ValidationError("Must not be blank.", "name")


class HallUpdatedSchema(HallSchema):
    showtimes_updated = fields.Integer(
        metadata={"description": "Upcoming showtimes without bookings that now have the new plan"}
    )
    showtimes_kept = fields.Integer(
        metadata={"description": "Upcoming showtimes with bookings, which keep the plan they had"}
    )


class HallsQuerySchema(PageQuerySchema):
    pass


# ---- ticket types and prices ---------------------------------------------------------


class TicketTypeSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(TICKET_TYPE_CODE_RE, error="Lower-case letters, digits, _ and -, up to 16."),
        metadata={"example": "child"},
    )
    name = Text(required=True, validate=validate.Length(min=1, max=50), metadata={"example": "Child (under 12)"})
    price_rule = fields.String(
        required=True,
        validate=validate.OneOf(PRICE_RULES),
        metadata={
            "description": "percent: `percent` of the seat's price; amount_off: the seat's price "
            "less `amount` dollars (never below 0); fixed_price: `amount` dollars for any seat",
            "example": "percent",
        },
    )
    percent = StrictInteger(
        validate=validate.Range(min=0, max=1000), allow_none=True, metadata={"example": 60}
    )
    amount = Dollars(allow_none=True, metadata={"example": None})
    active = StrictBoolean(load_default=True, metadata={"description": "Inactive types cannot be booked"})

    @validates_schema
    def rule_has_its_value(self, data, partial, **kwargs):
        rule = data.get("price_rule")
        if rule is None:
            if not partial and ("percent" in data or "amount" in data):
                raise ValidationError("Give price_rule with its value.", "price_rule")
            return
        needed, other = ("percent", "amount") if rule == "percent" else ("amount", "percent")
        if data.get(needed) is None:
            raise ValidationError(f"price_rule {rule} needs {needed}.", needed)
        if data.get(other) is not None:
            raise ValidationError(f"price_rule {rule} takes no {other}.", other)


class TicketTypeUpdateSchema(TicketTypeSchema):
    code = fields.String(dump_only=True)
    name = Text(validate=validate.Length(min=1, max=50))
    price_rule = fields.String(validate=validate.OneOf(PRICE_RULES))
    active = StrictBoolean()


class TicketTypesQuerySchema(PageQuerySchema):
    pass


class PriceTableSchema(Schema):
    showtime_id = fields.Integer()
    seat_types = fields.Dict(
        keys=fields.String(), values=Dollars(), metadata={"description": "An adult ticket per seat type"}
    )
    ticket_types = fields.List(fields.Nested(TicketTypeSchema(only=("code", "name", "price_rule", "percent", "amount"))))
    prices = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=Dollars()),
        metadata={
            "description": "seat type -> ticket type -> price in dollars",
            "example": {"standard": {"adult": 10, "child": 6, "senior": 8, "student": 8.5}},
        },
    )


# ---- report -----------------------------------------------------------------------


REPORT_FORMATS = ("json", "csv")


class ReportQuerySchema(Schema):
    from_ = LocalDateTime(data_key="from")
    to = LocalDateTime()
    movie_id = QueryId()
    hall = Text(
        validate=validate.Length(min=1, max=50),
        metadata={"description": "Only showtimes in this hall (its name, any case)", "example": "Main"},
    )
    # Not "format": that name is the showtime filter of the listings (2D, IMAX, ...).
    output = fields.String(
        data_key="format",
        validate=validate.OneOf(REPORT_FORMATS),
        metadata={"description": "json (the default) or csv: the per-showtime rows as a spreadsheet "
                  "file; without it, Accept: text/csv asks for the CSV"},
    )


# The fields of ReportFiguresSchema, in their order in every part of the report.
REPORT_FIGURES = (
    "seats_total", "tickets_sold", "utilization_percent", "reservations", "revenue",
    "cancelled_reservations", "cancelled_tickets", "cancelled_revenue",
    "partly_cancelled_reservations", "holds_created", "holds_confirmed", "hold_conversion_percent",
    "checked_in", "attendance_percent",
)


class ReportFiguresSchema(Schema):
    """What is counted per showtime, and summed per movie, per day and in total."""

    seats_total = fields.Integer()
    tickets_sold = fields.Integer(metadata={"description": "Seats of confirmed reservations"})
    utilization_percent = fields.Float(metadata={"description": "tickets_sold / seats_total, one decimal"})
    reservations = fields.Integer(metadata={"description": "Confirmed reservations"})
    revenue = Dollars(metadata={"description": "What the tickets sold were sold for"})
    cancelled_reservations = fields.Integer()
    cancelled_tickets = fields.Integer(metadata={"description": "Seats given back, alone or with their reservation"})
    cancelled_revenue = Dollars(metadata={"description": "What the cancelled tickets had been sold for"})
    holds_created = fields.Integer(metadata={"description": "Seat holds made (POST /holds), whatever became of them"})
    holds_confirmed = fields.Integer(metadata={"description": "Holds that became bookings (cancelled since or not)"})
    hold_conversion_percent = fields.Float(metadata={"description": "holds_confirmed / holds_created, one decimal"})
    partly_cancelled_reservations = fields.Integer(
        metadata={"description": "Confirmed reservations that gave some of their seats back"}
    )
    checked_in = fields.Integer(metadata={"description": "Tickets the door checked in"})
    attendance_percent = fields.Float(metadata={"description": "checked_in / tickets_sold, one decimal"})


class ReportShowtimeSchema(ReportFiguresSchema):
    """One showtime's row; also the CSV's columns, in this order."""

    class Meta:
        fields = (
            "showtime_id", "movie_id", "movie_title", "start_time", "day", "hall",
            *("seats_booked" if name == "tickets_sold" else name for name in REPORT_FIGURES),
        )

    showtime_id = fields.Integer()
    movie_id = fields.Integer()
    movie_title = fields.String()
    start_time = LocalDateTime()
    day = fields.Date(metadata={"description": "The local date of start_time (CINEMA_TIMEZONE)"})
    hall = fields.String()
    seats_booked = fields.Integer(attribute="tickets_sold", metadata={"description": "Tickets sold"})


class ReportMovieSchema(ReportFiguresSchema):
    class Meta:
        fields = ("movie_id", "movie_title", "showtime_count", *REPORT_FIGURES)

    movie_id = fields.Integer()
    movie_title = fields.String()
    showtime_count = fields.Integer()


class ReportDaySchema(ReportFiguresSchema):
    class Meta:
        fields = ("day", "showtime_count", *REPORT_FIGURES)

    day = fields.Date(metadata={"description": "A local date (CINEMA_TIMEZONE): its showtimes' figures"})
    showtime_count = fields.Integer()


class ReportSeatTypeSchema(Schema):
    seat_type = fields.String()
    tickets_sold = fields.Integer()
    revenue = Dollars()


class ReportTicketTypeSchema(Schema):
    ticket_type = fields.String(metadata={"description": "A ticket type's code"})
    tickets_sold = fields.Integer()
    revenue = Dollars()


REPORT_FIRST_FIGURES = ("reservations", "tickets_sold", "revenue", "cancelled_reservations")


class ReportSchema(ReportFiguresSchema):
    class Meta:
        # The four figures the report began with first, under their first names.
        fields = (
            "total_reservations", "tickets_sold", "revenue_estimate", "cancelled_reservations",
            *(name for name in REPORT_FIGURES if name not in REPORT_FIRST_FIGURES),
            "showtime_count", "time_zone", "movies", "days", "seat_types", "ticket_types", "showtimes",
        )

    total_reservations = fields.Integer(attribute="reservations", metadata={"description": "Confirmed reservations"})
    revenue_estimate = Dollars(attribute="revenue", metadata={"description": "What the tickets sold were sold for"})
    time_zone = fields.String(metadata={"description": "The zone of the days (CINEMA_TIMEZONE)"})
    showtime_count = fields.Integer()
    movies = fields.List(fields.Nested(ReportMovieSchema), metadata={"description": "By title"})
    days = fields.List(fields.Nested(ReportDaySchema), metadata={"description": "By date"})
    seat_types = fields.List(
        fields.Nested(ReportSeatTypeSchema), metadata={"description": "Types that sold a ticket, standard first"}
    )
    ticket_types = fields.List(
        fields.Nested(ReportTicketTypeSchema), metadata={"description": "Types that sold a ticket, by code"}
    )
    showtimes = fields.List(fields.Nested(ReportShowtimeSchema), metadata={"description": "By start time"})


class HealthSchema(Schema):
    status = fields.String()
    database = fields.String()


class PosterSchema(Schema):
    url = fields.String(
        metadata={"description": "The stored image", "example": "https://res.cloudinary.com/demo/image/upload/v1/cinema/posters/abc.jpg"}
    )
    poster_url = fields.String(
        metadata={"description": "A 300x450 poster of it (the same URL when stored locally)"}
    )
    movie = fields.Nested(MovieSchema, allow_none=True, metadata={"description": "The movie given by movie_id, updated"})


# ---- lean dumping for hot responses -----------------------------------------------

# Fields whose output is the value itself, cast: copied without marshmallow's machinery.
PLAIN_FIELDS = {
    fields.String: str,
    Text: str,
    Prose: str,
    fields.Integer: int,
    StrictInteger: int,
    fields.Float: float,
}


class LeanDumper:
    """Gives what ``schema.dump(item)`` gives, several times faster, for hot responses.

    The schema still documents the response (OpenAPI) and decides its fields;
    plain fields are copied, every other field runs its own serialisation.
    """

    def __init__(self, schema: Schema):
        self.schema = schema
        self.plan = []
        for name, field in schema.dump_fields.items():
            attribute = field.attribute or name
            cast = PLAIN_FIELDS.get(type(field)) if "." not in attribute else None
            self.plan.append((field.data_key or name, name, attribute, field, cast))

    def dump(self, item) -> dict:
        body = {}
        is_dict = isinstance(item, dict)
        for key, name, attribute, field, cast in self.plan:
            if cast is None:
                body[key] = field.serialize(name, item, accessor=self.schema.get_attribute)
            else:
                value = item.get(attribute) if is_dict else getattr(item, attribute)
                body[key] = None if value is None else cast(value)
        return body
