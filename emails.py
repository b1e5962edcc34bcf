"""Booking emails: the confirmation after a booking, and a notice after a cancellation.

``send_booking_confirmation(reservation)``, ``send_change(reservation, seats)`` (some
seats given back) and ``send_cancellation(reservation)`` are called after the change is
committed. A confirmation or change notice carries the live tickets' QR codes as PNG
attachments (the secrets stay out of the text, which is what the log shows). With ``RESEND_API_KEY`` the email goes out
through Resend, as text and HTML with an ``.ics`` calendar file, under an idempotency
key made from the reservation, so that a retry within Resend's 24-hour window never
sends it twice. Without the key the email is written to the log. Either way the
reservation records how it went in ``email_status`` (``sent``, ``logged`` or
``failed``), and nothing here ever raises or waits longer than ``EMAIL_TIMEOUT``.
"""

import base64
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as SendTimeout
from datetime import timedelta, timezone

import resend
from flask import current_app
from markupsafe import escape
from resend.exceptions import ResendError
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import SQLAlchemyError

import tickets
from models import CANCELLED, CONFIRMED, Reservation, db, utcnow

log = logging.getLogger("cinema.emails")

CONFIRMATION, CHANGE, CANCELLATION = "confirmation", "change", "cancellation"
# Sends run here so that a request can stop waiting after EMAIL_TIMEOUT.
_sender = ThreadPoolExecutor(max_workers=4, thread_name_prefix="email")


def send_booking_confirmation(reservation) -> str:
    """Deliver the confirmation email and record how it went; never raises."""
    return deliver(reservation, CONFIRMATION)


def send_change(reservation, seats: list[str]) -> str:
    """Deliver the notice that ``seats`` were given back (the booking goes on); never raises."""
    return deliver(reservation, CHANGE)


def send_cancellation(reservation) -> str:
    """Deliver the cancellation notice and record how it went; never raises."""
    return deliver(reservation, CANCELLATION)


def unsent_email():
    """The condition for reservations whose latest email failed, or is pending for too long.

    An email pending for over EMAIL_PENDING_AFTER_MINUTES lost its sender (a worker
    stopped between the commit and the send); a younger one may be on its way now.
    """
    waited = timedelta(minutes=current_app.config["EMAIL_PENDING_AFTER_MINUTES"])
    return or_(
        Reservation.email_status == "failed",
        and_(
            Reservation.email_status == "pending",
            Reservation.status.in_((CONFIRMED, CANCELLED)),  # holds get no email
            Reservation.updated_at < utcnow() - waited,
        ),
    )


def resend_unsent(reservations) -> tuple[int, int]:
    """Send again each reservation's latest email (cancellation or confirmation).

    Returns how many went out and how many were tried: an email that another
    run (cron started twice) claimed in the meantime is left to that run.
    """
    sent = tried = 0
    for reservation in reservations:
        if not claim_email(reservation):
            continue
        tried += 1
        kind = latest_kind(reservation)
        sent += deliver(reservation, kind) in ("sent", "logged")
    return sent, tried


def latest_kind(reservation) -> str:
    """The email a reservation's latest change calls for."""
    if reservation.status == CANCELLED:
        return CANCELLATION
    return CHANGE if reservation.cancelled_labels else CONFIRMATION


def claim_email(reservation) -> bool:
    """Mark the email pending from now if it is still unsent; False when someone else got it."""
    # Conditional, so that of two runs racing for one email only one sends it; the
    # other then sees a fresh pending email, which it leaves alone.
    claimed = db.session.execute(
        update(Reservation)
        .where(Reservation.id == reservation.id, unsent_email())
        .values(email_status="pending", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed:
        # As it is now: the guest may have cancelled since the list was read.
        db.session.refresh(reservation, ["status", "cancelled_at", "email_status"])
    return claimed == 1


def deliver(reservation, kind: str) -> str:
    config = current_app.config
    try:
        message = compose(reservation, kind)
        # End the transaction the composing read in: no lock (SQLite's write lock
        # for a POST) or pooled connection is held while Resend answers.
        db.session.commit()
        if config["RESEND_API_KEY"]:
            send_with_resend(message, config)
            status = "sent"
        else:
            log.info(
                "Booking %s for reservation %s to %s:\n%s",
                kind,
                reservation.id,
                message["to"][0],
                message["text"],
            )
            status = "logged"
    except (ResendError, SendTimeout) as error:
        log.warning("Booking %s email for reservation %s failed: %s", kind, reservation.id, error)
        status = "failed"
    except Exception:
        log.exception("Booking %s email for reservation %s failed", kind, reservation.id)
        status = "failed"
    reservation.email_status = status
    try:
        db.session.commit()
    except SQLAlchemyError:  # the booking itself is committed; only the status is lost
        db.session.rollback()
        log.exception("Could not record email_status %r for reservation %s", status, reservation.id)
    return status


def send_with_resend(message: dict, config) -> None:
    """Send through the Resend SDK, waiting at most EMAIL_TIMEOUT seconds."""
    timeout = config["EMAIL_TIMEOUT"]
    resend.api_key = config["RESEND_API_KEY"]
    resend.api_url = config["RESEND_API_URL"]
    resend.default_http_client = resend.RequestsClient(timeout=timeout)
    params = {key: value for key, value in message.items() if key != "idempotency_key"}
    params["from"] = config["RESEND_FROM"]
    future = _sender.submit(
        resend.Emails.send, params, {"idempotency_key": message["idempotency_key"]}
    )
    try:
        future.result(timeout=timeout)
    except SendTimeout:
        future.cancel()  # still queued behind other slow sends: drop it
        raise SendTimeout(f"no answer from Resend within {timeout} s") from None


# ---- content ----------------------------------------------------------------------


def local_start(reservation) -> str:
    """The showtime's start in cinema local time, e.g. ``2025-05-01 18:00``."""
    start = reservation.showtime.start_time.astimezone(current_app.config["CINEMA_TZ"])
    return start.strftime("%Y-%m-%d %H:%M")


def one_line(text: str) -> str:
    """``text`` with each run of whitespace, line breaks included, as one space.

    What users typed goes into the subject (a header) and, without Resend, the
    log: a title stored before control characters were refused must not start
    a header or a log line of its own there.
    """
    return " ".join(text.split())


def details(reservation) -> list[tuple[str, str]]:
    showtime = reservation.showtime
    rows = [
        ("Movie", one_line(showtime.movie.title)),
        ("Showtime", f"{local_start(reservation)} ({one_line(showtime.hall)})"),
        ("Seats", ", ".join(reservation.seat_labels)),
    ]
    if reservation.cancelled_labels:
        rows.append(("Cancelled seats", ", ".join(reservation.cancelled_labels)))
    return rows + [
        ("Total", f"${reservation.total_cents / 100:.2f}"),
        ("Reference", reservation.reference),
        ("Reservation", f"#{reservation.id}"),
    ]


HEADLINES = {
    CONFIRMATION: (
        "Your booking is confirmed:",
        "Your tickets are attached: one QR code per seat, shown at the door. Enjoy your movie!",
    ),
    CHANGE: (
        "Your booking has changed: some seats were cancelled and are free again.",
        "The tickets of your remaining seats are attached; the cancelled seats' tickets are void.",
    ),
    CANCELLATION: ("Your booking has been cancelled:", "The seats are free again. We hope to see you another time."),
}


def confirmation_text(reservation, kind: str = CONFIRMATION) -> str:
    opening, closing = HEADLINES[kind]
    lines = [f"Hello {reservation.user.username},", "", opening]
    lines += [f"{label}: {value}" for label, value in details(reservation)]
    return "\n".join(lines + ["", closing, ""])


def confirmation_html(reservation, kind: str = CONFIRMATION) -> str:
    opening, closing = HEADLINES[kind]
    rows = "".join(
        f"<tr><th align=\"left\">{escape(label)}</th><td>{escape(value)}</td></tr>"
        for label, value in details(reservation)
    )
    return (
        f"<p>Hello {escape(reservation.user.username)},</p>"
        f"<p>{escape(opening)}</p><table>{rows}</table><p>{escape(closing)}</p>"
    )


def compose(reservation, kind: str) -> dict:
    """The email as Resend's send parameters, plus its idempotency key."""
    title = one_line(reservation.showtime.movie.title)
    if kind == CANCELLATION:
        subject = f"Cancelled: {title} on {local_start(reservation)}"
    elif kind == CHANGE:
        subject = f"Changed: your booking for {title} on {local_start(reservation)}"
    else:
        subject = f"Your tickets for {title} on {local_start(reservation)}"
    # The creation time keeps keys apart if the database is ever reset and ids repeat.
    created = reservation.created_at.strftime("%Y%m%dT%H%M%S%f")
    # Each partial cancellation is a notice of its own: the count of seats given back tells them apart.
    change = f"-{len(reservation.cancelled_labels)}" if kind == CHANGE else ""
    return {
        "to": [reservation.user.email],
        "subject": subject,
        "text": confirmation_text(reservation, kind),
        "html": confirmation_html(reservation, kind),
        "attachments": [
            {
                "filename": f"reservation-{reservation.id}.ics",
                "content": base64.b64encode(calendar(reservation, kind).encode()).decode(),
                "content_type": "text/calendar; charset=utf-8",
            }
        ]
        + ([] if kind == CANCELLATION else ticket_attachments(reservation)),
        "idempotency_key": f"booking-{kind}/{reservation.id}-{created}{change}",
    }


def ticket_attachments(reservation) -> list[dict]:
    """One PNG QR code per live ticket, named after its seat."""
    return [
        {
            "filename": f"ticket-{ticket['seat']}.png",
            "content": base64.b64encode(tickets.qr_png(ticket["secret"])).decode(),
            "content_type": "image/png",
        }
        for ticket in tickets.live_tickets(reservation)
    ]


def calendar(reservation, kind: str) -> str:
    """An iCalendar (RFC 5545) event for the showtime; a cancellation cancels it."""
    showtime = reservation.showtime
    minutes = showtime.movie.duration_minutes or 120
    cancelled = kind == CANCELLATION
    # Fixed by the reservation, so that a retried email is byte for byte the same.
    stamp = reservation.cancelled_at if cancelled and reservation.cancelled_at else reservation.created_at
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Cinema booking API//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:reservation-{reservation.id}@cinema-booking",
        f"DTSTAMP:{ics_time(stamp)}",
        f"DTSTART:{ics_time(showtime.start_time)}",
        f"DTEND:{ics_time(showtime.start_time + timedelta(minutes=minutes))}",
        f"SUMMARY:{ics_text(showtime.movie.title)}",
        f"LOCATION:{ics_text(showtime.hall)}",
        "DESCRIPTION:" + ics_text(
            f"Seats {', '.join(reservation.seat_labels)}. Reservation #{reservation.id}."
        ),
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        f"SEQUENCE:{1 if cancelled else 0}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)


def ics_time(moment) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# RFC 5545 allows no control character but the tab in a TEXT value; a bare CR
# would end the line for some readers.
ICS_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def ics_text(value: str) -> str:
    """Escape a TEXT value: backslash, semicolon, comma and newlines; other control characters go."""
    escaped = (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )
    return ICS_CONTROL_CHARACTERS.sub("", escaped)


def fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space."""
    parts, current = [], ""
    for character in line:
        limit = 75 if not parts else 74
        if len((current + character).encode()) > limit:
            parts.append(current)
            current = ""
        current += character
    parts.append(current)
    return "\r\n ".join(parts)
