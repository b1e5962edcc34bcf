"""No N+1: hot read endpoints run the same number of SQL statements for few or many rows."""

from datetime import date, datetime, timezone

import pytest

from booking import reservation_query
from conftest import future


def grow(cinema, user, movies, seat_rows, bookings):
    """Add ``movies`` movies with a showtime each, seats, and bookings by ``user``."""
    showtimes = []
    for number in range(movies):
        movie = cinema.movie(title=f"Film {len(cinema.created)}", genre="Drama")
        cinema.created.append(movie)
        showtime = cinema.showtime(
            movie_id=movie["id"], start_time=future(days=10 + len(cinema.created)), hall="Main"
        )
        cinema.seats(showtime["id"], rows=seat_rows, seats_per_row=10)
        showtimes.append(showtime)
    for index in range(bookings):
        showtime = showtimes[index % len(showtimes)]
        seats = [f"A{index // len(showtimes) + 1}", f"B{index // len(showtimes) + 1}"]
        assert cinema.book(user, showtime["id"], seats).status_code == 201
    return showtimes


@pytest.fixture
def shop(cinema):
    cinema.created = []
    return cinema


def statements_for(count_statements, client, url, headers):
    client.get(url, headers=headers)  # warm up: nothing first-time-only is counted
    client.application.extensions["report_bodies"].clear()  # the report is built, not taken from the cache
    with count_statements() as statements:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.json
    return len(statements), response


ENDPOINTS = {
    "movie list": lambda showtime: "/movies",
    "movie search": lambda showtime: "/movies/search?q=film",
    "seat map": lambda showtime: f"/showtimes/{showtime['id']}/seats",
    "reservation list": lambda showtime: "/reservations",
    "all reservations": lambda showtime: "/reservations?all=true",
    "showtime list": lambda showtime: "/showtimes",
    "movie detail": lambda showtime: f"/movies/{showtime['movie_id']}",
    "report": lambda showtime: "/admin/report",
    "report CSV": lambda showtime: "/admin/report?format=csv",
    "report of a hall": lambda showtime: "/admin/report?hall=main",
}
ADMIN_ONLY = ("report", "report CSV", "report of a hall", "all reservations")


@pytest.mark.parametrize("name", ENDPOINTS)
def test_statement_count_does_not_grow_with_the_data(shop, count_statements, name):
    user = shop.user("fan")
    headers = shop.admin if name in ADMIN_ONLY else user
    url_of = ENDPOINTS[name]

    first = grow(shop, user, movies=2, seat_rows="A-B", bookings=2)[0]
    small, small_response = statements_for(count_statements, shop.client, url_of(first), headers)

    # Many more movies, showtimes, seats and reservations, all on the same page.
    showtimes = grow(shop, user, movies=8, seat_rows="A-F", bookings=14)
    shop.seats(first["id"], rows="C-H", seats_per_row=10)
    large, large_response = statements_for(count_statements, shop.client, url_of(first), headers)

    assert large_response.get_data() != small_response.get_data()  # the data did grow
    assert large == small, f"{name}: {small} statements for few rows, {large} for many"
    assert len(showtimes) == 8


@pytest.mark.parametrize(
    "name, most",
    # A list: the token, the count and the page (a reservation list also loads its lines).
    [("movie list", 3), ("movie search", 3), ("seat map", 3), ("reservation list", 4), ("report", 3),
     ("report CSV", 3), ("report of a hall", 3)],
)
def test_hot_endpoints_run_few_statements(shop, count_statements, name, most):
    """The token check and its user in one query, then an ETag query and/or a query or two.

    The report: its tag, then one grouped query for every figure (JSON or CSV, any filter).
    """
    user = shop.user("fan")
    headers = shop.admin if name in ADMIN_ONLY else user
    first = grow(shop, user, movies=2, seat_rows="A-B", bookings=2)[0]
    count, _ = statements_for(count_statements, shop.client, ENDPOINTS[name](first), headers)
    assert count <= most, f"{name} ran {count} statements"


def test_lean_movie_bodies_match_their_schema(shop, app):
    """Hot lists skip marshmallow's machinery but must say exactly what the schema says."""
    import schemas as s
    from models import Movie, db

    shop.movie(title="Amélie", genre="Romance", description=None, poster_url="http://x.example/a.jpg")
    shop.movie(title="Heat", genre="Crime", duration_minutes=None)
    with app.test_request_context():
        movies = db.session.scalars(db.select(Movie)).all()
        lean = s.LeanDumper(s.MovieSchema())
        assert [lean.dump(movie) for movie in movies] == s.MovieSchema(many=True).dump(movies)
    listed = shop.client.get("/movies", headers=shop.admin).json
    assert [movie["title"] for movie in listed] == ["Amélie", "Heat"]
    assert set(listed[0]) == set(s.MovieSchema().dump_fields)


def test_lean_report_rows_match_their_schema(app):
    import schemas as s
    from reports import LIST_DUMPERS

    figures = {"seats_total": 30, "tickets_sold": 7, "utilization_percent": 23.3, "reservations": 3,
               "revenue": 7050, "cancelled_reservations": 1, "cancelled_tickets": 2, "cancelled_revenue": 1999,
               "holds_created": 4, "holds_confirmed": 3, "hold_conversion_percent": 75.0,
               "partly_cancelled_reservations": 1, "checked_in": 5, "attendance_percent": 71.4}
    empty = dict.fromkeys(figures, 0)
    items = {
        "showtimes": [
            {"showtime_id": 1, "movie_id": 1, "movie_title": "Heat", "start_time": None, "day": None,
             "hall": "Main", **empty},
            {"showtime_id": 2, "movie_id": 2, "movie_title": "Up", "hall": "2", **figures,
             "start_time": datetime(2030, 1, 2, 18, tzinfo=timezone.utc), "day": date(2030, 1, 2)},
        ],
        "movies": [{"movie_id": 2, "movie_title": "Up", "showtime_count": 2, **figures}],
        "days": [{"day": date(2030, 1, 2), "showtime_count": 2, **figures}],
        "seat_types": [{"seat_type": "premium", "tickets_sold": 4, "revenue": 5999}],
        "ticket_types": [{"ticket_type": "child", "tickets_sold": 4, "revenue": 5999}],
    }
    schemas = {"showtimes": s.ReportShowtimeSchema, "movies": s.ReportMovieSchema, "days": s.ReportDaySchema,
               "seat_types": s.ReportSeatTypeSchema, "ticket_types": s.ReportTicketTypeSchema}
    with app.app_context():
        for key, rows in items.items():
            assert [LIST_DUMPERS[key].dump(row) for row in rows] == schemas[key](many=True).dump(rows), key


def test_lean_reservation_bodies_match_their_schema(shop, app):
    import schemas as s
    from models import db

    user = shop.user("fan")
    showtime = shop.showtime_with_seats()
    kept = shop.book(user, showtime["id"], ["A1", "A2"]).json["reservation"]
    cancelled = shop.book(user, showtime["id"], ["B3"]).json["reservation"]
    shop.client.delete(f"/reservations/{cancelled['id']}", headers=user)

    listed = shop.client.get("/reservations", headers=user).json

    assert [reservation["id"] for reservation in listed] == [cancelled["id"], kept["id"]]
    assert listed[0]["status"] == "cancelled" and listed[0]["cancelled_at"] is not None
    assert listed[1]["seats"] == ["A1", "A2"] and listed[1]["cancelled_at"] is None
    with app.test_request_context():
        reservations = db.session.scalars(reservation_query()).all()
        lean = s.LeanDumper(s.ReservationSchema())
        assert [lean.dump(r) for r in reservations] == s.ReservationSchema(many=True).dump(reservations)


def write_statements(count_statements, client, method, url, headers, body=None):
    with count_statements() as statements:
        response = client.open(url, method=method, json=body, headers=headers)
    assert response.status_code in (200, 201), response.json
    return len(statements), response


def test_booking_and_checkout_statement_counts_do_not_grow_with_the_data(shop, count_statements):
    """A booking, a cancel, a hold and its confirmation: the same statements for few or many rows."""
    user = shop.user("fan")

    def checkout_counts(showtime, seats):
        counts = {}
        counts["book"], booked = write_statements(
            count_statements, shop.client, "POST", "/reservations", user,
            {"showtime_id": showtime["id"], "seats": seats[:2]},
        )
        reservation_id = booked.json["reservation"]["id"]
        counts["cancel"], _ = write_statements(
            count_statements, shop.client, "DELETE", f"/reservations/{reservation_id}", user
        )
        counts["hold"], held = write_statements(
            count_statements, shop.client, "POST", "/holds", user, {"showtime_id": showtime["id"], "seats": seats[2:4]}
        )
        counts["confirm"], _ = write_statements(
            count_statements, shop.client, "POST", "/reservations", user, {"hold_id": held.json["hold"]["id"]}
        )
        counts["best hold"], _ = write_statements(
            count_statements, shop.client, "POST", "/holds", user, {"showtime_id": showtime["id"], "quantity": 2}
        )
        return counts

    first = grow(shop, user, movies=2, seat_rows="A-B", bookings=2)[0]
    small = checkout_counts(first, ["A5", "A6", "A7", "A8"])
    grow(shop, shop.user("crowd"), movies=8, seat_rows="A-F", bookings=14)
    shop.seats(first["id"], rows="C-H", seats_per_row=10)
    large = checkout_counts(first, ["C5", "C6", "C7", "C8"])
    assert large == small, f"few rows: {small}; many rows: {large}"
