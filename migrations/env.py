"""Alembic environment: the app's engine and models, run through Flask-Migrate.

Logging is left to the app (no fileConfig), so running migrations at start-up
does not silence the app's own loggers.
"""

import logging

from alembic import context
from flask import current_app
from sqlalchemy import text
from sqlalchemy.types import TypeDecorator

config = context.config
logger = logging.getLogger("alembic.env")
migrate = current_app.extensions["migrate"]
engine = migrate.db.engine
target_metadata = migrate.db.metadata
config.set_main_option(
    "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


def render_item(type_, obj, autogen_context):
    """Write custom column types as the plain type they store (UTCDateTime -> DateTime)."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def skip_empty_revisions(context, revision, directives):
    """`flask db migrate` writes no file when the models did not change."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_offline():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    options = dict(migrate.configure_args)
    options.setdefault("process_revision_directives", skip_empty_revisions)
    options.setdefault("render_item", render_item)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a table and drops the old one, which SQLite refuses
            # while other tables' foreign keys point at its rows. The pragma only takes
            # effect outside a transaction, so it goes straight to the driver, before BEGIN.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            context.configure(connection=connection, target_metadata=target_metadata, **options)
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Several workers starting at once upgrade one after the other.
                    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('alembic'))"))
                context.run_migrations()
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("The migration broke a foreign key; nothing was changed.")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
