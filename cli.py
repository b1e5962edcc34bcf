"""Command-line tasks: create-admin, send-pending-emails, seed-demo."""

import click
from flask.cli import with_appcontext
from flask_migrate import upgrade
from marshmallow import ValidationError
from sqlalchemy import inspect, select
from sqlalchemy.orm import joinedload

import schemas as s
from auth import make_admin, register_user
from booking import reservation_query
from demo import seed_demo_command
from emails import resend_unsent, unsent_email
from errors import Conflict
from models import Reservation, User, db


def register_commands(app):
    app.cli.add_command(create_admin_command)
    app.cli.add_command(send_pending_emails_command)
    app.cli.add_command(seed_demo_command)


@click.command("create-admin")
@click.option("--username", required=True)
@click.option("--email", help="Needed for a new admin; changes an existing user's email.")
@click.option(
    "--password", help="Asked for when a new admin is made without it; changes an existing user's."
)
@with_appcontext
def create_admin_command(username, email, password):
    """Create an admin user, or promote the existing user of that name (and update what is given)."""
    if not inspect(db.engine).has_table(User.__tablename__):
        upgrade()  # a new database: build the schema from the migrations first
    user = db.session.scalar(select(User).where(User.username_key == username.lower()))
    try:
        if user is None:
            create_admin(username, email, password)
        else:
            update_admin(user, email, password)
    except Conflict as error:
        raise click.ClickException(error.message) from None


def create_admin(username, email, password):
    if email is None:
        raise click.UsageError("--email is needed to create a new admin.")
    if password is None:  # asked for only here, so scripts that update a user never wait
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = register_user(checked(username=username, email=email, password=password), is_admin=True)
    click.echo(f"Created admin {user.username} (id {user.id}).")


def update_admin(user, email, password):
    data = checked(email=email, password=password)
    was_admin, old_email = user.is_admin, user.email
    make_admin(user, **data)
    if was_admin:
        click.echo(f"{user.username} (id {user.id}) is already an admin.")
    else:
        click.echo(f"Promoted {user.username} (id {user.id}) to admin.")
    if user.email != old_email:
        click.echo(f"Changed the email of {user.username} to {user.email}.")
    if "password" in data:
        click.echo(f"Updated the password of {user.username}; their sessions are ended.")


def checked(**fields) -> dict:
    """The given fields, validated as registration does."""
    given = {name: value for name, value in fields.items() if value is not None}
    try:
        return s.RegisterSchema(partial=True).load(given)
    except ValidationError as error:
        raise click.ClickException(f"Invalid input: {error.messages}") from None


@click.command("send-pending-emails")
@with_appcontext
def send_pending_emails_command():
    """Send again every booking email that failed or whose sender stopped; report how many went out."""
    unsent = db.session.scalars(
        reservation_query()
        .options(joinedload(Reservation.user))
        .where(unsent_email())
        .order_by(Reservation.id)
    ).all()
    sent, tried = resend_unsent(unsent)
    click.echo(f"{sent} of {tried} failed emails sent.")
    if sent < tried:
        raise SystemExit(1)
