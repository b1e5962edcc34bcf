"""The catalogue and its schedule: movies, showtimes in halls, seat layouts, versions (ETags).

Plain functions over the session: they take plain values, commit their own
change, and raise the small exceptions of ``errors`` when a rule says no.
"""

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, exists, false, func, insert, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

import posters
import schemas as s
import seatplans
from errors import Conflict, Invalid, NotFound, UpstreamFailed
from models import (
    CONFIRMED,
    EXPIRED,
    HELD,
    SEAT_TYPES,
    Hall,
    Movie,
    Reservation,
    ReservationSeat,
    Seat,
    Showtime,
    UTCDateTime,
    db,
    hall_key,
    holds_seats,
    seat_sort_key,
    utcnow,
)

# ---- movies -----------------------------------------------------------------------


def get_movie(movie_id: int) -> Movie:
    """An active movie, or NotFound."""
    movie = db.session.get(Movie, movie_id)
    if movie is None or movie.deleted_at is not None:
        raise NotFound(f"Movie {movie_id} not found.")
    return movie


def create_movie(data: dict) -> Movie:
    movie = Movie(**data)
    db.session.add(movie)
    db.session.commit()
    return movie


def movies_query(genre: str | None = None):
    """Active movies by title; ``genre`` matches whole (case-insensitive)."""
    statement = select(Movie).where(Movie.deleted_at.is_(None)).order_by(Movie.title, Movie.id)
    if genre:
        statement = statement.where(func.lower(Movie.genre) == genre.lower())
    return statement


def search_movies_query(title=None, genre=None, q=None):
    """Active movies by title, whose title and/or genre contain the terms (case-insensitive)."""
    statement = movies_query()
    if title:
        statement = statement.where(Movie.title.icontains(title, autoescape=True))
    if genre:
        statement = statement.where(Movie.genre.icontains(genre, autoescape=True))
    if q:
        statement = statement.where(
            or_(Movie.title.icontains(q, autoescape=True), Movie.genre.icontains(q, autoescape=True))
        )
    return statement


def movie_and_tag(movie_id: int, now: datetime) -> tuple[Movie, str]:
    """The movie and the ETag of its detail page (it and its upcoming showtimes), in one query."""
    upcoming = (
        select(
            func.count(Showtime.id).label("count"),
            func.coalesce(func.sum(Showtime.version), 0).label("versions"),
            func.coalesce(func.sum(Showtime.id), 0).label("ids"),
        )
        .where(
            Showtime.movie_id == movie_id,
            Showtime.deleted_at.is_(None),
            Showtime.start_time >= now,
        )
        .subquery()
    )
    state = db.session.execute(
        select(Movie, upcoming)
        .join(upcoming, true())  # one row of counts next to the movie
        .where(Movie.id == movie_id, Movie.deleted_at.is_(None))
    ).first()
    if state is None:
        raise NotFound(f"Movie {movie_id} not found.")
    # Changes to the movie, to any upcoming showtime (seats included) or to which
    # showtimes are upcoming all change one of these numbers.
    movie = state.Movie
    return movie, f"movie-{movie_id}-{movie.version}-{state.count}-{state.versions}-{state.ids}"


def upcoming_showtimes(movie_id: int, now: datetime) -> list[dict]:
    rows = db.session.execute(
        showtimes_query().where(Showtime.movie_id == movie_id, Showtime.start_time >= now)
    ).all()
    return [showtime_body(*row) for row in rows]


def update_movie(movie_id: int, data: dict) -> tuple[Movie, str | None]:
    """Change a movie; returns it and the poster URL it no longer shows (or None)."""
    movie = get_movie(movie_id)
    old_poster = movie.poster_url
    duration_changed = "duration_minutes" in data and data["duration_minutes"] != movie.duration_minutes
    for name, value in data.items():
        setattr(movie, name, value)
    movie.version += 1
    if duration_changed:
        # The hall stays busy for the new length: recompute and re-check upcoming showtimes.
        upcoming = db.session.scalars(
            select(Showtime).where(
                Showtime.movie_id == movie.id,
                Showtime.deleted_at.is_(None),
                Showtime.start_time >= utcnow(),
            )
        ).all()
        for showtime in upcoming:
            showtime.end_time = hall_end_time(movie, showtime.start_time)
            hall = db.session.get(Hall, showtime.hall_id)
            check_hall_free(hall, showtime.start_time, showtime.end_time, showtime.id)
    db.session.commit()
    return movie, (old_poster if movie.poster_url != old_poster else None)


def archive_movie(movie_id: int) -> Movie:
    """Take a movie and its showtimes out of every listing; refused while upcoming ones are booked."""
    movie = get_movie(movie_id)
    lock_showtimes(Showtime.movie_id == movie.id)
    if has_confirmed_reservations(Showtime.movie_id == movie.id, Showtime.start_time > utcnow()):
        raise Conflict(f"Movie {movie_id} has upcoming showtimes with bookings; cancel them first.")
    now = utcnow()
    movie.deleted_at = now
    movie.version += 1
    db.session.execute(
        update(Showtime)
        .where(Showtime.movie_id == movie.id, Showtime.deleted_at.is_(None))
        .values(deleted_at=now, version=Showtime.version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return movie


def attach_poster(data: bytes, movie_id: int | None) -> tuple[dict, Movie | None, str | None]:
    """Store an image; with ``movie_id`` make it that movie's poster.

    Returns what the image host stored, the movie (or None) and the poster URL
    the movie no longer shows (or None).
    """
    if movie_id is not None:
        get_movie(movie_id)  # before uploading anything
        db.session.rollback()  # and no lock held during the upload
    try:
        stored = posters.store_poster(data)
    except posters.NotAnImage as error:
        raise Invalid(str(error), errors={"image": [str(error)]}) from None
    except posters.ImageHostError as error:
        raise UpstreamFailed(str(error)) from None
    if movie_id is None:
        return stored, None, None
    movie = db.session.get(Movie, movie_id)
    if movie is None or movie.deleted_at is not None:  # deleted during the upload
        posters.discard_poster(stored["url"])
        raise NotFound(f"Movie {movie_id} not found.")
    old_poster, movie.poster_url = movie.poster_url, stored["url"]
    movie.version += 1  # a new ETag for GET /movies/<id>
    db.session.commit()
    return stored, movie, (old_poster if old_poster != movie.poster_url else None)


def discard_unused_poster(url: str | None):
    """After a commit: remove an image from the host once no active movie shows it."""
    if not url:
        return
    in_use = db.session.scalar(
        select(Movie.id).where(Movie.poster_url == url, Movie.deleted_at.is_(None)).limit(1)
    )
    db.session.rollback()
    if in_use is None:
        posters.discard_poster(url)


# ---- showtimes --------------------------------------------------------------------


def get_showtime(showtime_id: int, lock: bool = False) -> Showtime:
    """The showtime, or NotFound. ``lock`` holds its row until the commit (PostgreSQL).

    Bookings, cancellations and admin changes of a showtime lock its row first,
    always before its seats, so an admin's "has bookings?" check and a booking
    cannot pass each other, and the two never deadlock.
    """
    showtime = db.session.get(Showtime, showtime_id, with_for_update=lock)
    if showtime is None or showtime.deleted_at is not None:
        raise NotFound(f"Showtime {showtime_id} not found.")
    return showtime


def lock_showtimes(*conditions):
    """Hold these showtimes' rows until the commit, in id order (see get_showtime)."""
    db.session.execute(select(Showtime.id).where(*conditions).order_by(Showtime.id).with_for_update())


def lapse_expired_holds(showtime_id: int, now: datetime):
    """Mark the showtime's holds that ran out "expired" and free their seats.

    Called by every write that claims seats, after it has locked the showtime's row
    and before it claims (see booking.py's docstring): the takeover of a lapsed
    hold's seats happens in the claiming transaction, so it commits or rolls back
    with the claim. The UPDATE repeats the conditions, so a hold that was confirmed
    or extended in the meantime keeps its seats.
    """
    lapsed = db.session.scalars(
        update(Reservation)
        .where(Reservation.showtime_id == showtime_id, Reservation.status == HELD, Reservation.expires_at <= now)
        .values(status=EXPIRED, updated_at=now)
        .returning(Reservation.id)
        .execution_options(synchronize_session=False)
    ).all()
    if lapsed:
        free = (Seat.reservation_id.in_(lapsed),)
        db.session.execute(select(Seat.id).where(*free).order_by(Seat.id).with_for_update())
        db.session.execute(
            update(Seat).where(*free).values(reservation_id=None).execution_options(synchronize_session=False)
        )


# Seat counts per showtime as correlated subqueries: one statement for any list.
def seats_total_column():
    return (
        select(func.count(Seat.id))
        .where(Seat.showtime_id == Showtime.id)
        .correlate(Showtime)
        .scalar_subquery()
    )


def seats_available_column():
    return (
        select(func.count(Seat.id))
        .where(
            Seat.showtime_id == Showtime.id,
            Seat.blocked.is_(false()),
            # Free, or held by a hold that has lapsed (see booking.py).
            or_(Seat.reservation_id.is_(None), ~Seat.reservation_id.in_(active_reservations(Seat.showtime_id))),
        )
        .correlate(Showtime)
        .scalar_subquery()
    )


def active_reservations(showtime_id):
    """The ids of the showtime's bookings and unlapsed holds, as a subquery."""
    return select(Reservation.id).where(Reservation.showtime_id == showtime_id, holds_seats(utcnow()))


def showtimes_query():
    """Active showtimes of active movies, with title and seat counts, by start time."""
    return (
        select(
            Showtime,
            Movie.title,
            seats_total_column().label("seats_total"),
            seats_available_column().label("seats_available"),
        )
        .join(Showtime.movie)
        .where(Showtime.deleted_at.is_(None), Movie.deleted_at.is_(None))
        .order_by(Showtime.start_time, Showtime.id)
    )


def showtime_body(showtime, movie_title, seats_total, seats_available) -> dict:
    return {
        "id": showtime.id,
        "movie_id": showtime.movie_id,
        "movie_title": movie_title,
        "start_time": showtime.start_time,
        "end_time": showtime.end_time,
        "hall": showtime.hall,
        "hall_id": showtime.hall_id,
        "price": showtime.price_cents,
        "prices": {seat_type: showtime.price_of(seat_type) for seat_type in SEAT_TYPES},
        "format": showtime.format,
        "audio_language": showtime.audio_language,
        "subtitles": showtime.subtitles,
        "seats_total": seats_total,
        "seats_available": seats_available,
    }


def showtime_with_counts(showtime_id: int) -> dict:
    row = db.session.execute(showtimes_query().where(Showtime.id == showtime_id)).first()
    if row is None:
        raise NotFound(f"Showtime {showtime_id} not found.")
    return showtime_body(*row)


def filter_showtimes(statement, args):
    """Apply ?date=, ?from=, ?to= and ?movie_id= to a showtime query."""
    if args.get("date"):
        day_start, day_end = s.local_day_bounds(args["date"])
        statement = statement.where(Showtime.start_time >= day_start, Showtime.start_time < day_end)
    if args.get("from_"):
        statement = statement.where(Showtime.start_time >= args["from_"])
    if args.get("to"):
        statement = statement.where(Showtime.start_time <= args["to"])
    if args.get("movie_id"):
        statement = statement.where(Showtime.movie_id == args["movie_id"])
    # Exact, any case: a guest picks a language or format from a list.
    for name, column in (
        ("format", Showtime.format),
        ("audio_language", Showtime.audio_language),
        ("subtitles", Showtime.subtitles),
        ("language", Movie.language),
        ("age_rating", Movie.age_rating),
    ):
        if args.get(name):
            statement = statement.where(func.lower(column) == args[name].lower())
    return statement


def listed_showtimes_query(args, upcoming_by_default: bool):
    """Showtimes filtered by ``args``; only upcoming ones when no start bound is given."""
    statement = filter_showtimes(showtimes_query(), args)
    if upcoming_by_default and not (args.get("date") or args.get("from_")):
        statement = statement.where(Showtime.start_time >= utcnow())
    return statement


def hall_end_time(movie: Movie, start: datetime) -> datetime:
    minutes = (movie.duration_minutes or 120) + current_app.config["CLEANING_MINUTES"]
    return start + timedelta(minutes=minutes)


def check_hall_free(hall: Hall, start: datetime, end: datetime, ignore_id=None):
    """Conflict when another showtime occupies ``hall`` between ``start`` and ``end``.

    The hall's row is locked first (PostgreSQL), so two schedulers of one hall
    take turns and two overlapping inserts cannot both pass the check.
    """
    db.session.execute(select(Hall.id).where(Hall.id == hall.id).with_for_update())
    statement = (
        select(Showtime.id, Showtime.start_time)
        .where(
            Showtime.hall_id == hall.id,
            Showtime.deleted_at.is_(None),
            Showtime.start_time < end,
            Showtime.end_time > start,
        )
        .limit(1)
    )
    if ignore_id is not None:
        statement = statement.where(Showtime.id != ignore_id)
    clash = db.session.execute(statement).first()
    if clash:
        when = clash.start_time.astimezone(current_app.config["CINEMA_TZ"]).isoformat()
        raise Conflict(f"Hall {hall.name!r} is taken by showtime {clash.id} starting {when}.")


def has_confirmed_reservations(*conditions) -> bool:
    statement = (
        select(Reservation.id)
        .join(Reservation.showtime)
        .where(Reservation.status == CONFIRMED, *conditions)
        .limit(1)
    )
    return db.session.scalar(statement) is not None


def must_be_future(start: datetime):
    if start <= utcnow():
        raise Invalid("start_time must be in the future.", errors={"start_time": ["Must be in the future."]})


SHOWTIME_DETAILS = ("format", "audio_language", "subtitles")


def create_showtime(data: dict) -> tuple[Showtime, Movie, int]:
    """Schedule a movie in a hall; Conflict when the hall is taken then.

    A hall with a seat plan gives the showtime its seats at once; returns the
    showtime, its movie and how many seats it got.
    """
    movie = get_movie(data["movie_id"])
    must_be_future(data["start_time"])
    hall = hall_named(data["hall"])
    end = hall_end_time(movie, data["start_time"])
    check_hall_free(hall, data["start_time"], end)
    prices = dict(data.get("prices") or {})
    standard = prices.pop("standard", None)
    showtime = Showtime(
        movie=movie,
        start_time=data["start_time"],
        end_time=end,
        hall=hall.name,
        hall_id=hall.id,
        price_cents=data.get("price", standard if standard is not None else current_app.config["SEAT_PRICE_CENTS"]),
        prices=prices or None,
        **{name: data[name] for name in SHOWTIME_DETAILS if name in data},
    )
    db.session.add(showtime)
    db.session.flush()
    seats = lay_out_seats(showtime.id, hall.plan)
    db.session.commit()
    return showtime, movie, seats


def update_showtime(showtime_id: int, data: dict) -> Showtime:
    """Move a showtime, change its hall, movie or price; Conflict once it is booked."""
    showtime = get_showtime(showtime_id, lock=True)
    if has_confirmed_reservations(Reservation.showtime_id == showtime.id):
        raise Conflict(f"Showtime {showtime_id} has bookings; it cannot change.")
    movie = get_movie(data["movie_id"]) if "movie_id" in data else showtime.movie
    start = data.get("start_time", showtime.start_time)
    if "start_time" in data:
        must_be_future(start)
    hall = hall_named(data["hall"]) if "hall" in data else db.session.get(Hall, showtime.hall_id)
    end = hall_end_time(movie, start)
    check_hall_free(hall, start, end, ignore_id=showtime.id)
    moved = hall.id != showtime.hall_id
    showtime.movie, showtime.start_time, showtime.end_time = movie, start, end
    showtime.hall, showtime.hall_id = hall.name, hall.id
    prices = dict(data.get("prices") or {})
    standard = prices.pop("standard", None)
    if "price" in data or standard is not None:
        showtime.price_cents = data.get("price", standard)
    if "prices" in data:
        showtime.prices = prices or None
    for name in SHOWTIME_DETAILS:
        if name in data:
            setattr(showtime, name, data[name])
    if moved and hall.plan and never_booked(showtime.id):
        # Into a hall with a plan: the showtime takes that hall's seats.
        db.session.execute(delete(Seat).where(Seat.showtime_id == showtime.id))
        lay_out_seats(showtime.id, hall.plan)
    showtime.version += 1
    db.session.commit()
    return showtime


def archive_showtime(showtime_id: int):
    """Take a showtime out of every listing; Conflict while it is upcoming and booked."""
    showtime = get_showtime(showtime_id, lock=True)
    if showtime.start_time > utcnow() and has_confirmed_reservations(
        Reservation.showtime_id == showtime.id
    ):
        raise Conflict(f"Showtime {showtime_id} has bookings; cancel them first.")
    showtime.deleted_at = utcnow()
    showtime.version += 1
    db.session.commit()


def bump_showtime_version(showtime_id: int):
    """Change the showtime's ETag, in the transaction that changes it or its seats."""
    db.session.execute(
        update(Showtime)
        .where(Showtime.id == showtime_id)
        .values(version=Showtime.version + 1)
        .execution_options(synchronize_session=False)
    )


# The tag of a showtime and its seat map, built once: the seat map's pollers run it on
# every request. A hold lapses without a write, so the tag also names the next moment
# one of the showtime's holds does.
NEXT_LAPSE = (
    select(func.min(Reservation.expires_at))
    .where(
        Reservation.showtime_id == bindparam("showtime_id"),
        Reservation.status == HELD,
        Reservation.expires_at > bindparam("now", type_=UTCDateTime()),
    )
    .scalar_subquery()
)
SHOWTIME_TAG = (
    select(Showtime.version, Movie.version, NEXT_LAPSE)
    .join(Movie, Showtime.movie_id == Movie.id)
    .where(Showtime.id == bindparam("showtime_id"), Showtime.deleted_at.is_(None))
)


def showtime_tag(showtime_id: int) -> str:
    """The ETag of a showtime and its seat map (one query): its and its movie's versions, the next lapse."""
    row = db.session.connection().execute(SHOWTIME_TAG, {"showtime_id": showtime_id, "now": utcnow()}).first()
    if row is None:
        raise NotFound(f"Showtime {showtime_id} not found.")
    version, movie_version, lapse = row
    tag = f"showtime-{showtime_id}-{version}-{movie_version}"
    return tag if lapse is None else f"{tag}-{lapse:%Y%m%d%H%M%S%f}"


def showtime_and_title(showtime_id: int) -> tuple[Showtime, str]:
    """The showtime and its movie's title; NotFound if gone."""
    row = db.session.execute(
        select(Showtime, Movie.title).join(Showtime.movie).where(Showtime.id == showtime_id, Showtime.deleted_at.is_(None))
    ).first()
    if row is None:
        raise NotFound(f"Showtime {showtime_id} not found.")
    return row[0], row[1]


# ---- seat layouts -----------------------------------------------------------------


def seat_labels(data: dict) -> list[str]:
    """The labels of a POST /seats body: a list of labels, or rows × seats per row."""
    if "seats" in data:
        return data["seats"]
    return [
        f"{row}{number}"
        for row in s.parse_rows(data["rows"])
        for number in range(1, data["seats_per_row"] + 1)
    ]


def add_seats(showtime_id: int, labels: list[str], seat_type: str = "standard") -> Showtime:
    """Add seats to a showtime, all or none; Conflict naming the labels that exist already."""
    showtime = get_showtime(showtime_id)
    existing = db.session.scalars(
        select(Seat.label).where(Seat.showtime_id == showtime.id, Seat.label.in_(labels))
    ).all()
    if existing:
        taken = sorted(existing, key=lambda label: seat_sort_key(split_label(label)))
        raise Conflict(
            f"Seats already exist: {', '.join(taken)}. None were added.", errors={"seats": taken}
        )
    db.session.execute(
        insert(Seat),
        [
            {
                "showtime_id": showtime.id,
                "label": label,
                "row": seat.row,
                "number": seat.number,
                "seat_type": seat_type,
            }
            for label in labels
            for seat in [split_label(label)]
        ],
    )
    bump_showtime_version(showtime.id)
    db.session.commit()
    return showtime


def split_label(label: str) -> Seat:
    match = s.SEAT_LABEL_RE.match(label)
    return Seat(label=label, row=match.group(1), number=int(match.group(2)))


def lay_out_seats(showtime_id: int, plan: dict | None) -> int:
    """Give a showtime the seats of a plan, in one statement; returns how many."""
    if not plan:
        return 0
    seats = [
        {"showtime_id": showtime_id, "label": label, "row": row, "number": number, "column": column, "seat_type": seat_type}
        for label, row, number, column, seat_type in seatplans.expand(plan)
    ]
    db.session.execute(insert(Seat), seats)
    return len(seats)


def never_booked(showtime_id: int) -> bool:
    """No reservation, even a cancelled one, ever had a seat of this showtime."""
    return not db.session.scalar(select(exists().where(Reservation.showtime_id == showtime_id)))


def change_seats(showtime_id: int, labels: list[str], seat_type: str | None, blocked: bool | None):
    """Change the type of seats, or block / unblock them; Conflict when blocking a booked one."""
    showtime = get_showtime(showtime_id, lock=True)
    lapse_expired_holds(showtime.id, utcnow())
    found = dict(
        db.session.execute(
            select(Seat.label, Seat.reservation_id)
            .where(Seat.showtime_id == showtime.id, Seat.label.in_(labels))
            .with_for_update()
        ).all()
    )
    unknown = [label for label in labels if label not in found]
    if unknown:
        raise Invalid(
            f"Showtime {showtime.id} has no seats {', '.join(unknown)}.",
            errors={"seats": [f"Unknown seat: {label}" for label in unknown]},
        )
    chosen = (Seat.showtime_id == showtime.id, Seat.label.in_(labels))
    if blocked:
        booked = [label for label in labels if found[label] is not None]
        if booked:
            raise Conflict(
                f"Seats {', '.join(booked)} are booked or held; cancel those bookings before blocking them.",
                errors={"seats": booked},
            )
        # Only free seats: a booking that got in first keeps its seat.
        changed = db.session.execute(
            update(Seat).where(*chosen, Seat.reservation_id.is_(None)).values(blocked=True)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != len(labels):
            raise Conflict("A seat was booked meanwhile; nothing was blocked. Try again.")
    elif blocked is False:
        db.session.execute(update(Seat).where(*chosen).values(blocked=False).execution_options(synchronize_session=False))
    if seat_type is not None:
        db.session.execute(update(Seat).where(*chosen).values(seat_type=seat_type).execution_options(synchronize_session=False))
    bump_showtime_version(showtime.id)
    db.session.commit()


# ---- halls ------------------------------------------------------------------------


def halls_query():
    return select(Hall).order_by(Hall.name_key, Hall.id)


def get_hall(hall_id: int) -> Hall:
    hall = db.session.get(Hall, hall_id)
    if hall is None:
        raise NotFound(f"Hall {hall_id} not found.")
    return hall


def hall_named(name: str) -> Hall:
    """The hall of that name (any case), made without a plan when it is new."""
    name = name.strip()
    key = hall_key(name)
    # Two schedulers naming a new hall at once: one inserts, neither fails.
    upsert = postgresql_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    db.session.execute(
        upsert(Hall)
        .values(name=name, name_key=key, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name_key"])
    )
    return db.session.scalar(select(Hall).where(Hall.name_key == key))


def seats_in_plan(plan: dict | None) -> int:
    return len(seatplans.expand(plan)) if plan else 0


def create_hall(data: dict) -> Hall:
    name = data["name"].strip()
    if db.session.scalar(select(Hall.id).where(Hall.name_key == hall_key(name))):
        raise Conflict(f"A hall named {name!r} exists already.")
    hall = Hall(name=name, plan=data.get("plan"))
    db.session.add(hall)
    db.session.commit()
    return hall


def update_hall(hall_id: int, data: dict) -> tuple[Hall, int, int]:
    """Rename a hall or change its plan; returns it and how many showtimes took the plan / kept theirs.

    A new plan reaches the hall's upcoming showtimes that were never booked;
    a showtime with bookings keeps the seats it was scheduled with.
    """
    hall = db.session.get(Hall, hall_id, with_for_update=True)
    if hall is None:
        raise NotFound(f"Hall {hall_id} not found.")
    if "name" in data:
        name = data["name"].strip()
        taken = db.session.scalar(select(Hall.id).where(Hall.name_key == hall_key(name), Hall.id != hall.id))
        if taken:
            raise Conflict(f"A hall named {name!r} exists already.")
        hall.name, hall.name_key = name, hall_key(name)
        db.session.execute(
            update(Showtime).where(Showtime.hall_id == hall.id).values(hall=name, version=Showtime.version + 1)
            .execution_options(synchronize_session=False)
        )
    updated = kept = 0
    if "plan" in data:
        hall.plan = data["plan"]
        upcoming = (Showtime.hall_id == hall.id, Showtime.deleted_at.is_(None), Showtime.start_time > utcnow())
        lock_showtimes(*upcoming)
        booked = select(ReservationSeat.reservation_id).join(Reservation).where(Reservation.showtime_id == Showtime.id)
        free_ids = db.session.scalars(select(Showtime.id).where(*upcoming, ~booked.exists())).all()
        kept = db.session.scalar(select(func.count(Showtime.id)).where(*upcoming, booked.exists()))
        for showtime_id in free_ids:
            db.session.execute(delete(Seat).where(Seat.showtime_id == showtime_id))
            lay_out_seats(showtime_id, hall.plan)
            bump_showtime_version(showtime_id)
        updated = len(free_ids)
    db.session.commit()
    return hall, updated, kept
