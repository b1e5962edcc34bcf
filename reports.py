"""The admin report: its one grouped query, its tag (ETag), and the cache of encoded bodies."""

from flask import current_app
from sqlalchemy import case, func, or_, select

import schemas as s
from models import CANCELLED, CONFIRMED, Movie, Reservation, Seat, Showtime, db, reservation_seats
from scheduling import filter_showtimes


def report_tag() -> str:
    """Changes with any booking, cancellation, seat, showtime or movie change (one query)."""
    movie_versions = select(func.coalesce(func.sum(Movie.version), 0)).scalar_subquery()
    count, versions, ids, movies = db.session.execute(
        select(
            func.count(Showtime.id),
            func.coalesce(func.sum(Showtime.version), 0),
            func.coalesce(func.sum(Showtime.id), 0),
            movie_versions,
        )
    ).one()
    return f"report-{count}-{versions}-{ids}-{movies}"


def report_body(tag: str, args, bodies: dict) -> str:
    """The report for ``args``, JSON-encoded, kept in ``bodies`` per (tag, filters).

    The caller reads the tag from the database on every request, so a body built
    for the same tag and filters is still exact; dashboards that refresh cost
    one query.
    """
    key = (tag, tuple(sorted((name, str(value)) for name, value in args.items())))
    body = bodies.get(key)
    if body is None:
        body = current_app.json.dumps(build_report(args)) + "\n"  # kept encoded: 500 rows
        if len(bodies) >= REPORT_BODIES_KEPT:
            bodies.clear()
        bodies[key] = body
    return body


REPORT_BODIES_KEPT = 32


def build_report(args) -> dict:
    """The report's body: one grouped query over showtimes, seats and reservations."""
    confirmed = Reservation.status == CONFIRMED
    per_showtime_bookings = (
        select(
            Reservation.showtime_id,
            func.count(Reservation.id).filter(confirmed).label("confirmed"),
            func.count(Reservation.id).filter(Reservation.status == CANCELLED).label("cancelled"),
            func.coalesce(func.sum(case((confirmed, Reservation.total_cents), else_=0)), 0).label("revenue"),
        )
        .group_by(Reservation.showtime_id)
        .subquery()
    )
    per_showtime_tickets = (
        select(Reservation.showtime_id, func.count().label("tickets"))
        .select_from(reservation_seats)
        .join(Reservation, Reservation.id == reservation_seats.c.reservation_id)
        .where(confirmed, reservation_seats.c.cancelled_at.is_(None))  # seats given back are not sold
        .group_by(Reservation.showtime_id)
        .subquery()
    )
    per_showtime_seats = (
        select(Seat.showtime_id, func.count().label("seats"))
        .group_by(Seat.showtime_id)
        .subquery()
    )
    statement = (
        select(
            Showtime.id,
            Movie.title,
            Showtime.start_time,
            Showtime.hall,
            func.coalesce(per_showtime_seats.c.seats, 0),
            func.coalesce(per_showtime_tickets.c.tickets, 0),
            func.coalesce(per_showtime_bookings.c.confirmed, 0),
            func.coalesce(per_showtime_bookings.c.cancelled, 0),
            func.coalesce(per_showtime_bookings.c.revenue, 0),
        )
        .join(Showtime.movie)
        .outerjoin(per_showtime_seats, per_showtime_seats.c.showtime_id == Showtime.id)
        .outerjoin(per_showtime_tickets, per_showtime_tickets.c.showtime_id == Showtime.id)
        .outerjoin(per_showtime_bookings, per_showtime_bookings.c.showtime_id == Showtime.id)
        # Archived showtimes stay in the report while they have booking history.
        .where(or_(Showtime.deleted_at.is_(None), per_showtime_bookings.c.showtime_id.is_not(None)))
        .order_by(Showtime.start_time, Showtime.id)
    )
    statement = filter_showtimes(statement, args)
    report = {
        "total_reservations": 0,
        "tickets_sold": 0,
        "revenue_estimate": 0,
        "cancelled_reservations": 0,
    }
    showtimes = []
    for showtime_id, title, start, hall, seats, tickets, confirmed_count, cancelled, revenue in db.session.execute(statement):
        report["total_reservations"] += confirmed_count
        report["cancelled_reservations"] += cancelled
        report["tickets_sold"] += tickets
        report["revenue_estimate"] += revenue
        showtimes.append(
            {
                "showtime_id": showtime_id,
                "movie_title": title,
                "start_time": start,
                "hall": hall,
                "seats_total": seats,
                "seats_booked": tickets,
                "utilization_percent": round(100 * tickets / seats, 1) if seats else 0.0,
                "revenue": revenue,
            }
        )
    # Hundreds of rows: dumped lean, with the schemas that document them.
    body = REPORT_TOTALS_DUMPER.dump(report)
    body["showtimes"] = [REPORT_ROW_DUMPER.dump(row) for row in showtimes]
    return body


REPORT_TOTALS_DUMPER = s.LeanDumper(s.ReportSchema(exclude=("showtimes",)))
REPORT_ROW_DUMPER = s.LeanDumper(s.ReportShowtimeSchema())
