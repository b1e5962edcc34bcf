"""Ticket types, prices per seat type, bookings with tickets and their frozen lines."""

import pytest

from conftest import assert_error

HALL_PLAN = {
    "rows": [{"rows": "A-B", "seats": 4}, {"rows": "C", "seats": 4, "type": "premium"}],
    "seat_types": {"A1": "accessible", "A2": "companion"},
}


@pytest.fixture
def showtime(cinema):
    """A showtime at $10 standard, $14 premium, in a hall with accessible and companion seats."""
    response = cinema.client.post("/halls", json={"name": "Studio 1", "plan": HALL_PLAN}, headers=cinema.admin)
    assert response.status_code == 201, response.json
    return cinema.showtime(hall="Studio 1", price=10, prices={"premium": 14})


def book_tickets(cinema, headers, showtime_id, tickets):
    return cinema.client.post(
        "/reservations", json={"showtime_id": showtime_id, "tickets": tickets}, headers=headers
    )


def test_the_cinema_starts_with_four_ticket_types(cinema):
    response = cinema.client.get("/ticket-types", headers=cinema.user())

    assert response.status_code == 200
    assert [(item["code"], item["price_rule"], item["percent"], item["amount"]) for item in response.json] == [
        ("adult", "percent", 100, None),
        ("child", "percent", 60, None),
        ("senior", "amount_off", None, 2),
        ("student", "amount_off", None, 1.5),
    ]
    assert response.headers["X-Total-Count"] == "4"


def test_admins_add_and_change_ticket_types(cinema):
    created = cinema.client.post(
        "/ticket-types",
        json={"code": "member", "name": "Member", "price_rule": "fixed_price", "amount": 7},
        headers=cinema.admin,
    )
    changed = cinema.client.put(
        "/ticket-types/member", json={"price_rule": "percent", "percent": 50}, headers=cinema.admin
    )

    assert created.status_code == 201, created.json
    assert created.json == {
        "code": "member", "name": "Member", "price_rule": "fixed_price", "percent": None, "amount": 7, "active": True,
    }
    assert changed.status_code == 200
    assert (changed.json["price_rule"], changed.json["percent"], changed.json["amount"]) == ("percent", 50, None)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "x", "name": "X", "price_rule": "percent"}, "percent"),
        ({"code": "x", "name": "X", "price_rule": "percent", "percent": 50, "amount": 1}, "amount"),
        ({"code": "x", "name": "X", "price_rule": "amount_off", "amount": -1}, "amount"),
        ({"code": "x", "name": "X", "price_rule": "fixed_price"}, "amount"),
        ({"code": "x", "name": "X", "price_rule": "discount", "amount": 1}, "price_rule"),
        ({"code": "Big Kid", "name": "X", "price_rule": "percent", "percent": 50}, "code"),
        ({"code": "x", "name": "X", "price_rule": "percent", "percent": -5}, "percent"),
        ({"code": "x", "name": "", "price_rule": "percent", "percent": 5}, "name"),
    ],
)
def test_bad_ticket_types_are_refused(cinema, body, field):
    body = assert_error(cinema.client.post("/ticket-types", json=body, headers=cinema.admin), 400)

    assert field in body["errors"]


def test_ticket_type_rules_for_admins_only_and_codes_unique(cinema):
    body = {"code": "child", "name": "Kid", "price_rule": "percent", "percent": 50}

    assert_error(cinema.client.post("/ticket-types", json=body, headers=cinema.admin), 409, "exists")
    assert_error(cinema.client.post("/ticket-types", json={**body, "code": "kid"}, headers=cinema.user()), 403)
    assert_error(cinema.client.put("/ticket-types/child", json={"name": "Kid"}, headers=cinema.user()), 403)
    assert_error(cinema.client.put("/ticket-types/nobody", json={"name": "Kid"}, headers=cinema.admin), 404)
    assert_error(cinema.client.put("/ticket-types/adult", json={"active": False}, headers=cinema.admin), 409, "stays active")
    assert_error(cinema.client.put("/ticket-types/child", json={}, headers=cinema.admin), 400)
    assert_error(cinema.client.put("/ticket-types/child", json={"active": 0}, headers=cinema.admin), 400)


def test_a_showtime_has_a_price_per_seat_type(cinema, showtime):
    assert showtime["price"] == 10
    assert showtime["prices"] == {"standard": 10, "premium": 14, "accessible": 10, "companion": 10}


def test_the_price_table_shows_every_price_before_booking(cinema, showtime):
    response = cinema.client.get(f"/showtimes/{showtime['id']}/prices", headers=cinema.user())

    assert response.status_code == 200
    table = response.json
    assert table["seat_types"] == {"standard": 10, "premium": 14, "accessible": 10, "companion": 10}
    assert table["prices"]["premium"] == {"adult": 14, "child": 8.4, "senior": 12, "student": 12.5}
    assert table["prices"]["standard"] == {"adult": 10, "child": 6, "senior": 8, "student": 8.5}
    assert [item["code"] for item in table["ticket_types"]] == ["adult", "child", "senior", "student"]
    assert_error(cinema.client.get("/showtimes/999/prices", headers=cinema.user()), 404)


@pytest.mark.parametrize(
    "prices, field",
    [({"premium": -1}, "prices"), ({"balcony": 12}, "prices"), ({"standard": 9}, "prices"), ("cheap", "prices")],
)
def test_bad_prices_are_refused(cinema, prices, field):
    movie = cinema.movie()
    response = cinema.client.post(
        "/showtimes",
        json={"movie_id": movie["id"], "start_time": "2030-05-01T18:00:00", "price": 10, "prices": prices},
        headers=cinema.admin,
    )

    assert field in assert_error(response, 400)["errors"]


def test_a_booking_with_tickets_prices_each_line(cinema, showtime):
    guest = cinema.user()

    response = book_tickets(
        cinema,
        guest,
        showtime["id"],
        [{"seat": "C1", "ticket_type": "child"}, {"seat": "B2", "ticket_type": "senior"}, {"seat": "b3"}],
    )

    assert response.status_code == 201, response.json
    reservation = response.json["reservation"]
    assert reservation["lines"] == [
        {"seat": "B2", "seat_type": "standard", "ticket_type": "senior", "price": 8, "cancelled_at": None},
        {"seat": "B3", "seat_type": "standard", "ticket_type": "adult", "price": 10, "cancelled_at": None},
        {"seat": "C1", "seat_type": "premium", "ticket_type": "child", "price": 8.4, "cancelled_at": None},
    ]
    assert reservation["seats"] == ["B2", "B3", "C1"]
    assert reservation["total_price"] == 26.4


def test_seats_alone_are_adult_tickets(cinema, showtime):
    response = cinema.book(cinema.user(), showtime["id"], ["C2", "B1"])

    assert response.status_code == 201
    assert [(line["seat"], line["ticket_type"], line["price"]) for line in response.json["reservation"]["lines"]] == [
        ("B1", "adult", 10),
        ("C2", "adult", 14),
    ]
    assert response.json["reservation"]["total_price"] == 24


def test_a_total_never_changes_after_the_sale(cinema, showtime):
    guest = cinema.user()
    reservation = book_tickets(cinema, guest, showtime["id"], [{"seat": "B1", "ticket_type": "child"}]).json["reservation"]

    cinema.client.put("/ticket-types/child", json={"price_rule": "percent", "percent": 10}, headers=cinema.admin)

    again = cinema.client.get(f"/reservations/{reservation['id']}", headers=guest).json
    assert (again["total_price"], again["lines"][0]["price"]) == (6, 6)
    later = book_tickets(cinema, guest, showtime["id"], [{"seat": "B2", "ticket_type": "child"}]).json["reservation"]
    assert later["total_price"] == 1


def test_unknown_and_inactive_ticket_types_are_refused(cinema, showtime):
    cinema.client.put("/ticket-types/student", json={"active": False}, headers=cinema.admin)
    guest = cinema.user()

    unknown = book_tickets(cinema, guest, showtime["id"], [{"seat": "B1", "ticket_type": "pensioner"}])
    inactive = book_tickets(cinema, guest, showtime["id"], [{"seat": "B1", "ticket_type": "student"}])

    assert assert_error(unknown, 400, "pensioner")["errors"] == {"tickets": ["Unknown ticket type: pensioner"]}
    assert_error(inactive, 400, "student")
    assert cinema.book(guest, showtime["id"], ["B1"]).status_code == 201  # nothing was held


@pytest.mark.parametrize(
    "body",
    [
        {"tickets": []},
        {"tickets": [{"seat": "B1"}, {"seat": "B1", "ticket_type": "child"}]},
        {"tickets": [{"ticket_type": "child"}]},
        {"tickets": "B1"},
        {"tickets": [{"seat": "B1"}], "seats": ["B2"]},
        {},
    ],
)
def test_bad_ticket_lists_are_refused(cinema, showtime, body):
    response = cinema.client.post("/reservations", json={"showtime_id": showtime["id"], **body}, headers=cinema.user())

    assert_error(response, 400)


def test_too_many_tickets_are_refused(cinema, showtime):
    tickets = [{"seat": f"{row}{number}"} for row in "ABC" for number in range(1, 5)][:11]

    assert_error(book_tickets(cinema, cinema.user(), showtime["id"], tickets), 400, "tickets")


def test_a_companion_seat_is_sold_with_its_wheelchair_space(cinema, showtime):
    guest = cinema.user()

    alone = cinema.book(guest, showtime["id"], ["A2"])
    together = cinema.book(guest, showtime["id"], ["A1", "A2"])

    assert assert_error(alone, 409, "companion")["errors"] == {"seats": ["A2"]}
    assert together.status_code == 201


def test_admins_may_sell_a_companion_seat_alone(cinema, showtime):
    assert cinema.book(cinema.admin, showtime["id"], ["A2"]).status_code == 201
