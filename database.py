"""The database engine: SQLite's pragmas and write locks, and the migrations."""

import os

from flask import has_request_context, request
from flask_migrate import stamp
from flask_migrate import upgrade as upgrade_database
from sqlalchemy import event, inspect, text
from sqlalchemy.exc import OperationalError

from errors import WRITE_METHODS
from models import User, db

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
# POST endpoints that only read the database (no write lock needed on SQLite).
READ_ONLY_POSTS = frozenset({"auth.login", "auth.refresh"})

# The first migration: the schema the app built by itself before it had migrations.
INITIAL_REVISION = "6fbbbca6d9d5"
# What /health says for each way the database can fail the API.
DATABASE_PROBLEMS = {
    "unreachable": "The database is unreachable.",
    "read-only": "The database is read-only: bookings and changes would fail.",
    "full": "The database's disk is full: bookings and changes would fail.",
}
# Less free space than this beside a SQLite file and the next writes may fail
# (its write-ahead log alone grows to a few megabytes between checkpoints).
MIN_FREE_BYTES = 1024 * 1024


def migrate_database():
    """Upgrade to the newest migration; a database from before migrations is adopted first."""
    tables = inspect(db.engine)
    if tables.has_table(User.__tablename__) and not tables.has_table("alembic_version"):
        stamp(directory=MIGRATIONS, revision=INITIAL_REVISION)
    upgrade_database(directory=MIGRATIONS)


def configure_sqlite(engine):
    """WAL, foreign keys, and write transactions that take the write lock up front.

    A deferred transaction that reads and then writes can fail at once with
    "database is locked" when another writer got in between; BEGIN IMMEDIATE
    makes writers queue (for the busy timeout) instead.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # SQLite's own lower() only folds ASCII; Python's folds every script,
        # so case-insensitive search works for "Amélie" too.
        dbapi_connection.create_function("lower", 1, python_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        # Straight to the driver: this runs once per request.
        connection.connection.driver_connection.execute(
            "BEGIN IMMEDIATE" if request_writes() else "BEGIN"
        )


def python_lower(value):
    return value.lower() if isinstance(value, str) else value


def request_writes() -> bool:
    if not has_request_context():
        return True  # CLI commands and start-up
    return request.method in WRITE_METHODS and request.endpoint not in READ_ONLY_POSTS


def database_health() -> str:
    """"ok" when the database can take writes, else a key of DATABASE_PROBLEMS; writes nothing."""
    try:
        if db.engine.dialect.name == "postgresql":
            # A standby in recovery, or a server or database set to read-only transactions.
            in_recovery, read_only = db.session.execute(
                text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
            ).one()
            return "read-only" if in_recovery or read_only == "on" else "ok"
        db.session.execute(text("SELECT 1"))
    except OperationalError:
        db.session.rollback()
        # On a read-only disk a SQLite file in WAL mode cannot even be opened.
        return sqlite_file_problem() or "unreachable"
    return sqlite_file_problem() or "ok"


def sqlite_file_problem() -> str | None:
    """"read-only" or "full" when a SQLite database file cannot take writes, else None."""
    path = db.engine.url.database
    if db.engine.dialect.name != "sqlite" or path in (None, "", ":memory:") or not os.path.exists(path):
        return None
    folder = os.path.dirname(os.path.abspath(path))
    # SQLite writes its -wal and -shm files beside the database, so both must be writable.
    if not (os.access(path, os.W_OK) and os.access(folder, os.W_OK)):
        return "read-only"
    disk = os.statvfs(folder)
    return "full" if disk.f_bavail * disk.f_frsize < MIN_FREE_BYTES else None
