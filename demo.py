"""Demo data: a small cinema to explore the API with (`flask --app app seed-demo`)."""

from datetime import datetime, time, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import func, inspect, select, update

import booking
import pricing
from auth import hash_password
from models import CANCELLED, CONFIRMED, Hall, Movie, Reservation, Showtime, User, db, utcnow
from scheduling import hall_end_time, lay_out_seats

DEMO_ADMIN = {"username": "demo_admin", "email": "admin@demo.cinema", "password": "demo-admin-pass"}
DEMO_USER = {"username": "demo_user", "email": "user@demo.cinema", "password": "demo-user-pass"}
OTHER_GUEST = {"username": "alice", "email": "alice@demo.cinema", "password": "alice-pass-123"}

MOVIES = [
    ("Inception", "Sci-Fi", 148, "A thief who steals secrets through dreams is offered a way home."),
    ("Arrival", "Sci-Fi", 116, "A linguist learns the language of visitors who came without warning."),
    ("The Grand Budapest Hotel", "Comedy", 99, "A concierge and his lobby boy chase a stolen painting."),
    ("Paddington 2", "Family", 103, "A bear with a taste for marmalade clears his name."),
    ("Spirited Away", "Animation", 125, "A girl works in a bathhouse for spirits to free her parents."),
    ("Heat", "Crime", 170, "A detective and a master thief circle each other across Los Angeles."),
    ("Parasite", "Thriller", 132, "A poor family works its way into a rich household."),
    ("Mad Max: Fury Road", "Action", 120, "A desert chase with a war rig, five wives and a drifter."),
    ("Amélie", "Romance", 122, "A shy waitress in Montmartre quietly changes the lives around her."),
    ("Get Out", "Horror", 104, "A weekend with his girlfriend's family goes very wrong."),
    ("Free Solo", "Documentary", 100, "A climber scales El Capitan without a rope."),
    ("Whiplash", "Drama", 106, "A young drummer meets a teacher who will stop at nothing."),
]
# Two halls with seat plans: premium back rows, wheelchair spaces with a companion
# seat beside each, aisles.
HALLS = {
    "Main": {
        "rows": [
            {"rows": "A-H", "seats": 14, "aisles": [4, 10]},
            {"rows": "I-J", "seats": 14, "aisles": [4, 10], "type": "premium"},
        ],
        "seat_types": {"A1": "accessible", "A2": "companion", "A13": "companion", "A14": "accessible"},
    },
    "Studio 2": {
        "rows": [{"rows": "A-E", "seats": 10, "aisles": [5]}, {"rows": "F", "seats": 10, "aisles": [5], "type": "premium"}],
        "seat_types": {"A1": "accessible", "A2": "companion"},
        "no_seats": ["C10"],
    },
}
PREMIUM_EXTRA_CENTS = 400
# Start times (local) that leave every film above room for cleaning before the next.
SLOTS = [time(12, 0), time(15, 30), time(19, 0), time(22, 30)]
DAYS = 7


def has_data() -> bool:
    """Anything besides an admin created at start-up from the ADMIN_* settings."""
    bootstrap = (current_app.config.get("ADMIN_USERNAME") or "").lower()
    users = db.session.scalar(select(func.count(User.id)).where(User.username_key != bootstrap))
    movies = db.session.scalar(select(func.count(Movie.id)))
    showtimes = db.session.scalar(select(func.count(Showtime.id)))
    return bool(users or movies or showtimes)


def seed() -> dict:
    """Fill the database with the demo cinema; return what was made."""
    users = {}
    for role, account in (("admin", DEMO_ADMIN), ("user", DEMO_USER), ("guest", OTHER_GUEST)):
        users[role] = User(
            username=account["username"],
            email=account["email"],
            password_hash=hash_password(account["password"]),
            is_admin=role == "admin",
        )
    db.session.add_all(users.values())
    movies = [
        Movie(title=title, genre=genre, duration_minutes=minutes, description=description)
        for title, genre, minutes, description in MOVIES
    ]
    db.session.add_all(movies)
    halls = {name: Hall(name=name, plan=plan) for name, plan in HALLS.items()}
    db.session.add_all(halls.values())
    db.session.flush()

    tz = current_app.config["CINEMA_TZ"]
    price = current_app.config["SEAT_PRICE_CENTS"]
    first_day = utcnow().astimezone(tz).date() + timedelta(days=1)
    showtimes = []
    for day in range(DAYS):
        date = first_day + timedelta(days=day)
        for hall_number, hall in enumerate(HALLS):
            for slot_number, slot in enumerate(SLOTS):
                movie = movies[(day * 5 + hall_number * 4 + slot_number) % len(movies)]
                start = datetime.combine(date, slot, tzinfo=tz)
                # Evening shows cost more.
                standard = price + (200 if slot.hour >= 19 else 0)
                showtimes.append(
                    Showtime(
                        movie=movie,
                        hall=hall,
                        hall_id=halls[hall].id,
                        start_time=start,
                        end_time=hall_end_time(movie, start),
                        price_cents=standard,
                        prices={"premium": standard + PREMIUM_EXTRA_CENTS},
                        format="3D" if slot_number == 2 else "2D",
                        audio_language="English",
                        subtitles="German" if slot_number == 3 else None,
                    )
                )
    db.session.add_all(showtimes)
    db.session.flush()
    seats = sum(lay_out_seats(showtime.id, halls[showtime.hall].plan) for showtime in showtimes)
    pricing.add_default_ticket_types()
    db.session.commit()

    bookings = [
        (users["user"], showtimes[2], {"E5": "adult", "E6": "child"}, CONFIRMED),
        (users["user"], showtimes[13], {"C3": "senior"}, CONFIRMED),
        (users["user"], showtimes[20], {"A1": "adult", "A2": "adult"}, CANCELLED),
        (users["guest"], showtimes[2], {"E7": "adult", "E8": "child", "E9": "child"}, CONFIRMED),
        (users["guest"], showtimes[30], {"F5": "senior", "F6": "senior"}, CONFIRMED),
    ]
    for user, showtime, tickets, status in bookings:
        reservation = booking.book(user.id, showtime.id, tickets)
        if status == CANCELLED:
            booking.cancel(reservation.id, user)
    # The demo's guests were never sent an email; nothing is pending.
    db.session.execute(update(Reservation).values(email_status="logged"))
    db.session.commit()
    return {
        "movies": len(movies),
        "showtimes": len(showtimes),
        "seats": seats,
        "reservations": len(bookings),
    }


@click.command("seed-demo")
@click.option("--force", is_flag=True, help="Erase every existing row first.")
@with_appcontext
def seed_demo_command(force):
    """Fill an empty database with a small demo cinema."""
    if not inspect(db.engine).has_table(User.__tablename__):
        upgrade()  # a new database: build the schema from the migrations first
    if has_data():
        if not force:
            raise click.ClickException(
                "The database already has data; nothing was changed. "
                "Use --force to erase everything and load the demo."
            )
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
    made = seed()
    click.echo(
        "Demo cinema ready: {movies} movies, {showtimes} showtimes over {days} days "
        "in halls {halls}, {seats} seats, {reservations} reservations.".format(
            days=DAYS, halls=" and ".join(HALLS), **made
        )
    )
    for role, account in (("admin", DEMO_ADMIN), ("user", DEMO_USER), ("user", OTHER_GUEST)):
        click.echo(f"  {role:5}  username {account['username']!r}  password {account['password']!r}")
