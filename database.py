"""The database engine: SQLite's pragmas and write locks, and the migrations."""

import os

from flask import has_request_context, request
from flask_migrate import stamp
from flask_migrate import upgrade as upgrade_database
from sqlalchemy import event, inspect

from errors import WRITE_METHODS
from models import User, db

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
# POST endpoints that only read the database (no write lock needed on SQLite).
READ_ONLY_POSTS = frozenset({"auth.login", "auth.refresh"})

# The first migration: the schema the app built by itself before it had migrations.
INITIAL_REVISION = "6fbbbca6d9d5"


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
