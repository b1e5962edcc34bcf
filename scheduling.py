"""The catalogue and its schedule: movies, showtimes in halls, seat layouts, versions (ETags).

Plain functions over the session: they take plain values, commit their own
change, and raise the small exceptions of ``errors`` when a rule says no.
"""

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, insert, or_, select, text, true, update

import posters
import schemas as s
from errors import Conflict, Invalid, NotFound, UpstreamFailed
from models import CONFIRMED, Movie, Reservation, Seat, Showtime, db, hall_key, seat_sort_key, utcnow

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
            check_hall_free(showtime.hall, showtime.start_time, showtime.end_time, showtime.id)
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
        .where(Seat.showtime_id == Showtime.id, Seat.reservation_id.is_(None))
        .correlate(Showtime)
        .scalar_subquery()
    )


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
        "price": showtime.price_cents,
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


def check_hall_free(hall: str, start: datetime, end: datetime, ignore_id=None):
    """Conflict when another showtime occupies ``hall`` (in any spelling) between ``start`` and ``end``."""
    key = hall_key(hall)
    if db.session.get_bind().dialect.name == "postgresql":
        # Serialise schedulers of the same hall so two overlapping inserts cannot race.
        db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:hall))"), {"hall": key})
    statement = (
        select(Showtime.id, Showtime.start_time)
        .where(
            Showtime.hall_key == key,
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
        raise Conflict(f"Hall {hall!r} is taken by showtime {clash.id} starting {when}.")


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


def create_showtime(data: dict) -> tuple[Showtime, Movie]:
    """Schedule a movie in a hall; Conflict when the hall is taken then."""
    movie = get_movie(data["movie_id"])
    must_be_future(data["start_time"])
    hall = data["hall"].strip()
    end = hall_end_time(movie, data["start_time"])
    check_hall_free(hall, data["start_time"], end)
    showtime = Showtime(
        movie=movie,
        start_time=data["start_time"],
        end_time=end,
        hall=hall,
        price_cents=data.get("price", current_app.config["SEAT_PRICE_CENTS"]),
    )
    db.session.add(showtime)
    db.session.commit()
    return showtime, movie


def update_showtime(showtime_id: int, data: dict) -> Showtime:
    """Move a showtime, change its hall, movie or price; Conflict once it is booked."""
    showtime = get_showtime(showtime_id, lock=True)
    if has_confirmed_reservations(Reservation.showtime_id == showtime.id):
        raise Conflict(f"Showtime {showtime_id} has bookings; it cannot change.")
    movie = get_movie(data["movie_id"]) if "movie_id" in data else showtime.movie
    start = data.get("start_time", showtime.start_time)
    if "start_time" in data:
        must_be_future(start)
    hall = data.get("hall", showtime.hall).strip()
    end = hall_end_time(movie, start)
    check_hall_free(hall, start, end, ignore_id=showtime.id)
    showtime.movie, showtime.start_time, showtime.end_time, showtime.hall = movie, start, end, hall
    if "price" in data:
        showtime.price_cents = data["price"]
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


def showtime_and_tag(showtime_id: int):
    """(showtime, movie title, ETag) in one query; the tag follows both versions. NotFound if gone."""
    row = db.session.execute(
        select(Showtime, Movie.title, Movie.version)
        .join(Showtime.movie)
        .where(Showtime.id == showtime_id, Showtime.deleted_at.is_(None))
    ).first()
    if row is None:
        raise NotFound(f"Showtime {showtime_id} not found.")
    showtime, title, movie_version = row
    return showtime, title, f"showtime-{showtime_id}-{showtime.version}-{movie_version}"


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


def add_seats(showtime_id: int, labels: list[str]) -> Showtime:
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
            {"showtime_id": showtime.id, "label": label, "row": seat.row, "number": seat.number}
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
