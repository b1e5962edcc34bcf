"""The admin report: its one grouped query, its tag (ETag), the cache of encoded bodies, its CSV.

What is counted (money in integer cents, summed in SQL):

- a ticket sold is a line of a confirmed reservation; revenue is what those lines were
  sold for (the prices frozen at booking), so the seat type and ticket type breakdowns
  add up to the totals exactly;
- a cancelled ticket is a line given back (``cancelled_at``), alone or with its whole
  reservation; its price counts as cancelled revenue; a reservation cancelled as a whole
  counts in ``cancelled_reservations``, one still confirmed that gave seats back in
  ``partly_cancelled_reservations``; holds never confirmed count in neither;
- attendance: the tickets the door checked in, and their share of the tickets sold;
- a day is the local date of a showtime's start in the cinema's time zone
  (CINEMA_TIMEZONE): a showtime at 00:30 on the 16th in Berlin is on the 16th, though
  it starts at 23:30 UTC on the 15th.

One statement builds the whole report: a row per showtime and per (seat type, ticket
type) it sold, with the showtime's own counts beside; the rows are folded per showtime,
then summed per movie, per day and in total in Python (exact: integers).

- holds: every reservation made as a hold (POST /holds) counts as created, those
  confirmed since (cancelled or not) as confirmed; the conversion is their ratio.

Adding a figure: a count per reservation goes into ``bookings_per_showtime`` and
``BOOKING_COUNTS`` (as the holds do); a count per ticket line into
``lines_per_showtime`` and ``LINE_COUNTS``; a count from another table gets a
per-showtime subquery joined like ``seats`` and its name in ``SHOWTIME_COUNTS`` (as
``checked_in`` does). Then a field in
``schemas.ReportFiguresSchema``, named in ``REPORT_FIGURES``: the showtime rows, the
movies, the days, the totals and the CSV carry it. A ratio of two counts (a hold
conversion rate) goes into ``add_ratios``.
"""

import csv
import io
from collections import defaultdict

from flask import current_app
from sqlalchemy import exists, func, or_, select

import schemas as s
from models import (
    CANCELLED,
    CONFIRMED,
    SEAT_TYPES,
    Hall,
    Movie,
    Reservation,
    Seat,
    Showtime,
    Ticket,
    db,
    hall_key,
    reservation_seats,
)
from scheduling import filter_showtimes

JSON, CSV = s.REPORT_FORMATS

SOLD = Reservation.status == CONFIRMED
CANCELLED_WHOLE = Reservation.status == CANCELLED
# A hold is a reservation made with an expiry (POST /holds); confirmed, it has a
# confirmed_at and counts as sold or cancelled like any booking.
HOLD = Reservation.expires_at.is_not(None)
HOLD_CONFIRMED = HOLD & Reservation.confirmed_at.is_not(None)
# A ticket line sold, and one given back: lines are cancelled on their own (a
# ``cancelled_at`` per line, set for every line when a whole booking is cancelled).
LINE_GIVEN_BACK = reservation_seats.c.cancelled_at.is_not(None)
LINE_SOLD = SOLD & ~LINE_GIVEN_BACK
LINE_CANCELLED = LINE_GIVEN_BACK | CANCELLED_WHOLE
# A booking still confirmed that gave some of its seats back.
PARTLY_CANCELLED = SOLD & exists().where(
    reservation_seats.c.reservation_id == Reservation.id, reservation_seats.c.cancelled_at.is_not(None)
)
# A showtime's own counts (one value per showtime): its seats, and its reservations'.
BOOKING_COUNTS = (
    "reservations", "cancelled_reservations", "partly_cancelled_reservations", "holds_created", "holds_confirmed",
)
SHOWTIME_COUNTS = ("seats_total", "checked_in", *BOOKING_COUNTS)
# Counts per (showtime, seat type, ticket type), added up per showtime.
LINE_COUNTS = ("tickets_sold", "revenue", "cancelled_tickets", "cancelled_revenue")
# What adds up from showtimes to movies, days and the totals.
COUNTS = SHOWTIME_COUNTS + LINE_COUNTS


def report_tag(output: str = JSON) -> str:
    """Changes with any booking, cancellation, seat, showtime or movie change (one query).

    The CSV and the JSON of one state have different tags: a client holding one never
    gets a 304 for the other.
    """
    movie_versions = select(func.coalesce(func.sum(Movie.version), 0)).scalar_subquery()
    count, versions, ids, movies = db.session.execute(
        select(
            func.count(Showtime.id),
            func.coalesce(func.sum(Showtime.version), 0),
            func.coalesce(func.sum(Showtime.id), 0),
            movie_versions,
        )
    ).one()
    return f"report-{output}-{count}-{versions}-{ids}-{movies}"


def report_body(tag: str, args, output: str, bodies: dict):
    """The report for ``args`` as JSON text or CSV bytes, kept in ``bodies`` per (tag, format, filters).

    The caller reads the tag from the database on every request, so a body built
    for the same tag and filters is still exact; dashboards that refresh cost
    one query. The format is part of the key (and of the tag): a CSV is never
    served for a JSON request, nor the other way round.
    """
    key = (tag, output, tuple(sorted((name, str(value)) for name, value in args.items())))
    body = bodies.get(key)
    if body is None:
        report = build_report(args)
        # Kept encoded: 500 rows.
        body = csv_body(report) if output == CSV else current_app.json.dumps(json_body(report)) + "\n"
        if len(bodies) >= REPORT_BODIES_KEPT:
            bodies.clear()
        bodies[key] = body
    return body


REPORT_BODIES_KEPT = 32


def bookings_per_showtime():
    return (
        select(
            Reservation.showtime_id,
            func.count(Reservation.id).filter(SOLD).label("reservations"),
            func.count(Reservation.id).filter(CANCELLED_WHOLE).label("cancelled_reservations"),
            func.count(Reservation.id).filter(PARTLY_CANCELLED).label("partly_cancelled_reservations"),
            func.count(Reservation.id).filter(HOLD).label("holds_created"),
            func.count(Reservation.id).filter(HOLD_CONFIRMED).label("holds_confirmed"),
        )
        .group_by(Reservation.showtime_id)
        .subquery()
    )


def lines_per_showtime():
    """Tickets sold and cancelled, and their prices, per showtime, seat type and ticket type."""
    price = reservation_seats.c.price_cents
    return (
        select(
            Reservation.showtime_id,
            reservation_seats.c.seat_type,
            reservation_seats.c.ticket_type,
            func.count().filter(LINE_SOLD).label("tickets_sold"),
            func.coalesce(func.sum(price).filter(LINE_SOLD), 0).label("revenue"),
            func.count().filter(LINE_CANCELLED).label("cancelled_tickets"),
            func.coalesce(func.sum(price).filter(LINE_CANCELLED), 0).label("cancelled_revenue"),
        )
        .select_from(reservation_seats)
        .join(Reservation, Reservation.id == reservation_seats.c.reservation_id)
        .where(or_(LINE_SOLD, LINE_CANCELLED))
        .group_by(Reservation.showtime_id, reservation_seats.c.seat_type, reservation_seats.c.ticket_type)
        .subquery()
    )


def report_statement(args):
    """Per showtime (filtered by ``args``): its counts, then one row per seat type x ticket type sold."""
    seats = select(Seat.showtime_id, func.count().label("seats_total")).group_by(Seat.showtime_id).subquery()
    # Attendance: the tickets the door admitted (a checked-in ticket can be neither voided nor cancelled).
    admitted = (
        select(Reservation.showtime_id, func.count().label("checked_in"))
        .select_from(Ticket)
        .join(Reservation, Reservation.id == Ticket.reservation_id)
        .where(Ticket.checked_in_at.is_not(None))
        .group_by(Reservation.showtime_id)
        .subquery()
    )
    bookings = bookings_per_showtime()
    lines = lines_per_showtime()
    statement = (
        select(
            Showtime.id.label("showtime_id"),
            Showtime.movie_id,
            Movie.title.label("movie_title"),
            Showtime.start_time,
            Showtime.hall,
            func.coalesce(seats.c.seats_total, 0).label("seats_total"),
            func.coalesce(admitted.c.checked_in, 0).label("checked_in"),
            *(func.coalesce(bookings.c[name], 0).label(name) for name in BOOKING_COUNTS),
            lines.c.seat_type,
            lines.c.ticket_type,
            *(func.coalesce(lines.c[name], 0).label(name) for name in LINE_COUNTS),
        )
        .join(Showtime.movie)
        .outerjoin(seats, seats.c.showtime_id == Showtime.id)
        .outerjoin(admitted, admitted.c.showtime_id == Showtime.id)
        .outerjoin(bookings, bookings.c.showtime_id == Showtime.id)
        .outerjoin(lines, lines.c.showtime_id == Showtime.id)
        # Archived showtimes stay in the report while they have booking history.
        .where(or_(Showtime.deleted_at.is_(None), bookings.c.showtime_id.is_not(None)))
        .order_by(Showtime.start_time, Showtime.id)
    )
    if args.get("hall"):
        # The hall as it is named now (a renamed hall's showtimes follow it), any case.
        in_hall = select(Hall.id).where(Hall.name_key == hall_key(args["hall"]))
        statement = statement.where(Showtime.hall_id.in_(in_hall.scalar_subquery()))
    return filter_showtimes(statement, args)


def percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def add_ratios(figures: dict) -> dict:
    """What follows from the counts, for a showtime row and for each sum alike."""
    figures["utilization_percent"] = percent(figures["tickets_sold"], figures["seats_total"])
    figures["hold_conversion_percent"] = percent(figures["holds_confirmed"], figures["holds_created"])
    figures["attendance_percent"] = percent(figures["checked_in"], figures["tickets_sold"])
    return figures


def summed(rows: list[dict], **identity) -> dict:
    figures = {**identity, "showtime_count": len(rows)}
    for name in COUNTS:
        figures[name] = sum(row[name] for row in rows)
    return add_ratios(figures)


def seat_type_order(seat_type: str) -> tuple:
    """As SEAT_TYPES lists them (standard first), any other after them."""
    return (SEAT_TYPES.index(seat_type), "") if seat_type in SEAT_TYPES else (len(SEAT_TYPES), seat_type)


def build_report(args) -> dict:
    """The report's figures in cents, before encoding: showtime rows, their sums and the type breakdowns."""
    tz = current_app.config["CINEMA_TZ"]
    showtimes = []
    by_seat_type = defaultdict(lambda: [0, 0])
    by_ticket_type = defaultdict(lambda: [0, 0])
    for line in db.session.execute(report_statement(args)).mappings():
        if not showtimes or showtimes[-1]["showtime_id"] != line["showtime_id"]:
            row = {name: line[name] for name in ("showtime_id", "movie_id", "movie_title", "start_time", "hall")}
            row["day"] = line["start_time"].astimezone(tz).date()
            row.update({name: line[name] for name in SHOWTIME_COUNTS})
            row.update(dict.fromkeys(LINE_COUNTS, 0))
            showtimes.append(row)
        row = showtimes[-1]
        for name in LINE_COUNTS:
            row[name] += line[name]
        if line["tickets_sold"]:
            for breakdown, kind in ((by_seat_type, line["seat_type"]), (by_ticket_type, line["ticket_type"])):
                breakdown[kind][0] += line["tickets_sold"]
                breakdown[kind][1] += line["revenue"]
    for row in showtimes:
        add_ratios(row)

    movies, days = defaultdict(list), defaultdict(list)
    for row in showtimes:
        movies[row["movie_id"]].append(row)
        days[row["day"]].append(row)
    report = summed(showtimes, time_zone=current_app.config["CINEMA_TIMEZONE"])
    report["movies"] = sorted(
        (summed(rows, movie_id=movie_id, movie_title=rows[0]["movie_title"]) for movie_id, rows in movies.items()),
        key=lambda movie: (movie["movie_title"].casefold(), movie["movie_id"]),
    )
    report["days"] = [summed(rows, day=day) for day, rows in sorted(days.items())]
    report["seat_types"] = [
        {"seat_type": kind, "tickets_sold": tickets, "revenue": revenue}
        for kind, (tickets, revenue) in sorted(by_seat_type.items(), key=lambda item: seat_type_order(item[0]))
    ]
    report["ticket_types"] = [
        {"ticket_type": kind, "tickets_sold": tickets, "revenue": revenue}
        for kind, (tickets, revenue) in sorted(by_ticket_type.items())
    ]
    report["showtimes"] = showtimes
    return report


def json_body(report: dict) -> dict:
    # Hundreds of rows: dumped lean, with the schemas that document them.
    body = REPORT_TOTALS_DUMPER.dump(report)
    for key, dumper in LIST_DUMPERS.items():
        body[key] = [dumper.dump(item) for item in report[key]]
    return body


REPORT_TOTALS_DUMPER = s.LeanDumper(
    s.ReportSchema(exclude=("movies", "days", "seat_types", "ticket_types", "showtimes"))
)
REPORT_ROW_DUMPER = s.LeanDumper(s.ReportShowtimeSchema())
LIST_DUMPERS = {
    "movies": s.LeanDumper(s.ReportMovieSchema()),
    "days": s.LeanDumper(s.ReportDaySchema()),
    "seat_types": s.LeanDumper(s.ReportSeatTypeSchema()),
    "ticket_types": s.LeanDumper(s.ReportTicketTypeSchema()),
    "showtimes": REPORT_ROW_DUMPER,
}


# ---- CSV ---------------------------------------------------------------------------
#
# For spreadsheets as they open a file: UTF-8 with a byte order mark (without one, Excel
# reads UTF-8 as the local code page and "Amélie" comes out garbled; LibreOffice, Numbers
# and Google Sheets skip it), comma-separated, CRLF line ends and quotes where a cell
# holds a comma, a quote or a line break (RFC 4180), a header row, numbers with a dot,
# money as exact decimals ("12.50"), times as ISO 8601 with their offset.

CSV_MEDIA_TYPE = "text/csv"
# A cell a spreadsheet would run as a formula: = + - @ (and their full-width forms, which
# some spreadsheets fold into them), or a tab or line break before one. Such text gets a
# leading apostrophe, which spreadsheets show and never evaluate.
FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def spreadsheet_text(text: str) -> str:
    """``text`` as a cell that is never a formula (leading spaces do not hide one)."""
    if text.lstrip(" ")[:1] in FORMULA_STARTS:
        return "'" + text
    return text


def dollars_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def csv_cells(row: dict) -> list:
    dumped = REPORT_ROW_DUMPER.dump(row)
    cells = []
    for key, field in CSV_COLUMNS:
        if isinstance(field, s.Dollars):
            cells.append(dollars_text(row[field.attribute or key]))
        elif isinstance(dumped[key], str):
            cells.append(spreadsheet_text(dumped[key]))
        else:
            cells.append(dumped[key])
    return cells


CSV_COLUMNS = [(field.data_key or name, field) for name, field in s.ReportShowtimeSchema().dump_fields.items()]


def csv_body(report: dict) -> bytes:
    """The per-showtime rows, the JSON rows' keys as the header, one showtime a line."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([key for key, _ in CSV_COLUMNS])
    writer.writerows(csv_cells(row) for row in report["showtimes"])
    return ("\ufeff" + text.getvalue()).encode("utf-8")
