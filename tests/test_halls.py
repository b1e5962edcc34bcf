"""Halls with seat plans: admin CRUD, bad plans, showtimes that get their seats at once."""

import pytest

from conftest import assert_error, future

PLAN = {
    "rows": [
        {"rows": "A-B", "seats": 6, "aisles": [3]},
        {"rows": "C", "seats": 6, "aisles": [3], "type": "premium"},
    ],
    "seat_types": {"A1": "accessible", "A2": "companion"},
    "no_seats": ["B6"],
}


def create_hall(cinema, name="Studio 1", plan=PLAN):
    response = cinema.client.post("/halls", json={"name": name, "plan": plan}, headers=cinema.admin)
    assert response.status_code == 201, response.json
    return response.json


def seat_map(cinema, showtime_id):
    response = cinema.client.get(f"/showtimes/{showtime_id}/seats", headers=cinema.admin)
    assert response.status_code == 200, response.json
    return response.json


def seats_by_label(body):
    return {seat["label"]: seat for row in body["rows"] for seat in row["seats"]}


def test_create_a_hall_with_a_plan(cinema):
    response = cinema.client.post("/halls", json={"name": "Studio 1", "plan": PLAN}, headers=cinema.admin)

    assert response.status_code == 201
    hall = response.json
    assert hall["name"] == "Studio 1" and hall["plan"] == PLAN
    assert hall["seats_total"] == 17  # 18 places, one pillar
    assert response.headers["Location"].endswith(f"/halls/{hall['id']}")
    assert cinema.client.get(f"/halls/{hall['id']}", headers=cinema.user()).json == hall


def test_a_ten_row_hall_in_one_line(cinema):
    hall = create_hall(cinema, plan={"rows": [{"rows": "A-J", "seats": 12}]})

    assert hall["seats_total"] == 120


def test_thirty_rows_past_z_with_two_aisles(cinema):
    plan = {"rows": [{"rows": "A-AD", "seats": 20, "aisles": [5, 15]}]}

    hall = create_hall(cinema, plan=plan)
    showtime = cinema.showtime(hall="Studio 1")

    assert hall["seats_total"] == 600
    rows = seat_map(cinema, showtime["id"])["rows"]
    assert [row["row"] for row in rows][-5:] == ["Z", "AA", "AB", "AC", "AD"]
    assert rows[0]["gaps"] == [6, 17]
    assert [seat["column"] for seat in rows[0]["seats"]][4:7] == [5, 7, 8]


def test_hall_names_are_unique_in_any_case(cinema):
    create_hall(cinema, name="Studio 1")

    response = cinema.client.post("/halls", json={"name": "STUDIO 1"}, headers=cinema.admin)

    assert_error(response, 409, "exists")


def test_halls_are_listed_by_name_for_users(cinema):
    create_hall(cinema, name="Zeta", plan=None)
    create_hall(cinema, name="alpha")

    response = cinema.client.get("/halls", headers=cinema.user())

    assert response.status_code == 200
    assert [hall["name"] for hall in response.json] == ["alpha", "Zeta"]
    assert response.headers["X-Total-Count"] == "2"


def test_halls_are_for_admins_to_change(cinema):
    user = cinema.user()
    hall = create_hall(cinema)

    assert_error(cinema.client.post("/halls", json={"name": "Mine"}, headers=user), 403)
    assert_error(cinema.client.put(f"/halls/{hall['id']}", json={"name": "Mine"}, headers=user), 403)
    assert_error(cinema.client.get("/halls"), 401)
    assert_error(cinema.client.get("/halls/999", headers=user), 404, "Hall 999 not found")


@pytest.mark.parametrize(
    "plan, problem",
    [
        ({"rows": [{"rows": "A-C", "seats": 10}, {"rows": "C-D", "seats": 10}]}, "Row C is in more than one"),
        ({"rows": [{"rows": "A", "seats": 0}]}, "seats must be a whole number from 1 to 100"),
        ({"rows": [{"rows": "A", "seats": 500}]}, "seats must be a whole number from 1 to 100"),
        ({"rows": [{"rows": "A", "seats": True}]}, "seats must be a whole number"),
        ({"rows": [{"rows": "A", "seats": 10, "type": "vip"}]}, "unknown seat type 'vip'"),
        ({"rows": [{"rows": "A", "seats": 10}], "seat_types": {"A1": "sofa"}}, "unknown seat type 'sofa'"),
        ({"rows": [{"rows": "A", "seats": 10}], "seat_types": {"A1-A4": "premium", "A3": "accessible"}}, "A3 is given a type twice"),
        ({"rows": [{"rows": "A", "seats": 10}], "seat_types": {"B1": "premium"}}, "B1 is not a seat of the plan"),
        ({"rows": [{"rows": "A", "seats": 10}], "no_seats": ["A11"]}, "A11 is not a seat of the plan"),
        ({"rows": [{"rows": "A", "seats": 10}], "no_seats": ["A2"], "seat_types": {"A2": "premium"}}, "A2 is in no_seats and in seat_types"),
        ({"rows": [{"rows": "A", "seats": 10, "aisles": [10]}]}, "aisles lists seat numbers (1 to 9)"),
        ({"rows": [{"rows": "A", "seats": 10, "aisles": [3, 3]}]}, "aisles lists seat numbers"),
        ({"rows": [{"rows": "C-A", "seats": 10}]}, "runs backwards"),
        ({"rows": [{"rows": "A1", "seats": 10}]}, "is not a row"),
        ({"rows": [{"rows": "A-Z", "seats": 100}]}, "at most 2000 seats"),
        ({"rows": []}, "A plan needs"),
        ({"rows": [{"rows": "A", "seats": 2}], "no_seats": ["A1-A2"]}, "leaves no seats"),
        ({"rows": [{"rows": "A", "seats": 2}], "stage": True}, "Unknown plan fields: stage"),
        ({"rows": [{"rows": "A", "seats": 2, "width": 3}]}, "unknown fields width"),
        ({"rows": ["A-J"]}, "must be an object"),
        ("A-J", "Not a valid mapping"),
        ({"rows": [{"rows": "A", "seats": 2}], "no_seats": ["A1"] * 2001}, "At most 2000 entries in no_seats"),
        ({"rows": [{"rows": "A", "seats": 2}], "seat_types": {f"A{n}": "premium" for n in range(1, 2002)}}, "At most 2000"),
    ],
)
def test_bad_plans_are_refused(cinema, plan, problem):
    response = cinema.client.post("/halls", json={"name": "Bad", "plan": plan}, headers=cinema.admin)

    body = assert_error(response, 400)
    assert problem.lower() in " ".join(body["errors"]["plan"]).lower(), body["errors"]


def test_every_problem_of_a_plan_is_listed(cinema):
    plan = {"rows": [{"rows": "A", "seats": 0}, {"rows": "B", "seats": 10, "type": "vip"}]}

    body = assert_error(cinema.client.post("/halls", json={"name": "Bad", "plan": plan}, headers=cinema.admin), 400)

    assert len(body["errors"]["plan"]) == 2


def test_a_showtime_in_a_hall_with_a_plan_gets_its_seats_at_once(cinema, count_statements):
    create_hall(cinema)
    movie = cinema.movie()

    with count_statements() as statements:
        response = cinema.client.post(
            "/showtimes", json={"movie_id": movie["id"], "start_time": future(), "hall": "studio 1"}, headers=cinema.admin
        )

    assert response.status_code == 201, response.json
    showtime = response.json
    assert (showtime["seats_total"], showtime["seats_available"]) == (17, 17)
    assert showtime["hall"] == "Studio 1"  # the hall's own name, whatever the case typed
    assert sum(statement.startswith("INSERT INTO seats") for statement in statements) == 1
    seats = seats_by_label(seat_map(cinema, showtime["id"]))
    assert len(seats) == 17 and "B6" not in seats
    assert (seats["A1"]["type"], seats["A2"]["type"], seats["C4"]["type"]) == ("accessible", "companion", "premium")
    assert seats["A4"]["column"] == 5  # after the aisle


def test_the_seat_map_shows_the_gaps_of_each_row(cinema):
    create_hall(cinema)
    showtime = cinema.showtime(hall="Studio 1")

    rows = {row["row"]: row for row in seat_map(cinema, showtime["id"])["rows"]}

    assert rows["A"]["gaps"] == [4]
    assert rows["B"]["gaps"] == [4]  # B6 is missing at the end of the row: no gap after it
    assert [seat["label"] for seat in rows["B"]["seats"]] == ["B1", "B2", "B3", "B4", "B5"]


def test_a_hall_named_for_the_first_time_is_made_without_a_plan(cinema):
    showtime = cinema.showtime(hall="Garage")

    halls = cinema.client.get("/halls", headers=cinema.admin).json

    assert [(hall["name"], hall["plan"], hall["seats_total"]) for hall in halls] == [("Garage", None, 0)]
    assert showtime["hall_id"] == halls[0]["id"] and showtime["seats_total"] == 0
    assert cinema.seats(showtime["id"], rows=["A"], seats_per_row=3) == ["A1", "A2", "A3"]


def test_showtimes_overlap_in_a_hall_whatever_the_case_of_its_name(cinema):
    movie = cinema.movie(duration_minutes=100)
    start = future()
    cinema.showtime(movie_id=movie["id"], start_time=start, hall="Main")

    response = cinema.client.post(
        "/showtimes", json={"movie_id": movie["id"], "start_time": start, "hall": " MAIN "}, headers=cinema.admin
    )

    assert_error(response, 409, "Hall 'Main' is taken")


def test_a_new_plan_reaches_showtimes_without_bookings_only(cinema):
    hall = create_hall(cinema, plan={"rows": [{"rows": "A", "seats": 4}]})
    movie = cinema.movie(duration_minutes=90)
    booked = cinema.showtime(movie_id=movie["id"], start_time=future(days=10), hall="Studio 1")
    cancelled = cinema.showtime(movie_id=movie["id"], start_time=future(days=11), hall="Studio 1")
    free = cinema.showtime(movie_id=movie["id"], start_time=future(days=12), hall="Studio 1")
    guest = cinema.user()
    assert cinema.book(guest, booked["id"], ["A1"]).status_code == 201
    reservation = cinema.book(guest, cancelled["id"], ["A2"]).json["reservation"]
    assert cinema.client.delete(f"/reservations/{reservation['id']}", headers=guest).status_code == 200

    response = cinema.client.put(
        f"/halls/{hall['id']}", json={"plan": {"rows": [{"rows": "A-B", "seats": 5}]}}, headers=cinema.admin
    )

    assert response.status_code == 200, response.json
    assert (response.json["showtimes_updated"], response.json["showtimes_kept"]) == (1, 2)
    assert response.json["seats_total"] == 10
    assert len(seats_by_label(seat_map(cinema, free["id"]))) == 10
    assert len(seats_by_label(seat_map(cinema, booked["id"]))) == 4
    assert len(seats_by_label(seat_map(cinema, cancelled["id"]))) == 4  # its history keeps its seats


def test_renaming_a_hall_renames_its_showtimes(cinema):
    hall = create_hall(cinema)
    showtime = cinema.showtime(hall="Studio 1")
    create_hall(cinema, name="Taken", plan=None)

    renamed = cinema.client.put(f"/halls/{hall['id']}", json={"name": "Screen One"}, headers=cinema.admin)
    clash = cinema.client.put(f"/halls/{hall['id']}", json={"name": "taken"}, headers=cinema.admin)

    assert renamed.status_code == 200 and renamed.json["name"] == "Screen One"
    assert renamed.json["showtimes_updated"] == 0  # the plan did not change
    assert cinema.client.get(f"/showtimes/{showtime['id']}", headers=cinema.admin).json["hall"] == "Screen One"
    assert_error(clash, 409, "exists")


def test_updating_a_hall_needs_a_body(cinema):
    hall = create_hall(cinema)

    assert_error(cinema.client.put(f"/halls/{hall['id']}", json={}, headers=cinema.admin), 400)
    assert_error(cinema.client.put("/halls/999", json={"name": "X"}, headers=cinema.admin), 404)


def test_moving_a_showtime_into_a_hall_with_a_plan_gives_it_that_plan(cinema):
    create_hall(cinema)
    showtime = cinema.showtime_with_seats(hall="Garage")  # 20 seats added by hand

    response = cinema.client.put(f"/showtimes/{showtime['id']}", json={"hall": "Studio 1"}, headers=cinema.admin)

    assert response.status_code == 200, response.json
    assert (response.json["hall"], response.json["seats_total"]) == ("Studio 1", 17)
