"""The admin report: totals over confirmed bookings, per-showtime figures, filters."""

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from conftest import assert_error, future
from models import Showtime, db

REPORT_KEYS = {
    "total_reservations",
    "tickets_sold",
    "revenue_estimate",
    "cancelled_reservations",
    "showtimes",
}
SHOWTIME_KEYS = {
    "showtime_id",
    "movie_title",
    "start_time",
    "seats_total",
    "seats_booked",
    "utilization_percent",
    "revenue",
}


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
        assert SHOWTIME_KEYS <= set(row)
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
