"""Command-line tasks: create-admin, send-pending-emails, seed-demo."""

import click
from flask.cli import with_appcontext
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

import schemas as s
from auth import hash_password
from booking import reservation_query
from demo import seed_demo_command
from emails import resend_unsent, unsent_email
from models import Reservation, User, db


def register_commands(app):
    app.cli.add_command(create_admin_command)
    app.cli.add_command(send_pending_emails_command)
    app.cli.add_command(seed_demo_command)


@click.command("create-admin")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def create_admin_command(username, email, password):
    """Create an admin user, or promote the existing user of that name."""
    user = db.session.scalar(select(User).where(User.username_key == username.lower()))
    if user:
        user.is_admin = True
        db.session.commit()
        click.echo(f"Promoted {user.username} (id {user.id}) to admin.")
        return
    try:
        data = s.RegisterSchema().load(
            {"username": username, "email": email, "password": password}
        )
    except ValidationError as error:
        raise click.ClickException(f"Invalid input: {error.messages}") from None
    user = User(
        username=data["username"],
        email=data["email"],
        password_hash=hash_password(data["password"]),
        is_admin=True,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        raise click.ClickException("That email is already registered.") from None
    click.echo(f"Created admin {user.username} (id {user.id}).")


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
