"""The report agrees with the database to the cent, on a few thousand generated bookings.

The data set is written in bulk (halls, movies and users through the API, then showtimes,
seats, reservations and their lines as multi-row inserts), plus bookings and
cancellations through HTTP on top. Every figure is then recomputed with plain SQL
(``text()``, nothing of reports.py) for each filter and compared with the JSON and the CSV.
"""

import csv
import io
import json
import random
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, bindparam, insert, text, update

from app import create_app
from conftest import Cinema, test_config
from models import Reservation, ReservationSeat, Seat, Showtime, db

ZONE = ZoneInfo("Europe/Berlin")
HALLS = ("Main", "Studio 2", "Großer Saal")
TITLES = ("Heat", "Amélie", "=HYPERLINK(\"http://x.example\")", "Alien, \"Director's Cut\"", "Up")
TICKET_TYPES = ("adult", "child", "senior", "student")
LOCAL_TIMES = (time(0, 20), time(10, 0), time(14, 30), time(18, 0), time(21, 15), time(23, 30))
SHOWTIMES, ROWS, SEATS_PER_ROW = 60, "ABCDEFGHIJ", 10


def seat_type_of(row: str, number: int) -> str:
    if row == "J":
        return "premium"
    if row == "A" and number <= 2:
        return "accessible"
    return "companion" if row == "A" and number == 3 else "standard"


def price_for(ticket_type: str, seat_price: int) -> int:
    """The default ticket types' rules (models.DEFAULT_TICKET_TYPES), restated."""
    return {
        "adult": seat_price,
        "child": (seat_price * 60 + 50) // 100,
        "senior": max(0, seat_price - 200),
        "student": max(0, seat_price - 150),
    }[ticket_type]


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZONE).astimezone(timezone.utc)


class DataSet:
    """Generates the cinema; keeps what the HTTP bookings need (free seats, the users)."""

    def __init__(self, app, cinema, seed=20301):
        self.app, self.cinema, self.random = app, cinema, random.Random(seed)
        self.halls = {}
        for name in HALLS:
            response = cinema.client.post("/halls", json={"name": name}, headers=cinema.admin)
            assert response.status_code == 201, response.json
            self.halls[name] = response.json["id"]
        self.movies = [cinema.movie(title=title, duration_minutes=90)["id"] for title in TITLES]
        self.users = [cinema.user_and_headers() for _ in range(4)]
        # Far enough ahead that each showtime can still be booked and cancelled.
        self.first_day = (datetime.now(ZONE) + timedelta(days=3)).date()

    def build(self):
        with self.app.app_context():
            showtimes = self.insert_showtimes()
            seats = self.insert_seats(showtimes)
            self.insert_bookings(showtimes, seats)
            db.session.commit()

    def insert_showtimes(self):
        rows = []
        for index in range(SHOWTIMES):
            hall = HALLS[index % len(HALLS)]
            day = self.first_day + timedelta(days=index // (len(HALLS) * len(LOCAL_TIMES)))
            start = local(day, LOCAL_TIMES[(index // len(HALLS)) % len(LOCAL_TIMES)])
            price = self.random.choice((799, 1050, 1199, 1333, 999))
            rows.append(
                {
                    "movie_id": self.random.choice(self.movies),
                    "start_time": start,
                    "end_time": start + timedelta(minutes=100),
                    "hall": hall,
                    "hall_id": self.halls[hall],
                    "price_cents": price,
                    "prices": {"premium": price + 301, "accessible": price - 99},
                    # Two archived showtimes: one with bookings (kept), one without (left out).
                    "deleted_at": datetime.now(timezone.utc) if index in (7, 8) else None,
                }
            )
        ids = db.session.scalars(insert(Showtime).returning(Showtime.id, sort_by_parameter_order=True), rows).all()
        return [{**row, "id": showtime_id} for row, showtime_id in zip(rows, ids, strict=True)]

    def insert_seats(self, showtimes):
        rows = [
            {"showtime_id": showtime["id"], "label": f"{row}{number}", "row": row, "number": number,
             "seat_type": seat_type_of(row, number)}
            for showtime in showtimes
            for row in ROWS
            for number in range(1, SEATS_PER_ROW + 1)
        ]
        ids = db.session.scalars(insert(Seat).returning(Seat.id, sort_by_parameter_order=True), rows).all()
        seats = {}
        for row, seat_id in zip(rows, ids, strict=True):
            seats.setdefault(row["showtime_id"], []).append({**row, "id": seat_id})
        return seats

    def insert_bookings(self, showtimes, seats):
        reservations, lines = [], []
        self.free = {}
        for showtime in showtimes:
            if showtime["id"] == showtimes[8]["id"]:  # the archived showtime without bookings
                self.free[showtime["id"]] = []
                continue
            pool = list(seats[showtime["id"]])
            self.random.shuffle(pool)
            for _ in range(self.random.randint(35, 65)):
                status = self.random.choices(("confirmed", "cancelled", "held"), (75, 20, 5))[0]
                size = min(self.random.randint(1, 4), len(pool) - 12)  # keep seats for the HTTP bookings
                if size < 1:
                    break
                taken = pool[:size]
                if status != "cancelled":  # a cancelled booking's seats are free again
                    del pool[:size]
                booked_lines = []
                for seat in taken:
                    ticket_type = self.random.choice(TICKET_TYPES)
                    seat_price = showtime["prices"].get(seat["seat_type"], showtime["price_cents"])
                    booked_lines.append(
                        {"seat_id": seat["id"], "seat_type": seat["seat_type"], "ticket_type": ticket_type,
                         "price_cents": price_for(ticket_type, seat_price)}
                    )
                reservations.append(
                    {
                        "user_id": self.random.choice(self.users)[0]["id"],
                        "showtime_id": showtime["id"],
                        "status": status,
                        "total_cents": sum(line["price_cents"] for line in booked_lines),
                        "cancelled_at": datetime.now(timezone.utc) if status == "cancelled" else None,
                        "expires_at": datetime.now(timezone.utc) + timedelta(minutes=10) if status == "held" else None,
                        "email_status": "sent",
                    }
                )
                lines.append(booked_lines)
            self.free[showtime["id"]] = [seat["label"] for seat in pool if seat["seat_type"] in ("standard", "premium")]
        ids = db.session.scalars(
            insert(Reservation).returning(Reservation.id, sort_by_parameter_order=True), reservations
        ).all()
        db.session.execute(
            insert(ReservationSeat),
            [{**line, "reservation_id": reservation_id} for reservation_id, booked in zip(ids, lines) for line in booked],
        )
        db.session.execute(
            text(
                "UPDATE seats SET reservation_id = (SELECT r.id FROM reservation_seats rs "
                "JOIN reservations r ON r.id = rs.reservation_id "
                "WHERE rs.seat_id = seats.id AND r.status IN ('confirmed', 'held'))"
            )
        )
        self.reservations = len(ids)
        self.showtimes = showtimes

    def book_through_http(self):
        """Bookings with mixed tickets, and cancellations of some of them, as guests make them."""
        client = self.cinema.client
        bookable = [showtime for showtime in self.showtimes if showtime["deleted_at"] is None]
        booked = []
        for number in range(24):
            showtime = bookable[(number * 7) % len(bookable)]
            seats = [self.free[showtime["id"]].pop() for _ in range(1 + number % 3)]
            tickets = [{"seat": seat, "ticket_type": TICKET_TYPES[(number + index) % 4]} for index, seat in enumerate(seats)]
            headers = self.users[number % len(self.users)][1]
            response = client.post("/reservations", json={"showtime_id": showtime["id"], "tickets": tickets}, headers=headers)
            assert response.status_code == 201, response.json
            booked.append((response.json["reservation"]["id"], headers))
        for reservation_id, headers in booked[::4]:
            assert client.delete(f"/reservations/{reservation_id}", headers=headers).status_code == 200
        # Holds: some confirmed (one of them cancelled since), some released, some left to lapse.
        for number in range(9):
            showtime = bookable[(number * 5 + 3) % len(bookable)]
            headers = self.users[number % len(self.users)][1]
            seats = [self.free[showtime["id"]].pop() for _ in range(1 + number % 2)]
            held = client.post("/holds", json={"showtime_id": showtime["id"], "seats": seats}, headers=headers)
            assert held.status_code == 201, held.json
            hold_id = held.json["hold"]["id"]
            if number % 3 == 0:
                assert client.post("/reservations", json={"hold_id": hold_id}, headers=headers).status_code == 201
                if number == 3:
                    assert client.delete(f"/reservations/{hold_id}", headers=headers).status_code == 200
            elif number % 3 == 1:
                assert client.delete(f"/holds/{hold_id}", headers=headers).status_code == 200
        # Seats given back alone: one of each of five three-seat bookings.
        three_seats = [entry for number, entry in enumerate(booked) if number % 3 == 2 and number % 4]  # not cancelled
        for reservation_id, headers in three_seats[:5]:
            seats = client.get(f"/reservations/{reservation_id}", headers=headers).json["seats"]
            given = client.post(f"/reservations/{reservation_id}/cancel", json={"seats": seats[:1]}, headers=headers)
            assert given.status_code == 200, given.json
        self.check_in_some()
        return len(booked)

    def check_in_some(self):
        """A showtime about to start: three tickets booked, two of them admitted at the door."""
        client, showtime = self.cinema.client, self.showtimes[-1]
        with self.app.app_context():
            db.session.execute(
                update(Showtime).where(Showtime.id == showtime["id"])
                .values(start_time=datetime.now(timezone.utc) + timedelta(minutes=45), deleted_at=None)
            )
            db.session.commit()
        showtime["deleted_at"] = None
        headers = self.users[0][1]
        seats = [self.free[showtime["id"]].pop() for _ in range(3)]
        booked = client.post("/reservations", json={"showtime_id": showtime["id"], "seats": seats}, headers=headers)
        assert booked.status_code == 201, booked.json
        tickets = client.get(f"/reservations/{booked.json['reservation']['id']}/tickets", headers=headers).json
        for ticket in tickets["tickets"][:2]:
            admitted = client.post("/check-ins", json={"secret": ticket["secret"]}, headers=self.cinema.admin)
            assert admitted.status_code == 200, admitted.json


@pytest.fixture
def berlin_cinema(tmp_path):
    # The bulk data gives each of the few guests dozens of seats a showtime: no seat limit here.
    app = create_app(test_config(tmp_path, CINEMA_TIMEZONE="Europe/Berlin", MAX_SEATS_PER_USER_PER_SHOWTIME=10_000))
    return app, Cinema(app.test_client())


# ---- the figures again, in plain SQL ------------------------------------------------------

SOLD_LINE = "r.status = 'confirmed' AND rs.cancelled_at IS NULL"
GIVEN_BACK = "(rs.cancelled_at IS NOT NULL OR r.status = 'cancelled')"
LINES = (
    "SELECT {key} AS k, "
    f"SUM(CASE WHEN {SOLD_LINE} THEN 1 ELSE 0 END), "
    f"SUM(CASE WHEN {SOLD_LINE} THEN rs.price_cents ELSE 0 END), "
    f"SUM(CASE WHEN {GIVEN_BACK} THEN 1 ELSE 0 END), "
    f"SUM(CASE WHEN {GIVEN_BACK} THEN rs.price_cents ELSE 0 END) "
    "FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id "
    "JOIN showtimes s ON s.id = r.showtime_id WHERE {where} GROUP BY 1"
)
RESERVATIONS = (
    "SELECT {key} AS k, "
    "SUM(CASE WHEN r.status = 'confirmed' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN r.status = 'cancelled' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN r.status = 'confirmed' THEN r.total_cents ELSE 0 END), "
    "SUM(CASE WHEN r.expires_at IS NOT NULL THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN r.expires_at IS NOT NULL AND r.status IN ('confirmed', 'cancelled') THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN r.status = 'confirmed' AND EXISTS (SELECT 1 FROM reservation_seats x "
    "WHERE x.reservation_id = r.id AND x.cancelled_at IS NOT NULL) THEN 1 ELSE 0 END) "
    "FROM reservations r JOIN showtimes s ON s.id = r.showtime_id WHERE {where} GROUP BY 1"
)
SEATS = "SELECT {key} AS k, COUNT(*) FROM seats JOIN showtimes s ON s.id = seats.showtime_id WHERE {where} GROUP BY 1"
CHECKED_IN = (
    "SELECT {key} AS k, COUNT(*) FROM tickets t JOIN reservations r ON r.id = t.reservation_id "
    "JOIN showtimes s ON s.id = r.showtime_id WHERE t.checked_in_at IS NOT NULL AND {where} GROUP BY 1"
)
SHOWTIME_COUNT = "SELECT {key} AS k, COUNT(*) FROM showtimes s WHERE {where} GROUP BY 1"
TYPES = (
    "SELECT rs.{column}, COUNT(*), SUM(rs.price_cents) FROM reservation_seats rs "
    "JOIN reservations r ON r.id = rs.reservation_id JOIN showtimes s ON s.id = r.showtime_id "
    "WHERE r.status = 'confirmed' AND rs.cancelled_at IS NULL AND {where} GROUP BY rs.{column}"
)
LISTED = "(s.deleted_at IS NULL OR EXISTS (SELECT 1 FROM reservations x WHERE x.showtime_id = s.id))"


def run(sql, params):
    statement = text(sql)
    for name, value in params.items():
        if isinstance(value, datetime):
            statement = statement.bindparams(bindparam(name, type_=DateTime()))
    return db.session.execute(statement, params).all()


def where_clause(filters) -> tuple[str, dict]:
    """The report's filters as SQL: (condition, parameters)."""
    conditions, params = [LISTED], {}
    if "movie_id" in filters:
        conditions.append("s.movie_id = :movie_id")
        params["movie_id"] = filters["movie_id"]
    if "hall_key" in filters:
        conditions.append("s.hall_id IN (SELECT id FROM halls WHERE name_key = :hall_key)")
        params["hall_key"] = filters["hall_key"]
    if "from" in filters:
        conditions.append("s.start_time >= :since")
        params["since"] = filters["from"].astimezone(timezone.utc).replace(tzinfo=None)
    if "to" in filters:
        conditions.append("s.start_time <= :until")
        params["until"] = filters["to"].astimezone(timezone.utc).replace(tzinfo=None)
    return " AND ".join(conditions), params


def day_key(days) -> tuple[str, dict]:
    """A CASE naming each showtime's local day by the UTC bounds of the days (zoneinfo)."""
    cases, params = [], {}
    for number, day in enumerate(days):
        start, end = local(day, time.min), local(day + timedelta(days=1), time.min)
        cases.append(f"WHEN s.start_time >= :day{number}_start AND s.start_time < :day{number}_end THEN '{day}'")
        params[f"day{number}_start"] = start.replace(tzinfo=None)
        params[f"day{number}_end"] = end.replace(tzinfo=None)
    return f"(CASE {' '.join(cases)} END)", params


def expected_figures(filters, key, key_params=None) -> dict:
    """key -> every figure the report sums, from SQL alone (money in cents)."""
    where, params = where_clause(filters)
    params = {**params, **(key_params or {})}
    figures = {}

    def at(k):
        return figures.setdefault(str(k), dict.fromkeys(
            ("showtime_count", "seats_total", "tickets_sold", "revenue", "cancelled_tickets", "cancelled_revenue",
             "reservations", "cancelled_reservations", "reservation_totals", "holds_created",
             "holds_confirmed", "partly_cancelled_reservations", "checked_in"), 0))

    for k, count in run(SHOWTIME_COUNT.format(key=key, where=where), params):
        at(k)["showtime_count"] = count
    for k, count in run(SEATS.format(key=key, where=where), params):
        at(k)["seats_total"] = count
    for k, sold, revenue, cancelled, cancelled_revenue in run(LINES.format(key=key, where=where), params):
        at(k).update(tickets_sold=sold, revenue=revenue, cancelled_tickets=cancelled,
                     cancelled_revenue=cancelled_revenue)
    for k, confirmed, cancelled, totals, holds, holds_confirmed, partly in run(
        RESERVATIONS.format(key=key, where=where), params
    ):
        at(k).update(reservations=confirmed, cancelled_reservations=cancelled, reservation_totals=totals,
                     holds_created=holds, holds_confirmed=holds_confirmed, partly_cancelled_reservations=partly)
    for k, count in run(CHECKED_IN.format(key=key, where=where), params):
        at(k)["checked_in"] = count
    return figures


def expected_types(filters, column) -> dict:
    where, params = where_clause(filters)
    return {kind: {"tickets_sold": count, "revenue": cents}
            for kind, count, cents in run(TYPES.format(column=column, where=where), params)}


def cents(value) -> int:
    """Dollars as the JSON wrote them (read as Decimal, never a float) in cents; exact or it fails."""
    amount = Decimal(value) * 100
    assert amount == amount.to_integral_value(), value
    return int(amount)


def reported(item, names) -> dict:
    return {name: cents(item[name]) if name in MONEY else item[name] for name in names}


MONEY = ("revenue", "cancelled_revenue")
SUMMED = ("seats_total", "tickets_sold", "revenue", "cancelled_tickets", "cancelled_revenue",
          "reservations", "cancelled_reservations", "holds_created", "holds_confirmed",
          "partly_cancelled_reservations", "checked_in")


def percent(part, whole):
    return round(100 * part / whole, 1) if whole else 0.0


def check_group(listed, expected, key_of, showtime_counts=True):
    assert sorted(str(key_of(item)) for item in listed) == sorted(expected)
    for item in listed:
        figures = expected[str(key_of(item))]
        names = SUMMED + (("showtime_count",) if showtime_counts else ())
        assert reported(item, names) == {name: figures[name] for name in names}, item
        assert item["utilization_percent"] == Decimal(str(percent(figures["tickets_sold"], figures["seats_total"])))
        assert item["hold_conversion_percent"] == Decimal(
            str(percent(figures["holds_confirmed"], figures["holds_created"]))
        )
        assert item["attendance_percent"] == Decimal(str(percent(figures["checked_in"], figures["tickets_sold"])))
        # What the confirmed reservations cost now is what their lines still held were sold for.
        assert figures["reservation_totals"] == figures["revenue"]


def report_of(cinema, query):
    response = cinema.client.get(f"/admin/report?{query}", headers=cinema.admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    return json.loads(response.get_data(), parse_float=Decimal)


def csv_of(cinema, query):
    response = cinema.client.get(f"/admin/report?{query}", headers={**cinema.admin, "Accept": "text/csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"), newline="")))


def test_the_report_matches_plain_sql_to_the_cent(berlin_cinema):
    app, cinema = berlin_cinema
    data = DataSet(app, cinema)
    data.build()
    assert data.book_through_http() == 24
    whole = report_of(cinema, "")
    # The data set holds every kind of figure: partial cancellations, check-ins, holds.
    assert (whole["partly_cancelled_reservations"], whole["checked_in"]) == (5, 2)
    assert whole["holds_created"] > whole["holds_confirmed"] >= 3
    assert data.reservations > 2500  # a few thousand bookings, with the ones above

    since = datetime.combine(data.first_day + timedelta(days=1), time(14, 30), tzinfo=ZONE)
    until = datetime.combine(data.first_day + timedelta(days=3), time(23, 30), tzinfo=ZONE)
    cases = [
        ({}, {}),
        ({"movie_id": data.movies[1]}, {"movie_id": data.movies[1]}),
        ({"hall": "GROSSER  saal"}, {"hall_key": "grosser saal"}),  # ß folds to ss, spaces collapse
        ({"hall": "main"}, {"hall_key": "main"}),
        ({"from": since.isoformat()}, {"from": since}),
        ({"to": until.isoformat()}, {"to": until}),
        ({"from": since.isoformat(), "to": until.isoformat(), "hall": "Studio 2"},
         {"from": since, "to": until, "hall_key": "studio 2"}),
        ({"hall": "studio 2", "movie_id": data.movies[0]}, {"hall_key": "studio 2", "movie_id": data.movies[0]}),
        ({"hall": "Nowhere"}, {"hall_key": "nowhere"}),
    ]
    days = [data.first_day + timedelta(days=number) for number in range(-4, 8)]
    for query, filters in cases:
        query = urlencode(query)
        body = report_of(cinema, query)
        with app.app_context():
            totals = expected_figures(filters, "'all'").get("all")
            per_movie = expected_figures(filters, "s.movie_id")
            per_showtime = expected_figures(filters, "s.id")
            per_day = expected_figures(filters, *day_key(days))
            seat_types = expected_types(filters, "seat_type")
            ticket_types = expected_types(filters, "ticket_type")

        if totals is None:  # nothing matches
            assert body["showtimes"] == [] and body["tickets_sold"] == 0 and body["revenue_estimate"] == 0
            continue
        top = {**body, "reservations": body["total_reservations"], "revenue": body["revenue_estimate"]}
        check_group([top], {"all": totals}, lambda item: "all")
        check_group(body["movies"], per_movie, lambda item: item["movie_id"])
        check_group(body["days"], per_day, lambda item: item["day"])
        assert "None" not in per_day  # every showtime fell on one of the days looked at
        showtimes = [{**row, "tickets_sold": row["seats_booked"]} for row in body["showtimes"]]
        check_group(showtimes, per_showtime, lambda item: item["showtime_id"], showtime_counts=False)
        for listing, expected, name in ((body["seat_types"], seat_types, "seat_type"),
                                        (body["ticket_types"], ticket_types, "ticket_type")):
            assert {item[name]: reported(item, ("tickets_sold", "revenue")) for item in listing} == expected

        # The CSV: the same rows, the money as exact decimals.
        rows = csv_of(cinema, query)
        assert [int(row["showtime_id"]) for row in rows] == [row["showtime_id"] for row in body["showtimes"]]
        for row in rows:
            figures = per_showtime[row["showtime_id"]]
            assert row["revenue"] == f"{figures['revenue'] // 100}.{figures['revenue'] % 100:02d}"
            assert row["cancelled_revenue"] == f"{figures['cancelled_revenue'] // 100}.{figures['cancelled_revenue'] % 100:02d}"
            assert int(row["seats_booked"]) == figures["tickets_sold"]

    everything = report_of(cinema, "")
    assert {row["hall"] for row in everything["showtimes"]} == set(HALLS)
    assert len(everything["seat_types"]) == 4 and len(everything["ticket_types"]) == 4
    assert everything["cancelled_reservations"] > 100
    # One archived showtime with bookings is listed, the one without is not.
    listed = {row["showtime_id"] for row in everything["showtimes"]}
    assert data.showtimes[7]["id"] in listed and data.showtimes[8]["id"] not in listed
