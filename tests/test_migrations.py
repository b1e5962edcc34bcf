"""The migrations are the schema: they build exactly what the models describe."""

import logging
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

import conftest
from app import create_app
from database import INITIAL_REVISION, MIGRATIONS
from conftest import Cinema, assert_error, test_config
from models import db


@pytest.fixture
def empty_database(tmp_path):
    """A database with no tables: a new one on the PostgreSQL server, or a new SQLite file."""
    if conftest.SERVER_URL:
        url = conftest.create_database("cinema_migrations")
        yield url
        drop_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'migrated.db'}"


def drop_database(url):
    for engine in list(conftest.engines):
        engine.dispose()
    conftest.drop_database(url)


def migrated_app(tmp_path, url, **settings):
    settings = {"CREATE_TABLES": False, **settings}
    return create_app(test_config(tmp_path, SQLALCHEMY_DATABASE_URI=url, **settings))


def head_revision():
    return ScriptDirectory(MIGRATIONS).get_current_head()


def schema_differences():
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata), context.get_current_revision()


def test_migrations_build_exactly_the_models_schema(tmp_path, empty_database):
    app = migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)

    with app.app_context():
        differences, revision = schema_differences()

    assert differences == []
    assert revision == head_revision()


def test_the_comparison_notices_a_missing_index(tmp_path, empty_database):
    """The check above can fail: drop an index and it reports it."""
    app = migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)

    with app.app_context():
        with db.engine.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_movies_genre")
        differences, _ = schema_differences()

    assert [difference[0] for difference in differences] == ["add_index"]


def test_a_migrated_database_serves_bookings(tmp_path, empty_database):
    app = migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)
    cinema = Cinema(app.test_client())
    showtime = cinema.showtime_with_seats()

    response = cinema.book(cinema.user(), showtime["id"], ["A1", "A2"])

    assert response.status_code == 201, response.json


def test_auto_migrate_from_the_environment(tmp_path, empty_database, monkeypatch):
    monkeypatch.setenv("AUTO_MIGRATE", "true")
    app = migrated_app(tmp_path, empty_database)

    with app.app_context():
        assert schema_differences() == ([], head_revision())


def test_upgrading_twice_changes_nothing(tmp_path, empty_database):
    migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)
    app = migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)  # a restart

    with app.app_context():
        assert schema_differences() == ([], head_revision())
    assert Cinema(app.test_client()).admin  # the admin made at the first start still logs in


def test_downgrade_to_base_removes_every_table(tmp_path, empty_database):
    app = migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)

    with app.app_context():
        downgrade(directory=MIGRATIONS, revision="base")
        assert inspect(db.engine).get_table_names() == ["alembic_version"]
        upgrade(directory=MIGRATIONS)
        assert schema_differences() == ([], head_revision())


def test_an_unmigrated_database_says_what_to_run(tmp_path, empty_database, caplog):
    with caplog.at_level(logging.WARNING, logger="cinema"):
        app = migrated_app(tmp_path, empty_database)

    assert "flask --app app db upgrade" in caplog.text
    with app.app_context():
        assert inspect(db.engine).get_table_names() == []
    assert app.test_client().get("/health").status_code == 200


def test_a_database_from_before_migrations_is_adopted(tmp_path, empty_database):
    """Tables made by the app itself before it had migrations keep their data."""
    old = migrated_app(tmp_path, empty_database)
    with old.app_context():
        # The first migration is the schema the app used to build by itself.
        upgrade(directory=MIGRATIONS, revision=INITIAL_REVISION)
        db.session.execute(text("DROP TABLE alembic_version"))
        db.session.execute(
            text("INSERT INTO movies (title, genre, created_at) VALUES ('Kept', 'Drama', :now)"),
            {"now": datetime.now(timezone.utc).replace(tzinfo=None)},
        )
        db.session.commit()

    app = migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)

    with app.app_context():
        assert schema_differences() == ([], head_revision())
    cinema = Cinema(app.test_client())
    titles = [movie["title"] for movie in app.test_client().get("/movies", headers=cinema.admin).json]
    assert titles == ["Kept"]


def test_upgrading_gives_every_existing_user_a_key_of_their_own(tmp_path, empty_database):
    """Users from before token keys, with bookings pointing at them, get a random key each."""
    app = migrated_app(tmp_path, empty_database, ADMIN_USERNAME=None)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="eac0434c283a")
        for name in ("ann", "bob", "cid"):
            db.session.execute(
                text("INSERT INTO users (username, username_key, email, password_hash, is_admin, "
                     "created_at) VALUES (:name, :name, :email, 'x', false, :now)"),
                {"name": name, "email": f"{name}@example.com", "now": now},
            )
        db.session.execute(
            text("INSERT INTO movies (title, genre, created_at) VALUES ('Kept', 'Drama', :now)"),
            {"now": now},
        )
        db.session.execute(
            text("INSERT INTO showtimes (movie_id, start_time, end_time, hall, price_cents, "
                 "created_at) SELECT id, :now, :now, 'Main', 1000, :now FROM movies"),
            {"now": now},
        )
        db.session.execute(
            text("INSERT INTO reservations (user_id, showtime_id, status, total_cents, created_at, "
                 "updated_at, email_status) SELECT users.id, showtimes.id, 'confirmed', 1000, "
                 ":now, :now, 'sent' FROM users, showtimes"),
            {"now": now},
        )
        db.session.commit()

        upgrade(directory=MIGRATIONS)

        keys = db.session.execute(text("SELECT token_key FROM users")).scalars().all()
        booked = db.session.scalar(
            text("SELECT count(*) FROM reservations JOIN users ON users.id = reservations.user_id")
        )
        db.session.commit()
        assert schema_differences() == ([], head_revision())
    assert len(keys) == 3 and len(set(keys)) == 3
    assert all(len(key) == 32 for key in keys)
    assert booked == 3


def test_upgrading_folds_the_hall_names_of_existing_showtimes(tmp_path, empty_database):
    """Showtimes scheduled before halls were compared by folded name still block their hall."""
    old = migrated_app(tmp_path, empty_database)
    start = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) + timedelta(days=30)
    with old.app_context():
        upgrade(directory=MIGRATIONS, revision="eac0434c283a")
        db.session.execute(
            text("INSERT INTO movies (title, genre, created_at) VALUES ('Kept', 'Drama', :now)"),
            {"now": start},
        )
        db.session.execute(
            text(
                "INSERT INTO showtimes (movie_id, start_time, end_time, hall, price_cents, created_at)"
                " VALUES (1, :start, :end, 'Salle  Été', 1000, :start)"
            ),
            {"start": start, "end": start + timedelta(hours=2)},
        )
        db.session.commit()

    app = migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)

    with app.app_context():
        assert schema_differences() == ([], head_revision())
    cinema = Cinema(app.test_client())
    overlapping = (start + timedelta(hours=1)).isoformat() + "Z"
    response = app.test_client().post(
        "/showtimes", json={"movie_id": 1, "start_time": overlapping, "hall": "SALLE été"}, headers=cinema.admin
    )
    assert_error(response, 409, "showtime 1")


def test_existing_halls_seats_and_bookings_migrate_to_halls_and_priced_lines(tmp_path, empty_database):
    """Hall names become halls without a plan; seats become standard; lines keep the price paid."""
    old = migrated_app(tmp_path, empty_database)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with old.app_context():
        upgrade(directory=MIGRATIONS, revision="eac0434c283a")
        statements = [
            "INSERT INTO users (id, username, username_key, email, password_hash, is_admin, created_at)"
            " VALUES (7, 'ann', 'ann', 'ann@example.com', 'x', false, :now)",
            "INSERT INTO movies (id, title, genre, created_at) VALUES (1, 'Kept', 'Drama', :now)",
            "INSERT INTO showtimes (id, movie_id, start_time, end_time, hall, price_cents, created_at)"
            " VALUES (1, 1, :now, :now, 'Main', 1200, :now), (2, 1, :now, :now, 'main', 900, :now),"
            " (3, 1, :now, :now, 'Studio 2', 1000, :now)",
            "INSERT INTO seats (id, showtime_id, label, row, number) VALUES (1, 1, 'A1', 'A', 1), (2, 1, 'A2', 'A', 2)",
            "INSERT INTO reservations (id, user_id, showtime_id, status, total_cents, created_at, updated_at, email_status)"
            " VALUES (5, 7, 1, 'confirmed', 2400, :now, :now, 'sent')",
            "INSERT INTO reservation_seats (reservation_id, seat_id) VALUES (5, 1), (5, 2)",
            "UPDATE seats SET reservation_id = 5",
        ]
        for statement in statements:
            db.session.execute(text(statement), {"now": now})
        db.session.commit()

    app = migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)

    with app.app_context():
        assert schema_differences() == ([], head_revision())
        halls = db.session.execute(text("SELECT id, name, plan FROM halls ORDER BY name_key")).all()
        assert [(name, plan) for _, name, plan in halls] == [("Main", None), ("Studio 2", None)]
        showtimes = db.session.execute(text("SELECT hall, hall_id FROM showtimes ORDER BY id")).all()
        assert showtimes == [("Main", halls[0].id), ("Main", halls[0].id), ("Studio 2", halls[1].id)]
        assert db.session.scalars(text("SELECT DISTINCT seat_type FROM seats")).all() == ["standard"]
        lines = db.session.execute(
            text("SELECT seat_type, ticket_type, price_cents FROM reservation_seats ORDER BY seat_id")
        ).all()
        assert lines == [("standard", "adult", 1200), ("standard", "adult", 1200)]
        assert db.session.scalars(text("SELECT code FROM ticket_types ORDER BY position")).all() == [
            "adult", "child", "senior", "student",
        ]


def test_existing_bookings_get_references_tickets_and_cancelled_lines(tmp_path, empty_database):
    """Every reservation gets a reference; confirmed seats a working ticket; cancelled lines a time."""
    old = migrated_app(tmp_path, empty_database)
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    with old.app_context():
        upgrade(directory=MIGRATIONS, revision="4cecf3dacef3")
        statements = [
            "INSERT INTO users (id, username, username_key, email, password_hash, is_admin, created_at, token_key)"
            " VALUES (7, 'ann', 'ann', 'ann@example.com', 'x', false, :now, 'k')",
            "INSERT INTO movies (id, title, genre, created_at) VALUES (1, 'Kept', 'Drama', :now)",
            "INSERT INTO halls (id, name, name_key, created_at, updated_at) VALUES (1, 'Main', 'main', :now, :now)",
            "INSERT INTO showtimes (id, movie_id, start_time, end_time, hall, hall_id, price_cents, created_at)"
            " VALUES (1, 1, :soon, :later, 'Main', 1, 1000, :now)",
            "INSERT INTO seats (id, showtime_id, label, row, number) VALUES (1, 1, 'A1', 'A', 1), (2, 1, 'A2', 'A', 2),"
            " (3, 1, 'A3', 'A', 3)",
            "INSERT INTO reservations (id, user_id, showtime_id, status, total_cents, created_at, updated_at,"
            " cancelled_at, email_status) VALUES (5, 7, 1, 'confirmed', 2000, :now, :now, NULL, 'sent'),"
            " (6, 7, 1, 'cancelled', 1000, :now, :now, :now, 'sent')",
            "INSERT INTO reservation_seats (reservation_id, seat_id, price_cents) VALUES (5, 1, 1000), (5, 2, 1000),"
            " (6, 3, 1000)",
            "UPDATE seats SET reservation_id = 5 WHERE id IN (1, 2)",
        ]
        times = {"now": now, "soon": now + timedelta(minutes=20), "later": now + timedelta(hours=3)}
        for statement in statements:
            db.session.execute(text(statement), times)
        db.session.commit()

    app = migrated_app(tmp_path, empty_database, AUTO_MIGRATE=True)

    with app.app_context():
        assert schema_differences() == ([], head_revision())
        references = db.session.scalars(text("SELECT reference FROM reservations ORDER BY id")).all()
        tickets = db.session.execute(text("SELECT reservation_id, seat_id FROM tickets ORDER BY seat_id")).all()
        lines = db.session.execute(text("SELECT seat_id, cancelled_at FROM reservation_seats ORDER BY seat_id")).all()
        db.session.commit()
    assert len(set(references)) == 2 and all(len(reference) == 8 for reference in references)
    assert [tuple(ticket) for ticket in tickets] == [(5, 1), (5, 2)]
    assert [seat for seat, cancelled_at in lines if cancelled_at is not None] == [3]
    cinema = Cinema(app.test_client())
    found = cinema.client.get(f"/reservations?reference={references[0].lower()}", headers=cinema.admin).json
    assert [reservation["id"] for reservation in found] == [5]
    shown = cinema.client.get("/reservations/5/tickets", headers=cinema.admin).json["tickets"]
    assert [ticket["seat"] for ticket in shown] == ["A1", "A2"]
    admitted = cinema.client.post("/check-ins", json={"secret": shown[0]["secret"]}, headers=cinema.admin)
    assert admitted.status_code == 200, admitted.json
    cancelled = cinema.client.get("/reservations/6", headers=cinema.admin).json
    assert cancelled["seats"] == ["A3"] and cancelled["lines"][0]["cancelled_at"] == cancelled["cancelled_at"]
