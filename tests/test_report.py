"""The admin report: totals over confirmed bookings, per-showtime figures, filters."""

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from conftest import assert_error, future
from models import Showtime, db

FIGURES = {
    "seats_total",
    "tickets_sold",
    "utilization_percent",
    "reservations",
    "revenue",
    "cancelled_reservations",
    "cancelled_tickets",
    "cancelled_revenue",
    "holds_created",
    "holds_confirmed",
    "hold_conversion_percent",
    "partly_cancelled_reservations",
    "checked_in",
    "attendance_percent",
}
# The keys the report always had, then what it gained.
REPORT_KEYS = {
    "total_reservations",
    "tickets_sold",
    "revenue_estimate",
    "cancelled_reservations",
    "showtimes",
} | {
    "cancelled_tickets",
    "cancelled_revenue",
    "seats_total",
    "utilization_percent",
    "showtime_count",
    "time_zone",
    "movies",
    "days",
    "seat_types",
    "ticket_types",
    "holds_created",
    "holds_confirmed",
    "hold_conversion_percent",
    "partly_cancelled_reservations",
    "checked_in",
    "attendance_percent",
}
SHOWTIME_KEYS = {
    "showtime_id",
    "movie_title",
    "start_time",
    "seats_total",
    "seats_booked",
    "utilization_percent",
    "revenue",
} | {"movie_id", "day", "hall", "reservations", "cancelled_reservations", "cancelled_tickets", "cancelled_revenue"} | {
    "holds_created", "holds_confirmed", "hold_conversion_percent", "partly_cancelled_reservations", "checked_in",
    "attendance_percent"}


def report(cinema, query=""):
    response = cinema.client.get(f"/admin/report{query}", headers=cinema.admin)
    assert response.status_code == 200, response.get_json()
    return response.json


def rows_by_id(body):
    return {row["showtime_id"]: row for row in body["showtimes"]}


def book(cinema, headers, showtime_id, seats):
    response = cinema.book(headers, showtime_id, seats)
    assert response.status_code == 201, response.json
    return response.json["reservation"]


def at(days, hour=18) -> datetime:
    moment = datetime.now(timezone.utc) + timedelta(days=days)
    return moment.replace(hour=hour, minute=0, second=0, microsecond=0)


def test_empty_report(cinema):
    assert report(cinema) == {
        "total_reservations": 0,
        "tickets_sold": 0,
        "revenue_estimate": 0,
        "cancelled_reservations": 0,
        "cancelled_tickets": 0,
        "cancelled_revenue": 0,
        "seats_total": 0,
        "utilization_percent": 0,
        "holds_created": 0,
        "holds_confirmed": 0,
        "hold_conversion_percent": 0,
        "partly_cancelled_reservations": 0,
        "checked_in": 0,
        "attendance_percent": 0,
        "showtime_count": 0,
        "time_zone": "UTC",
        "movies": [],
        "days": [],
        "seat_types": [],
        "ticket_types": [],
        "showtimes": [],
    }


def test_report_counts_confirmed_bookings_and_cancellations_apart(cinema):
    heat = cinema.movie(title="Heat")
    alien = cinema.movie(title="Alien")
    cheap = cinema.showtime_with_seats(movie_id=heat["id"], start_time=future(days=5), price=10)
    dear = cinema.showtime_with_seats(movie_id=alien["id"], start_time=future(days=6), price=15)
    alice, bob, carol = cinema.user("alice"), cinema.user("bob"), cinema.user("carol")
    book(cinema, alice, cheap["id"], ["A1", "A2"])
    book(cinema, bob, dear["id"], ["B1", "B2", "B3"])
    cancelled = book(cinema, carol, cheap["id"], ["A3", "A4", "A5"])
    assert cinema.client.delete(f"/reservations/{cancelled['id']}", headers=carol).status_code == 200

    body = report(cinema)
    assert set(body) == REPORT_KEYS
    assert body["total_reservations"] == 2
    assert body["tickets_sold"] == 5
    assert body["revenue_estimate"] == 65
    assert body["cancelled_reservations"] == 1

    assert [row["showtime_id"] for row in body["showtimes"]] == [cheap["id"], dear["id"]]
    rows = rows_by_id(body)
    for row in rows.values():
        assert set(row) == SHOWTIME_KEYS
    assert rows[cheap["id"]]["movie_title"] == "Heat"
    assert rows[cheap["id"]]["start_time"] == cheap["start_time"]
    assert rows[cheap["id"]]["seats_total"] == 20
    assert rows[cheap["id"]]["seats_booked"] == 2
    assert rows[cheap["id"]]["revenue"] == 20
    assert rows[dear["id"]]["movie_title"] == "Alien"
    assert rows[dear["id"]]["seats_booked"] == 3
    assert rows[dear["id"]]["revenue"] == 45


def test_showtimes_without_bookings_are_listed_with_zeros(cinema):
    showtime = cinema.showtime_with_seats()
    row = rows_by_id(report(cinema))[showtime["id"]]
    assert row["seats_total"] == 20
    assert row["seats_booked"] == 0
    assert row["utilization_percent"] == 0
    assert row["revenue"] == 0


def test_revenue_uses_the_price_paid_at_booking(app, cinema):
    showtime = cinema.showtime_with_seats(price=10)
    user = cinema.user()
    book(cinema, user, showtime["id"], ["A1", "A2"])

    # Through the API the price is frozen while the showtime is booked.
    refused = cinema.client.put(f"/showtimes/{showtime['id']}", json={"price": 50}, headers=cinema.admin)
    assert_error(refused, 409)
    # Change it behind the API's back: earlier bookings keep what they paid.
    with app.app_context():
        db.session.get(Showtime, showtime["id"]).price_cents = 5000
        db.session.commit()
    later = book(cinema, user, showtime["id"], ["A3"])
    assert later["total_price"] == 50

    body = report(cinema)
    assert body["revenue_estimate"] == 70
    assert rows_by_id(body)[showtime["id"]]["revenue"] == 70
    assert body["tickets_sold"] == 3


def test_cancelled_bookings_bring_no_revenue_or_tickets(cinema):
    showtime = cinema.showtime_with_seats(price=12)
    first, second = cinema.user(), cinema.user()
    old = book(cinema, first, showtime["id"], ["A1", "A2"])
    assert cinema.client.delete(f"/reservations/{old['id']}", headers=first).status_code == 200
    book(cinema, second, showtime["id"], ["A1"])  # one freed seat sold again

    body = report(cinema)
    assert body["total_reservations"] == 1
    assert body["cancelled_reservations"] == 1
    assert body["tickets_sold"] == 1
    assert body["revenue_estimate"] == 12
    row = rows_by_id(body)[showtime["id"]]
    assert row["seats_booked"] == 1
    assert row["revenue"] == 12
    assert row["utilization_percent"] == pytest.approx(5.0)


def test_utilization_percent(cinema):
    movie = cinema.movie()
    eight = cinema.showtime(movie_id=movie["id"], hall="One")
    assert cinema.client.post(
        "/seats", json={"showtime_id": eight["id"], "seats": [f"A{n}" for n in range(1, 9)]}, headers=cinema.admin
    ).status_code == 201
    three = cinema.showtime(movie_id=movie["id"], hall="Two")
    assert cinema.client.post(
        "/seats", json={"showtime_id": three["id"], "seats": ["A1", "A2", "A3"]}, headers=cinema.admin
    ).status_code == 201
    full = cinema.showtime(movie_id=movie["id"], hall="Three")
    assert cinema.client.post(
        "/seats", json={"showtime_id": full["id"], "seats": ["A1", "A2"]}, headers=cinema.admin
    ).status_code == 201
    empty_hall = cinema.showtime(movie_id=movie["id"], hall="Four")  # no seats at all

    user = cinema.user()
    book(cinema, user, eight["id"], ["A1", "A2", "A3"])
    book(cinema, user, three["id"], ["A1"])
    book(cinema, user, full["id"], ["A1", "A2"])

    rows = rows_by_id(report(cinema))
    assert rows[eight["id"]]["utilization_percent"] == pytest.approx(37.5)
    assert rows[three["id"]]["utilization_percent"] == pytest.approx(100 / 3, abs=0.05)
    assert rows[full["id"]]["utilization_percent"] == pytest.approx(100)
    assert rows[empty_hall["id"]]["seats_total"] == 0
    assert rows[empty_hall["id"]]["utilization_percent"] == 0


def test_report_filters_by_time(cinema):
    movie = cinema.movie()
    days = (5, 10, 15)
    showtimes = [cinema.showtime_with_seats(movie_id=movie["id"], start_time=at(day).isoformat()) for day in days]
    user = cinema.user()
    for showtime, seats in zip(showtimes, (["A1"], ["A1", "A2"], ["A1", "A2", "A3"])):
        book(cinema, user, showtime["id"], seats)

    def ids(query):
        return [row["showtime_id"] for row in report(cinema, query)["showtimes"]]

    since = quote(at(8).isoformat())
    until = quote(at(12).isoformat())
    assert ids(f"?from={since}") == [showtimes[1]["id"], showtimes[2]["id"]]
    assert ids(f"?to={until}") == [showtimes[0]["id"], showtimes[1]["id"]]
    window = report(cinema, f"?from={since}&to={until}")
    assert [row["showtime_id"] for row in window["showtimes"]] == [showtimes[1]["id"]]
    assert window["total_reservations"] == 1
    assert window["tickets_sold"] == 2
    assert window["revenue_estimate"] == 20
    # A naive time is read as the cinema's local time (UTC here).
    naive = at(8).replace(tzinfo=None).isoformat()
    assert ids(f"?from={naive}") == [showtimes[1]["id"], showtimes[2]["id"]]


def test_report_filters_by_movie(cinema):
    heat = cinema.movie(title="Heat")
    alien = cinema.movie(title="Alien")
    heat_show = cinema.showtime_with_seats(movie_id=heat["id"], hall="Main")
    alien_show = cinema.showtime_with_seats(movie_id=alien["id"], hall="Hall 2")
    user = cinema.user()
    book(cinema, user, heat_show["id"], ["A1"])
    book(cinema, user, alien_show["id"], ["A1", "A2"])

    body = report(cinema, f"?movie_id={alien['id']}")
    assert [row["showtime_id"] for row in body["showtimes"]] == [alien_show["id"]]
    assert body["tickets_sold"] == 2
    assert body["total_reservations"] == 1
    assert body["revenue_estimate"] == 20


def test_bad_filters_are_refused(cinema):
    for query in ("?from=soon", "?to=2030-13-01T00:00:00", "?movie_id=abc", "?movie_id=0"):
        assert_error(cinema.client.get(f"/admin/report{query}", headers=cinema.admin), 400)


def test_report_is_for_admins_only(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    book(cinema, user, showtime["id"], ["A1"])
    assert_error(cinema.client.get("/admin/report", headers=user), 403)
    assert_error(cinema.client.get("/admin/report"), 401)
    assert_error(cinema.client.get("/admin/report", headers={"Authorization": "Bearer not-a-token"}), 401)


# ---- what the report gained: types, cancellations, movies, days, halls -------------------


def book_tickets(cinema, headers, showtime_id, tickets):
    response = cinema.client.post(
        "/reservations",
        json={"showtime_id": showtime_id, "tickets": [{"seat": seat, "ticket_type": kind} for seat, kind in tickets]},
        headers=headers,
    )
    assert response.status_code == 201, response.json
    return response.json["reservation"]


def test_tickets_and_revenue_per_seat_type_and_ticket_type(cinema):
    showtime = cinema.showtime_with_seats(price=10, prices={"premium": 14.25})
    added = cinema.client.post(
        "/seats", json={"showtime_id": showtime["id"], "seats": ["C1", "C2", "C3", "C4"], "type": "premium"},
        headers=cinema.admin,
    )
    assert added.status_code == 201, added.json
    user = cinema.user()
    book_tickets(cinema, user, showtime["id"], [("A1", "adult"), ("A2", "child"), ("C1", "adult")])
    book_tickets(cinema, user, showtime["id"], [("C2", "senior"), ("C4", "child")])
    cancelled = book_tickets(cinema, user, showtime["id"], [("C3", "student"), ("B1", "adult")])
    assert cinema.client.delete(f"/reservations/{cancelled['id']}", headers=user).status_code == 200

    body = report(cinema)

    # standard 10.00 / child 6.00; premium 14.25 / senior 12.25 / child 8.55 (60 %, to the cent)
    assert body["seat_types"] == [
        {"seat_type": "standard", "tickets_sold": 2, "revenue": 16.0},
        {"seat_type": "premium", "tickets_sold": 3, "revenue": 35.05},
    ]
    assert body["ticket_types"] == [
        {"ticket_type": "adult", "tickets_sold": 2, "revenue": 24.25},
        {"ticket_type": "child", "tickets_sold": 2, "revenue": 14.55},
        {"ticket_type": "senior", "tickets_sold": 1, "revenue": 12.25},
    ]
    assert body["revenue_estimate"] == 51.05
    assert body["tickets_sold"] == 5
    # The cancelled booking: student on premium 12.75, adult on standard 10.00.
    assert (body["cancelled_reservations"], body["cancelled_tickets"], body["cancelled_revenue"]) == (1, 2, 22.75)
    row = rows_by_id(body)[showtime["id"]]
    assert (row["reservations"], row["seats_booked"], row["revenue"]) == (2, 5, 51.05)
    assert (row["cancelled_reservations"], row["cancelled_tickets"], row["cancelled_revenue"]) == (1, 2, 22.75)
    assert row["seats_total"] == 24 and row["utilization_percent"] == pytest.approx(20.8)


def test_held_reservations_are_neither_sold_nor_cancelled(app, cinema):
    from models import HELD, Reservation

    showtime = cinema.showtime_with_seats(price=10)
    user = cinema.user()
    held = book(cinema, user, showtime["id"], ["A1", "A2"])
    with app.app_context():
        db.session.get(Reservation, held["id"]).status = HELD
        db.session.get(Showtime, showtime["id"]).version += 1
        db.session.commit()

    body = report(cinema)
    assert (body["total_reservations"], body["tickets_sold"], body["revenue_estimate"]) == (0, 0, 0)
    assert (body["cancelled_reservations"], body["cancelled_tickets"]) == (0, 0)
    assert body["seat_types"] == [] and body["ticket_types"] == []


@pytest.fixture
def berlin(tmp_path):
    """A cinema in Europe/Berlin (UTC+1 in January)."""
    from app import create_app
    from conftest import Cinema, test_config

    return Cinema(create_app(test_config(tmp_path, CINEMA_TIMEZONE="Europe/Berlin")).test_client())


def test_totals_per_movie_and_per_local_day(berlin):
    heat = berlin.movie(title="Heat", duration_minutes=100)
    alien = berlin.movie(title="alien", duration_minutes=100)  # sorted by title, any case
    # 23:30 and 00:30 in Berlin are 22:30 and 23:30 UTC: one UTC date, two local days.
    late = berlin.showtime_with_seats(movie_id=heat["id"], start_time="2030-01-15T23:30:00", hall="One", price=10)
    night = berlin.showtime_with_seats(movie_id=heat["id"], start_time="2030-01-16T00:30:00", hall="Two", price=8)
    evening = berlin.showtime_with_seats(movie_id=alien["id"], start_time="2030-01-15T18:00:00", hall="One", price=12)
    user = berlin.user()
    book(berlin, user, late["id"], ["A1", "A2"])
    book(berlin, user, night["id"], ["A1"])
    book(berlin, user, evening["id"], ["A1", "A2", "A3"])
    gone = book(berlin, user, night["id"], ["B1", "B2"])
    assert berlin.client.delete(f"/reservations/{gone['id']}", headers=user).status_code == 200

    body = report(berlin)

    assert body["time_zone"] == "Europe/Berlin"
    rows = rows_by_id(body)
    assert rows[late["id"]]["day"] == "2030-01-15" and rows[night["id"]]["day"] == "2030-01-16"
    assert rows[night["id"]]["start_time"] == "2030-01-16T00:30:00+01:00"
    assert body["days"] == [
        {"day": "2030-01-15", "showtime_count": 2, "seats_total": 40, "tickets_sold": 5, "utilization_percent": 12.5,
         "reservations": 2, "revenue": 56.0, "cancelled_reservations": 0, "cancelled_tickets": 0,
         "cancelled_revenue": 0,
         "holds_created": 0, "holds_confirmed": 0, "hold_conversion_percent": 0,
         "partly_cancelled_reservations": 0, "checked_in": 0, "attendance_percent": 0},
        {"day": "2030-01-16", "showtime_count": 1, "seats_total": 20, "tickets_sold": 1, "utilization_percent": 5.0,
         "reservations": 1, "revenue": 8.0, "cancelled_reservations": 1, "cancelled_tickets": 2,
         "cancelled_revenue": 16.0,
         "holds_created": 0, "holds_confirmed": 0, "hold_conversion_percent": 0,
         "partly_cancelled_reservations": 0, "checked_in": 0, "attendance_percent": 0},
    ]
    assert body["movies"] == [
        {"movie_id": alien["id"], "movie_title": "alien", "showtime_count": 1, "seats_total": 20, "tickets_sold": 3,
         "utilization_percent": 15.0, "reservations": 1, "revenue": 36.0, "cancelled_reservations": 0,
         "cancelled_tickets": 0, "cancelled_revenue": 0,
         "holds_created": 0, "holds_confirmed": 0, "hold_conversion_percent": 0,
         "partly_cancelled_reservations": 0, "checked_in": 0, "attendance_percent": 0},
        {"movie_id": heat["id"], "movie_title": "Heat", "showtime_count": 2, "seats_total": 40, "tickets_sold": 3,
         "utilization_percent": 7.5, "reservations": 2, "revenue": 28.0, "cancelled_reservations": 1,
         "cancelled_tickets": 2, "cancelled_revenue": 16.0,
         "holds_created": 0, "holds_confirmed": 0, "hold_conversion_percent": 0,
         "partly_cancelled_reservations": 0, "checked_in": 0, "attendance_percent": 0},
    ]
    assert (body["showtime_count"], body["seats_total"], body["utilization_percent"]) == (3, 60, 10.0)
    # A from/to bound in local time cuts between the two local days.
    next_day = report(berlin, "?from=2030-01-16T00:00:00")
    assert [day["day"] for day in next_day["days"]] == ["2030-01-16"]
    assert [row["showtime_id"] for row in next_day["showtimes"]] == [night["id"]]


def test_the_hall_filter_takes_a_halls_name_in_any_case(cinema):
    movie = cinema.movie(title="Heat")
    main = cinema.showtime_with_seats(movie_id=movie["id"], hall="Main", price=10)
    studio = cinema.showtime_with_seats(movie_id=movie["id"], hall="Studio 2", price=10)
    other = cinema.showtime_with_seats(movie_id=cinema.movie(title="Up")["id"], hall="Studio 2", price=10,
                                       start_time=future(days=40))
    user = cinema.user()
    book(cinema, user, main["id"], ["A1"])
    book(cinema, user, studio["id"], ["A1", "A2"])
    book(cinema, user, other["id"], ["A1", "A2", "A3"])

    def ids(query):
        return [row["showtime_id"] for row in report(cinema, query)["showtimes"]]

    assert ids("?hall=Main") == [main["id"]]
    assert ids("?hall=STUDIO%20%202") == [studio["id"], other["id"]]  # case and spaces folded
    in_studio = report(cinema, "?hall=studio 2")
    assert (in_studio["tickets_sold"], in_studio["revenue_estimate"], in_studio["total_reservations"]) == (5, 50, 2)
    assert ids(f"?hall=studio 2&movie_id={movie['id']}") == [studio["id"]]
    nowhere = report(cinema, "?hall=Nowhere")
    assert nowhere["showtimes"] == [] and nowhere["tickets_sold"] == 0 and nowhere["movies"] == []

    # A renamed hall: its showtimes answer to the new name, and show it.
    halls = cinema.client.get("/halls", headers=cinema.admin).json
    hall_id = next(hall["id"] for hall in halls if hall["name"] == "Studio 2")
    renamed = cinema.client.put(f"/halls/{hall_id}", json={"name": "Studio Two"}, headers=cinema.admin)
    assert renamed.status_code == 200, renamed.json
    assert ids("?hall=studio 2") == []
    body = report(cinema, "?hall=studio two")
    assert [row["hall"] for row in body["showtimes"]] == ["Studio Two", "Studio Two"]


@pytest.mark.parametrize(
    "query, field",
    [
        ("?hall=", "hall"),
        ("?hall=" + "x" * 51, "hall"),
        ("?hall=Main%01", "hall"),
        ("?hall=Main%0A", "hall"),
        ("?format=xml", "format"),
        ("?format=CSV", "format"),
        ("?format=", "format"),
    ],
)
def test_bad_hall_and_format_values_are_refused(cinema, query, field):
    body = assert_error(cinema.client.get(f"/admin/report{query}", headers=cinema.admin), 400)
    assert field in body.get("errors", {}), body


def test_every_figure_is_in_every_part_of_the_report(cinema):
    """A figure added to ReportFiguresSchema reaches the rows, the movies, the days and the totals."""
    import schemas as s

    assert set(s.REPORT_FIGURES) == set(s.ReportFiguresSchema().fields) == FIGURES
    cinema.showtime_with_seats()
    body = report(cinema)
    for part in (body["movies"][0], body["days"][0]):
        assert FIGURES <= set(part)
    assert FIGURES - {"tickets_sold"} <= set(body["showtimes"][0])
    assert FIGURES - set(s.REPORT_FIRST_FIGURES) <= set(body)
