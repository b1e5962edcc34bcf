"""Showtimes: scheduling, hall overlaps, listings, search, changes and deletion."""

from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from app import create_app
from conftest import Cinema, assert_error, future, test_config
from models import Showtime, db

SHOWTIME_KEYS = {
    "id",
    "movie_id",
    "movie_title",
    "start_time",
    "hall",
    "price",
    "seats_total",
    "seats_available",
}


def at(days=30, hour=18, minute=0) -> datetime:
    """An aware UTC instant some days ahead at the given time of day."""
    moment = datetime.now(timezone.utc) + timedelta(days=days)
    return moment.replace(hour=hour, minute=minute, second=0, microsecond=0)


def instant(text: str) -> datetime:
    """Parse an ISO time from a response; it must carry an offset."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, text
    return moment


def post_showtime(cinema, headers=None, **body):
    return cinema.client.post("/showtimes", json=body, headers=headers or cinema.admin)


def listed_ids(response):
    assert response.status_code == 200, response.get_json()
    return [showtime["id"] for showtime in response.json]


def move_into_past(app, showtime_id, hours=2):
    """Make a showtime look like it already started, straight in the database."""
    with app.app_context():
        showtime = db.session.get(Showtime, showtime_id)
        showtime.start_time = datetime.now(timezone.utc) - timedelta(hours=hours)
        showtime.end_time = showtime.start_time + timedelta(minutes=135)
        db.session.commit()


# ---- POST /showtimes ----------------------------------------------------------------


def test_create_returns_the_showtime_and_its_location(cinema):
    movie = cinema.movie(title="Arrival")
    start = at(days=10, hour=20)
    response = post_showtime(
        cinema, movie_id=movie["id"], start_time=start.isoformat(), hall="Hall 2", price=12.5
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert SHOWTIME_KEYS <= set(body)
    assert isinstance(body["id"], int)
    assert body["movie_id"] == movie["id"]
    assert body["movie_title"] == "Arrival"
    assert instant(body["start_time"]) == start
    assert body["hall"] == "Hall 2"
    assert body["price"] == 12.5
    assert body["seats_total"] == 0
    assert body["seats_available"] == 0
    assert response.headers["Location"].endswith(f"/showtimes/{body['id']}")

    fetched = cinema.client.get(response.headers["Location"], headers=cinema.admin)
    assert fetched.status_code == 200
    assert fetched.json["id"] == body["id"]
    assert fetched.json["hall"] == "Hall 2"


def test_create_defaults_to_main_hall_and_default_price(cinema):
    movie = cinema.movie()
    response = post_showtime(cinema, movie_id=movie["id"], start_time=future())
    assert response.status_code == 201, response.json
    assert response.json["hall"] == "Main"
    assert response.json["price"] == 10


def test_start_time_in_utc_with_z(cinema):
    movie = cinema.movie()
    day = at(days=12).date().isoformat()
    response = post_showtime(cinema, movie_id=movie["id"], start_time=f"{day}T18:00:00Z")
    assert response.status_code == 201, response.json
    assert response.json["start_time"] == f"{day}T18:00:00+00:00"


def test_start_time_with_an_offset_is_converted(cinema):
    movie = cinema.movie()
    day = at(days=12).date().isoformat()
    response = post_showtime(cinema, movie_id=movie["id"], start_time=f"{day}T20:00:00+02:00")
    assert response.status_code == 201, response.json
    assert response.json["start_time"] == f"{day}T18:00:00+00:00"


def test_naive_start_time_is_cinema_local_time(tmp_path):
    app = create_app(test_config(tmp_path, CINEMA_TIMEZONE="Europe/Paris"))
    cinema = Cinema(app.test_client())
    movie = cinema.movie()
    paris = ZoneInfo("Europe/Paris")
    year = datetime.now().year + 1
    for day, offset, hall in ((f"{year}-01-15", "+01:00", "Winter"), (f"{year}-07-15", "+02:00", "Summer")):
        response = post_showtime(
            cinema, movie_id=movie["id"], start_time=f"{day}T18:00:00", hall=hall
        )
        assert response.status_code == 201, response.json
        assert response.json["start_time"] == f"{day}T18:00:00{offset}"
        expected = datetime.fromisoformat(f"{day}T18:00:00").replace(tzinfo=paris)
        assert instant(response.json["start_time"]) == expected
        utc_hour = 17 if offset == "+01:00" else 16
        assert instant(response.json["start_time"]).astimezone(timezone.utc).hour == utc_hour

        fetched = cinema.client.get(f"/showtimes/{response.json['id']}", headers=cinema.admin)
        assert fetched.json["start_time"] == f"{day}T18:00:00{offset}"


def test_search_by_date_uses_the_cinema_local_day(tmp_path):
    app = create_app(test_config(tmp_path, CINEMA_TIMEZONE="Europe/Paris"))
    cinema = Cinema(app.test_client())
    movie = cinema.movie()
    year = datetime.now().year + 1
    # 00:30 in Paris on 16 January is still 15 January in UTC.
    showtime = cinema.showtime(movie_id=movie["id"], start_time=f"{year}-01-16T00:30:00")
    assert showtime["start_time"] == f"{year}-01-16T00:30:00+01:00"

    on_16th = cinema.client.get(f"/showtimes/search?date={year}-01-16", headers=cinema.admin)
    on_15th = cinema.client.get(f"/showtimes/search?date={year}-01-15", headers=cinema.admin)
    assert listed_ids(on_16th) == [showtime["id"]]
    assert listed_ids(on_15th) == []


# ---- daylight saving time (Europe/Berlin: 02:00-03:00 is skipped in March, repeated in October)


def last_sunday(year: int, month: int) -> date:
    last_day = date(year, month + 1, 1) - timedelta(days=1)
    return last_day - timedelta(days=(last_day.weekday() + 1) % 7)


# Next year's days on which the clocks change: every time on them is in the future.
SPRING_FORWARD = last_sunday(datetime.now().year + 1, 3)
FALL_BACK = last_sunday(datetime.now().year + 1, 10)


@pytest.fixture
def berlin(tmp_path):
    """A cinema in Europe/Berlin."""
    return Cinema(create_app(test_config(tmp_path, CINEMA_TIMEZONE="Europe/Berlin")).test_client())


def test_a_local_time_the_clocks_skip_is_refused(berlin):
    movie = berlin.movie()

    response = post_showtime(berlin, movie_id=movie["id"], start_time=f"{SPRING_FORWARD}T02:30:00")

    body = assert_error(response, 400, "start_time")
    (message,) = body["errors"]["start_time"]
    assert "does not exist in Europe/Berlin" in message, message
    assert berlin.client.get("/showtimes", headers=berlin.admin).json == []


def test_a_local_time_that_happens_twice_needs_an_offset(berlin):
    movie = berlin.movie()
    when = f"{FALL_BACK}T02:30:00"

    response = post_showtime(berlin, movie_id=movie["id"], start_time=when)

    body = assert_error(response, 400, "start_time")
    (message,) = body["errors"]["start_time"]
    assert "twice" in message and f"{when}+02:00" in message and f"{when}+01:00" in message, message
    first = post_showtime(berlin, movie_id=movie["id"], start_time=f"{when}+02:00", hall="A")
    second = post_showtime(berlin, movie_id=movie["id"], start_time=f"{when}+01:00", hall="B")
    assert (first.status_code, second.status_code) == (201, 201), (first.json, second.json)
    assert first.json["start_time"] == f"{when}+02:00"
    assert second.json["start_time"] == f"{when}+01:00"
    assert instant(second.json["start_time"]) - instant(first.json["start_time"]) == timedelta(hours=1)


@pytest.mark.parametrize(
    "day, local_time, offset",
    [
        (SPRING_FORWARD, "01:59:00", "+01:00"),
        (SPRING_FORWARD, "03:00:00", "+02:00"),
        (FALL_BACK, "01:59:00", "+02:00"),
        (FALL_BACK, "03:00:00", "+01:00"),
    ],
)
def test_local_times_next_to_a_clock_change_are_read_as_usual(berlin, day, local_time, offset):
    response = post_showtime(berlin, movie_id=berlin.movie()["id"], start_time=f"{day}T{local_time}")

    assert response.status_code == 201, response.json
    assert response.json["start_time"] == f"{day}T{local_time}{offset}"


def test_moving_a_showtime_to_a_skipped_or_repeated_local_time_is_refused(berlin):
    showtime = berlin.showtime(start_time=f"{FALL_BACK}T18:00:00")
    url = f"/showtimes/{showtime['id']}"

    for when in (f"{SPRING_FORWARD}T02:00:00", f"{FALL_BACK}T02:59:59"):
        body = assert_error(berlin.client.put(url, json={"start_time": when}, headers=berlin.admin), 400)
        assert "start_time" in body["errors"], when
    assert berlin.client.get(url, headers=berlin.admin).json["start_time"] == showtime["start_time"]


@pytest.mark.parametrize("url", ["/showtimes", "/showtimes/search", "/admin/report"])
@pytest.mark.parametrize("name", ["from", "to"])
def test_query_times_that_are_skipped_or_repeated_are_refused(berlin, url, name):
    for when in (f"{SPRING_FORWARD}T02:30", f"{FALL_BACK}T02:30"):
        response = berlin.client.get(url, query_string={name: when}, headers=berlin.admin)
        body = assert_error(response, 400, name)
        assert list(body["errors"]) == [name], body

    with_offset = berlin.client.get(url, query_string={name: f"{FALL_BACK}T02:30+01:00"}, headers=berlin.admin)
    assert with_offset.status_code == 200, with_offset.json


@pytest.mark.parametrize("day, hours", [(SPRING_FORWARD, 23), (FALL_BACK, 25)])
def test_a_date_with_a_clock_change_covers_the_whole_local_day(berlin, day, hours):
    movie = berlin.movie()
    before, after = day - timedelta(days=1), day + timedelta(days=1)
    times = [f"{before}T23:50:00", f"{day}T00:00:00", f"{day}T23:50:00", f"{after}T00:00:00"]
    ids = [
        berlin.showtime(movie_id=movie["id"], start_time=when, hall=f"Hall {number}")["id"]
        for number, when in enumerate(times)
    ]

    response = berlin.client.get(f"/showtimes/search?date={day}", headers=berlin.admin)

    assert listed_ids(response) == ids[1:3]
    first, last = (instant(showtime["start_time"]) for showtime in response.json)
    assert last - first == timedelta(hours=hours, minutes=-10)


def test_start_time_in_the_past_is_refused(cinema):
    movie = cinema.movie()
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    response = post_showtime(cinema, movie_id=movie["id"], start_time=past)
    body = assert_error(response, 400)
    assert "start_time" in body["errors"]
    everything = cinema.client.get("/showtimes/search?from=2000-01-01T00:00:00", headers=cinema.admin)
    assert everything.json == []


def test_unparseable_start_time_is_refused(cinema):
    movie = cinema.movie()
    for value in ("tomorrow evening", "2030-13-45T18:00:00", "", 1900000000, None):
        response = post_showtime(cinema, movie_id=movie["id"], start_time=value)
        body = assert_error(response, 400)
        assert "start_time" in body["errors"], value


def test_missing_fields_are_refused(cinema):
    movie = cinema.movie()
    body = assert_error(post_showtime(cinema, movie_id=movie["id"]), 400)
    assert "start_time" in body["errors"]
    body = assert_error(post_showtime(cinema, start_time=future()), 400)
    assert "movie_id" in body["errors"]


def test_bad_price_and_hall_are_refused(cinema):
    movie = cinema.movie()
    for extra, field in (({"price": -1}, "price"), ({"price": "ten"}, "price"), ({"hall": "  "}, "hall")):
        response = post_showtime(cinema, movie_id=movie["id"], start_time=future(), **extra)
        body = assert_error(response, 400)
        assert field in body["errors"], extra


@pytest.mark.parametrize("price", [-4.779437372479493e219, 1e30, "1e40", 10000.001])
def test_prices_with_too_many_digits_are_refused(cinema, price):
    movie = cinema.movie()

    response = post_showtime(cinema, movie_id=movie["id"], start_time=future(), price=price)

    assert "price" in assert_error(response, 400)["errors"]


def test_unknown_movie_is_404(cinema):
    response = post_showtime(cinema, movie_id=9999, start_time=future())
    assert_error(response, 404)


def test_deleted_movie_is_404(cinema):
    movie = cinema.movie()
    assert cinema.client.delete(f"/movies/{movie['id']}", headers=cinema.admin).status_code == 200
    assert_error(post_showtime(cinema, movie_id=movie["id"], start_time=future()), 404)


def test_movie_id_must_be_a_positive_integer(cinema):
    movie = cinema.movie()
    for value in (str(movie["id"]), -1, 0, True, 1.5, None):
        response = post_showtime(cinema, movie_id=value, start_time=future())
        body = assert_error(response, 400)
        assert "movie_id" in body["errors"], value
    listing = cinema.client.get("/showtimes", headers=cinema.admin)
    assert listing.json == []


# ---- hall overlaps ------------------------------------------------------------------


def test_hall_is_busy_for_duration_plus_cleaning(cinema):
    movie = cinema.movie(duration_minutes=100)  # busy for 100 + 15 minutes
    start = at(days=20, hour=12)
    first = cinema.showtime(movie_id=movie["id"], start_time=start.isoformat())
    assert instant(first["start_time"]) == start

    too_early = post_showtime(
        cinema, movie_id=movie["id"], start_time=(start + timedelta(minutes=114)).isoformat()
    )
    assert_error(too_early, 409)

    right_after = post_showtime(
        cinema, movie_id=movie["id"], start_time=(start + timedelta(minutes=115)).isoformat()
    )
    assert right_after.status_code == 201, right_after.json


def test_a_showtime_must_end_before_the_next_one_starts(cinema):
    movie = cinema.movie(duration_minutes=100)
    start = at(days=20, hour=16)
    cinema.showtime(movie_id=movie["id"], start_time=start.isoformat())

    ends_one_minute_late = post_showtime(
        cinema, movie_id=movie["id"], start_time=(start - timedelta(minutes=114)).isoformat()
    )
    assert_error(ends_one_minute_late, 409)

    ends_exactly_at_start = post_showtime(
        cinema, movie_id=movie["id"], start_time=(start - timedelta(minutes=115)).isoformat()
    )
    assert ends_exactly_at_start.status_code == 201, ends_exactly_at_start.json


def test_movie_without_duration_counts_as_120_minutes(cinema):
    movie = cinema.movie(duration_minutes=None)
    start = at(days=21, hour=10)
    cinema.showtime(movie_id=movie["id"], start_time=start.isoformat())

    assert_error(
        post_showtime(
            cinema, movie_id=movie["id"], start_time=(start + timedelta(minutes=134)).isoformat()
        ),
        409,
    )
    fine = post_showtime(
        cinema, movie_id=movie["id"], start_time=(start + timedelta(minutes=135)).isoformat()
    )
    assert fine.status_code == 201, fine.json


def test_same_time_in_another_hall_is_fine(cinema):
    movie = cinema.movie()
    start = future(days=22)
    cinema.showtime(movie_id=movie["id"], start_time=start, hall="Main")
    response = post_showtime(cinema, movie_id=movie["id"], start_time=start, hall="Hall 2")
    assert response.status_code == 201, response.json
    assert response.json["hall"] == "Hall 2"


def test_refused_overlap_changes_nothing(cinema):
    movie = cinema.movie()
    start = at(days=23, hour=18)
    first = cinema.showtime(movie_id=movie["id"], start_time=start.isoformat())
    before = cinema.client.get("/showtimes", headers=cinema.admin)

    response = post_showtime(
        cinema, movie_id=movie["id"], start_time=(start + timedelta(minutes=30)).isoformat()
    )
    body = assert_error(response, 409)
    assert str(first["id"]) in body["message"]

    after = cinema.client.get("/showtimes", headers=cinema.admin)
    assert after.json == before.json
    assert after.headers["X-Total-Count"] == "1"


def test_deleted_showtime_frees_its_hall(cinema):
    movie = cinema.movie()
    start = future(days=24)
    first = cinema.showtime(movie_id=movie["id"], start_time=start)
    assert cinema.client.delete(f"/showtimes/{first['id']}", headers=cinema.admin).status_code == 200
    response = post_showtime(cinema, movie_id=movie["id"], start_time=start, hall="Main")
    assert response.status_code == 201, response.json


@pytest.mark.parametrize(
    "name, other_name",
    # A tab is a control character, refused in a hall name (a 400): a no-break space stands in.
    [("Main", "main"), ("Main", "MAIN"), ("Main", " Main "), ("Main", "main\u00a0"), ("Studio 2", "studio  2")],
)
def test_hall_names_differing_in_case_or_spaces_are_one_hall(cinema, name, other_name):
    movie = cinema.movie()
    start = at(days=25, hour=18)
    first = cinema.showtime(movie_id=movie["id"], start_time=start.isoformat(), hall=name)

    response = post_showtime(
        cinema, movie_id=movie["id"], start_time=(start + timedelta(minutes=30)).isoformat(), hall=other_name
    )

    body = assert_error(response, 409)
    assert str(first["id"]) in body["message"]
    assert cinema.client.get("/showtimes", headers=cinema.admin).headers["X-Total-Count"] == "1"


def test_hall_names_fold_case_beyond_ascii(cinema):
    movie = cinema.movie()
    start = at(days=25, hour=12)
    cinema.showtime(movie_id=movie["id"], start_time=start.isoformat(), hall="Salle Été")
    cinema.showtime(movie_id=movie["id"], start_time=start.isoformat(), hall="Große Bühne")

    for other_name in ("salle été", "SALLE ÉTÉ", "GROSSE BÜHNE"):
        response = post_showtime(cinema, movie_id=movie["id"], start_time=start.isoformat(), hall=other_name)
        assert_error(response, 409)


def test_a_hall_keeps_the_name_it_was_first_given(cinema):
    """A hall is one room with one name: showtimes show it, however the admin typed it later."""
    movie = cinema.movie()
    start = at(days=25, hour=9)
    created = cinema.showtime(movie_id=movie["id"], start_time=start.isoformat(), hall="  Studio B ")
    later = cinema.showtime(
        movie_id=movie["id"], start_time=(start + timedelta(hours=4)).isoformat(), hall="STUDIO b"
    )

    assert created["hall"] == "Studio B"  # surrounding spaces dropped, case kept
    assert later["hall"] == "Studio B" and later["hall_id"] == created["hall_id"]
    fetched = cinema.client.get(f"/showtimes/{created['id']}", headers=cinema.admin).json
    assert fetched["hall"] == "Studio B"


def test_moving_a_showtime_into_the_same_hall_spelt_differently_is_409(cinema):
    movie = cinema.movie()
    start = at(days=26, hour=12)
    busy = cinema.showtime(movie_id=movie["id"], start_time=start.isoformat(), hall="Main")
    mover = cinema.showtime(movie_id=movie["id"], start_time=start.isoformat(), hall="Hall 2")

    response = cinema.client.put(f"/showtimes/{mover['id']}", json={"hall": "MAIN"}, headers=cinema.admin)

    body = assert_error(response, 409)
    assert str(busy["id"]) in body["message"]
    assert cinema.client.get(f"/showtimes/{mover['id']}", headers=cinema.admin).json["hall"] == "Hall 2"


def test_a_longer_film_collides_with_the_same_hall_spelt_differently(cinema):
    movie = cinema.movie(duration_minutes=100)
    start = at(days=27, hour=12)
    cinema.showtime(movie_id=movie["id"], start_time=start.isoformat(), hall="Main")
    after = cinema.showtime(
        movie_id=cinema.movie(title="Up")["id"],
        start_time=(start + timedelta(minutes=130)).isoformat(),
        hall="main",
    )

    response = cinema.client.put(f"/movies/{movie['id']}", json={"duration_minutes": 120}, headers=cinema.admin)

    body = assert_error(response, 409)
    assert str(after["id"]) in body["message"]


def test_the_overlap_check_uses_an_index(app, cinema):
    """The hall's showtimes are found through an index, not by reading the whole table."""
    movie = cinema.movie()
    cinema.showtime(movie_id=movie["id"], start_time=future(days=28), hall="Main")
    with app.app_context():
        engine = db.engine
    checks = []

    def record(connection, cursor, statement, parameters, context, executemany):
        if "showtimes.end_time >" in statement:
            checks.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = post_showtime(cinema, movie_id=movie["id"], start_time=future(days=29), hall="main")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 201, response.json

    (statement, parameters), = checks
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")  # the table is tiny here
            plan = connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
        else:
            plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert any("ix_showtimes_hall_id_start" in line for line in plan), plan


# ---- GET /showtimes -----------------------------------------------------------------


def test_list_shows_upcoming_showtimes_in_start_order(app, cinema):
    movie = cinema.movie(title="Heat")
    later = cinema.showtime(movie_id=movie["id"], start_time=future(days=9))
    sooner = cinema.showtime(movie_id=movie["id"], start_time=future(days=3))
    started = cinema.showtime(movie_id=movie["id"], start_time=future(days=5))
    move_into_past(app, started["id"])

    user = cinema.user()
    response = cinema.client.get("/showtimes", headers=user)
    assert listed_ids(response) == [sooner["id"], later["id"]]
    assert response.headers["X-Total-Count"] == "2"
    first = response.json[0]
    assert SHOWTIME_KEYS <= set(first)
    assert first["movie_title"] == "Heat"
    assert first["start_time"] == sooner["start_time"]


def test_list_needs_a_token(client):
    assert_error(client.get("/showtimes"), 401)


def test_list_is_paginated(cinema):
    movie = cinema.movie()
    ids = [cinema.showtime(movie_id=movie["id"], start_time=future(days=day))["id"] for day in (2, 3, 4)]

    first = cinema.client.get("/showtimes?per_page=2", headers=cinema.admin)
    assert listed_ids(first) == ids[:2]
    assert first.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in first.headers["Link"]
    assert "page=2" in first.headers["Link"]

    second = cinema.client.get("/showtimes?per_page=2&page=2", headers=cinema.admin)
    assert listed_ids(second) == ids[2:]
    assert 'rel="prev"' in second.headers["Link"]
    assert 'rel="next"' not in second.headers["Link"]

    past_the_end = cinema.client.get("/showtimes?per_page=2&page=5", headers=cinema.admin)
    assert past_the_end.status_code == 200
    assert past_the_end.json == []
    assert past_the_end.headers["X-Total-Count"] == "3"

    for query in ("page=0", "per_page=0", "per_page=101", "page=abc"):
        assert_error(cinema.client.get(f"/showtimes?{query}", headers=cinema.admin), 400)


def two_movies_three_showtimes(cinema):
    """Heat on two days, Alien on the first of them (another hall)."""
    heat = cinema.movie(title="Heat")
    alien = cinema.movie(title="Alien")
    day_a, day_b = at(days=6, hour=18), at(days=8, hour=18)
    shows = {
        "heat_a": cinema.showtime(movie_id=heat["id"], start_time=day_a.isoformat())["id"],
        "alien_a": cinema.showtime(movie_id=alien["id"], start_time=day_a.isoformat(), hall="Hall 2")["id"],
        "heat_b": cinema.showtime(movie_id=heat["id"], start_time=day_b.isoformat())["id"],
    }
    return heat, alien, day_a, day_b, shows


def test_list_filters_by_date_and_range(cinema):
    _, _, day_a, day_b, shows = two_movies_three_showtimes(cinema)

    def get(query):
        return listed_ids(cinema.client.get(f"/showtimes?{query}", headers=cinema.admin))

    assert sorted(get(f"date={day_a.date().isoformat()}")) == sorted([shows["heat_a"], shows["alien_a"]])
    assert get(f"date={day_b.date().isoformat()}") == [shows["heat_b"]]
    middle = stamp(day_a + timedelta(days=1))
    assert get(f"from={middle}") == [shows["heat_b"]]
    assert sorted(get(f"to={middle}")) == sorted([shows["heat_a"], shows["alien_a"]])
    assert get(f"from={middle}&to={stamp(day_b + timedelta(hours=1))}") == [shows["heat_b"]]
    assert_error(cinema.client.get("/showtimes?date=someday", headers=cinema.admin), 400)
    assert_error(cinema.client.get("/showtimes?movie_id=abc", headers=cinema.admin), 400)


def test_list_filters_by_movie(cinema):
    heat, alien, _, day_b, shows = two_movies_three_showtimes(cinema)

    def get(query):
        return listed_ids(cinema.client.get(f"/showtimes?{query}", headers=cinema.admin))

    assert get(f"movie_id={heat['id']}") == [shows["heat_a"], shows["heat_b"]]
    assert get(f"movie_id={alien['id']}") == [shows["alien_a"]]
    assert get(f"date={day_b.date().isoformat()}&movie_id={heat['id']}") == [shows["heat_b"]]


# ---- GET /showtimes/search ----------------------------------------------------------


def search(cinema, query, headers=None):
    return cinema.client.get(f"/showtimes/search?{query}", headers=headers or cinema.admin)


def stamp(moment: datetime) -> str:
    """An aware time for a query string ("+" would otherwise read as a space)."""
    return quote(moment.isoformat())


def test_search_by_date(cinema):
    movie = cinema.movie()
    day = at(days=7, hour=0)
    morning = cinema.showtime(movie_id=movie["id"], start_time=(day + timedelta(hours=10)).isoformat())
    evening = cinema.showtime(movie_id=movie["id"], start_time=(day + timedelta(hours=21)).isoformat())
    cinema.showtime(movie_id=movie["id"], start_time=(day + timedelta(days=1, hours=1)).isoformat())

    response = search(cinema, f"date={day.date().isoformat()}", headers=cinema.user())
    assert listed_ids(response) == [morning["id"], evening["id"]]
    assert SHOWTIME_KEYS <= set(response.json[0])
    assert response.headers["X-Total-Count"] == "2"


def test_search_by_range(cinema):
    heat = cinema.movie(title="Heat")
    alien = cinema.movie(title="Alien")
    start = at(days=14, hour=12)
    heat_early = cinema.showtime(movie_id=heat["id"], start_time=start.isoformat())
    alien_early = cinema.showtime(movie_id=alien["id"], start_time=start.isoformat(), hall="Hall 2")
    heat_late = cinema.showtime(movie_id=heat["id"], start_time=(start + timedelta(hours=5)).isoformat())

    until = stamp(start + timedelta(hours=1))
    since = stamp(start + timedelta(hours=4))
    assert sorted(listed_ids(search(cinema, f"to={until}"))) == sorted([heat_early["id"], alien_early["id"]])
    assert listed_ids(search(cinema, f"from={since}")) == [heat_late["id"]]
    assert sorted(listed_ids(search(cinema, f"from={stamp(start)}&to={until}"))) == sorted(
        [heat_early["id"], alien_early["id"]]
    )
    with_offset = (start + timedelta(hours=4)).astimezone(timezone(timedelta(hours=2)))
    assert listed_ids(search(cinema, f"from={stamp(with_offset)}")) == [heat_late["id"]]
    naive_utc = (start + timedelta(hours=4)).replace(tzinfo=None).isoformat()
    assert listed_ids(search(cinema, f"from={naive_utc}")) == [heat_late["id"]]


def test_search_combines_with_movie_id(cinema):
    heat = cinema.movie(title="Heat")
    alien = cinema.movie(title="Alien")
    start = at(days=14, hour=12)
    heat_early = cinema.showtime(movie_id=heat["id"], start_time=start.isoformat())
    alien_early = cinema.showtime(movie_id=alien["id"], start_time=start.isoformat(), hall="Hall 2")
    heat_late = cinema.showtime(movie_id=heat["id"], start_time=(start + timedelta(hours=5)).isoformat())

    until = stamp(start + timedelta(hours=1))
    assert listed_ids(search(cinema, f"from={stamp(start)}&to={until}&movie_id={alien['id']}")) == [
        alien_early["id"]
    ]
    assert listed_ids(search(cinema, f"date={start.date().isoformat()}&movie_id={heat['id']}")) == [
        heat_early["id"],
        heat_late["id"],
    ]


def test_search_refuses_bad_queries(cinema):
    for query in (
        "",
        f"movie_id={cinema.movie()['id']}",
        "date=2030-02-30",
        "date=tomorrow",
        "date=30/01/2030",
        "from=yesterday",
        "from=2030-01-02T00:00:00&to=2030-01-01T00:00:00",
        "date=2030-01-01&page=0",
    ):
        assert_error(search(cinema, query), 400)


def test_search_is_paginated(cinema):
    movie = cinema.movie()
    day = at(days=15, hour=0)
    ids = [
        cinema.showtime(movie_id=movie["id"], start_time=(day + timedelta(hours=hour)).isoformat())["id"]
        for hour in (9, 13, 17)
    ]
    query = f"date={day.date().isoformat()}&per_page=2"
    first = search(cinema, query)
    assert listed_ids(first) == ids[:2]
    assert first.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in first.headers["Link"]
    assert "date=" in first.headers["Link"]
    second = search(cinema, query + "&page=2")
    assert listed_ids(second) == ids[2:]
    assert second.headers["X-Total-Count"] == "3"


# ---- GET /showtimes/<id> ------------------------------------------------------------


def test_get_one_with_seat_counts(cinema):
    showtime = cinema.showtime(price=8)
    user = cinema.user()
    response = cinema.client.get(f"/showtimes/{showtime['id']}", headers=user)
    assert response.status_code == 200
    assert SHOWTIME_KEYS <= set(response.json)
    assert response.json["seats_total"] == 0
    assert response.json["seats_available"] == 0
    assert response.json["price"] == 8

    cinema.seats(showtime["id"], rows="A-B", seats_per_row=5)
    response = cinema.client.get(f"/showtimes/{showtime['id']}", headers=user)
    assert (response.json["seats_total"], response.json["seats_available"]) == (10, 10)

    assert cinema.book(user, showtime["id"], ["A1", "A2", "B5"]).status_code == 201
    response = cinema.client.get(f"/showtimes/{showtime['id']}", headers=user)
    assert (response.json["seats_total"], response.json["seats_available"]) == (10, 7)
    listed = cinema.client.get("/showtimes", headers=user).json
    assert (listed[0]["seats_total"], listed[0]["seats_available"]) == (10, 7)


def test_get_unknown_showtime_is_404(cinema):
    assert_error(cinema.client.get("/showtimes/9999", headers=cinema.user()), 404)


# ---- PUT /showtimes/<id> ------------------------------------------------------------


def test_update_moves_the_showtime(cinema):
    showtime = cinema.showtime(start_time=future(days=10))
    new_start = at(days=11, hour=21)
    response = cinema.client.put(
        f"/showtimes/{showtime['id']}",
        json={"start_time": new_start.isoformat(), "hall": "Hall 3", "price": 14},
        headers=cinema.admin,
    )
    assert response.status_code == 200, response.json
    assert instant(response.json["start_time"]) == new_start
    assert response.json["hall"] == "Hall 3"
    assert response.json["price"] == 14
    assert response.json["movie_id"] == showtime["movie_id"]

    fetched = cinema.client.get(f"/showtimes/{showtime['id']}", headers=cinema.admin).json
    assert instant(fetched["start_time"]) == new_start
    assert fetched["hall"] == "Hall 3"
    assert fetched["price"] == 14


def test_update_may_shift_within_its_own_slot(cinema):
    start = at(days=10, hour=18)
    showtime = cinema.showtime(start_time=start.isoformat())
    response = cinema.client.put(
        f"/showtimes/{showtime['id']}",
        json={"start_time": (start + timedelta(minutes=30)).isoformat()},
        headers=cinema.admin,
    )
    assert response.status_code == 200, response.json
    assert instant(response.json["start_time"]) == start + timedelta(minutes=30)


def test_update_into_an_occupied_hall_is_409(cinema):
    movie = cinema.movie()
    start = at(days=10, hour=12)
    busy = cinema.showtime(movie_id=movie["id"], start_time=start.isoformat())
    mover = cinema.showtime(movie_id=movie["id"], start_time=start.isoformat(), hall="Hall 2")

    response = cinema.client.put(
        f"/showtimes/{mover['id']}",
        json={"hall": "Main", "start_time": (start + timedelta(hours=1)).isoformat()},
        headers=cinema.admin,
    )
    body = assert_error(response, 409)
    assert str(busy["id"]) in body["message"]
    unchanged = cinema.client.get(f"/showtimes/{mover['id']}", headers=cinema.admin).json
    assert unchanged["hall"] == "Hall 2"
    assert unchanged["start_time"] == mover["start_time"]


def test_update_refused_while_booked(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    booking = cinema.book(user, showtime["id"], ["A1"])
    assert booking.status_code == 201

    response = cinema.client.put(
        f"/showtimes/{showtime['id']}", json={"start_time": future(days=40), "price": 20}, headers=cinema.admin
    )
    assert_error(response, 409)
    unchanged = cinema.client.get(f"/showtimes/{showtime['id']}", headers=cinema.admin).json
    assert unchanged["start_time"] == showtime["start_time"]
    assert unchanged["price"] == showtime["price"]

    # Once the booking is cancelled the showtime may change again.
    reservation_id = booking.json["reservation"]["id"]
    assert cinema.client.delete(f"/reservations/{reservation_id}", headers=user).status_code == 200
    response = cinema.client.put(
        f"/showtimes/{showtime['id']}", json={"price": 20}, headers=cinema.admin
    )
    assert response.status_code == 200, response.json
    assert response.json["price"] == 20


def test_update_errors(cinema):
    showtime = cinema.showtime()
    url = f"/showtimes/{showtime['id']}"
    assert_error(cinema.client.put("/showtimes/9999", json={"hall": "X"}, headers=cinema.admin), 404)
    assert_error(cinema.client.put(url, json={}, headers=cinema.admin), 400)
    past = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    body = assert_error(cinema.client.put(url, json={"start_time": past}, headers=cinema.admin), 400)
    assert "start_time" in body["errors"]
    body = assert_error(cinema.client.put(url, json={"start_time": "soon"}, headers=cinema.admin), 400)
    assert "start_time" in body["errors"]
    assert_error(cinema.client.put(url, json={"movie_id": 9999}, headers=cinema.admin), 404)
    unchanged = cinema.client.get(url, headers=cinema.admin).json
    assert unchanged["start_time"] == showtime["start_time"]
    assert unchanged["movie_id"] == showtime["movie_id"]


# ---- DELETE /showtimes/<id> ---------------------------------------------------------


def test_delete_removes_the_showtime_everywhere(cinema):
    showtime = cinema.showtime()
    day = instant(showtime["start_time"]).date().isoformat()
    response = cinema.client.delete(f"/showtimes/{showtime['id']}", headers=cinema.admin)
    assert response.status_code == 200
    assert isinstance(response.json["message"], str) and response.json["message"]

    assert_error(cinema.client.get(f"/showtimes/{showtime['id']}", headers=cinema.admin), 404)
    assert_error(cinema.client.get(f"/showtimes/{showtime['id']}/seats", headers=cinema.admin), 404)
    assert cinema.client.get("/showtimes", headers=cinema.admin).json == []
    assert search(cinema, f"date={day}").json == []
    assert_error(cinema.client.delete(f"/showtimes/{showtime['id']}", headers=cinema.admin), 404)


def test_delete_refused_while_booked(cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    assert cinema.book(user, showtime["id"], ["A1", "A2"]).status_code == 201

    assert_error(cinema.client.delete(f"/showtimes/{showtime['id']}", headers=cinema.admin), 409)
    still_there = cinema.client.get(f"/showtimes/{showtime['id']}", headers=user)
    assert still_there.status_code == 200
    assert still_there.json["seats_available"] == showtime["seats_available"] + 18
    assert listed_ids(cinema.client.get("/showtimes", headers=user)) == [showtime["id"]]
    mine = cinema.client.get("/reservations", headers=user).json
    assert [r["status"] for r in mine] == ["confirmed"]


def test_delete_allowed_once_the_booked_showtime_is_over(app, cinema):
    showtime = cinema.showtime_with_seats()
    user = cinema.user()
    booking = cinema.book(user, showtime["id"], ["A1"])
    assert booking.status_code == 201
    move_into_past(app, showtime["id"], hours=5)

    response = cinema.client.delete(f"/showtimes/{showtime['id']}", headers=cinema.admin)
    assert response.status_code == 200, response.json
    # The booking history survives the deletion.
    reservation = cinema.client.get(f"/reservations/{booking.json['reservation']['id']}", headers=user)
    assert reservation.status_code == 200
    assert reservation.json["seats"] == ["A1"]


# ---- permissions --------------------------------------------------------------------


def test_normal_users_cannot_manage_showtimes(cinema):
    movie = cinema.movie()
    showtime = cinema.showtime(movie_id=movie["id"])
    user = cinema.user()
    url = f"/showtimes/{showtime['id']}"

    assert_error(post_showtime(cinema, headers=user, movie_id=movie["id"], start_time=future(days=50)), 403)
    assert_error(cinema.client.put(url, json={"hall": "Hall 9"}, headers=user), 403)
    assert_error(cinema.client.delete(url, headers=user), 403)
    assert_error(cinema.client.post("/showtimes", json={"movie_id": movie["id"], "start_time": future(days=50)}), 401)

    listing = cinema.client.get("/showtimes", headers=user)
    assert listed_ids(listing) == [showtime["id"]]
    assert listing.json[0]["hall"] == "Main"
