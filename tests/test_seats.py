"""Seat layouts: adding seats to a showtime, and the seat map with its statuses."""

import pytest

from conftest import assert_error


def add_seats(cinema, headers=None, **body):
    return cinema.client.post("/seats", json=body, headers=headers or cinema.admin)


def seat_map(cinema, showtime_id, headers=None):
    response = cinema.client.get(f"/showtimes/{showtime_id}/seats", headers=headers or cinema.admin)
    assert response.status_code == 200, response.get_json()
    return response.json


def labels(seat_map_body):
    return [seat["label"] for row in seat_map_body["rows"] for seat in row["seats"]]


def statuses(seat_map_body):
    return {seat["label"]: seat["status"] for row in seat_map_body["rows"] for seat in row["seats"]}


# ---- POST /seats --------------------------------------------------------------------


def test_add_a_list_of_seats(cinema):
    showtime = cinema.showtime()
    response = add_seats(cinema, showtime_id=showtime["id"], seats=["a1", "A2", "b10"])
    assert response.status_code == 201, response.json
    assert response.json == {"message": "Seats added successfully", "seats": ["A1", "A2", "B10"]}
    assert response.headers["Location"].endswith(f"/showtimes/{showtime['id']}/seats")

    body = seat_map(cinema, showtime["id"])
    assert labels(body) == ["A1", "A2", "B10"]
    assert body["seats_total"] == 3
    assert body["seats_available"] == 3


def test_add_rows_from_a_range(cinema):
    showtime = cinema.showtime()
    response = add_seats(cinema, showtime_id=showtime["id"], rows="A-C", seats_per_row=4)
    assert response.status_code == 201, response.json
    expected = [f"{row}{number}" for row in "ABC" for number in range(1, 5)]
    assert response.json["message"] == "Seats added successfully"
    assert response.json["seats"] == expected
    body = seat_map(cinema, showtime["id"])
    assert [row["row"] for row in body["rows"]] == ["A", "B", "C"]
    assert labels(body) == expected
    assert body["seats_total"] == 12


def test_add_rows_from_a_list(cinema):
    showtime = cinema.showtime()
    response = add_seats(cinema, showtime_id=showtime["id"], rows=["A", "aa"], seats_per_row=2)
    assert response.status_code == 201, response.json
    assert sorted(response.json["seats"]) == ["A1", "A2", "AA1", "AA2"]
    body = seat_map(cinema, showtime["id"])
    assert [row["row"] for row in body["rows"]] == ["A", "AA"]
    assert labels(body) == ["A1", "A2", "AA1", "AA2"]


def test_seats_belong_to_their_own_showtime(cinema):
    first = cinema.showtime(hall="Main")
    second = cinema.showtime(hall="Hall 2")
    assert add_seats(cinema, showtime_id=first["id"], seats=["A1"]).status_code == 201
    # The same label on another showtime is a different seat.
    assert add_seats(cinema, showtime_id=second["id"], seats=["A1", "A2"]).status_code == 201
    assert seat_map(cinema, first["id"])["seats_total"] == 1
    assert seat_map(cinema, second["id"])["seats_total"] == 2


def test_exactly_1000_seats_at_once_are_accepted(cinema):
    showtime = cinema.showtime()
    response = add_seats(cinema, showtime_id=showtime["id"], rows="A-J", seats_per_row=100)
    assert response.status_code == 201, response.json
    assert len(response.json["seats"]) == 1000
    assert seat_map(cinema, showtime["id"])["seats_total"] == 1000


@pytest.mark.parametrize("label", ["A0", "1A", "AAA1", "A1000", "", "A-1", "A 1", 7, None])
def test_bad_labels_are_refused(cinema, label):
    showtime = cinema.showtime()
    response = add_seats(cinema, showtime_id=showtime["id"], seats=["A1", label])
    body = assert_error(response, 400)
    assert "seats" in body["errors"]
    assert seat_map(cinema, showtime["id"])["seats_total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"seats": []},
        {"seats": ["A1", "A1"]},
        {"seats": ["a1", "A1"]},
        {"seats": [f"A{number}" for number in range(1, 501)] + [f"B{number}" for number in range(1, 502)]},
        {"rows": "A-Z", "seats_per_row": 39},
        {"seats": ["A1"], "rows": "A-B", "seats_per_row": 2},
        {"seats": ["A1"], "seats_per_row": 2},
        {"rows": "C-A", "seats_per_row": 2},
        {"rows": "A-AA", "seats_per_row": 2},
        {"rows": ["A", "A"], "seats_per_row": 2},
        {"rows": ["A", "AAA"], "seats_per_row": 2},
        {"rows": [], "seats_per_row": 2},
        {"rows": "A-B"},
        {"seats_per_row": 2},
        {"rows": "A-B", "seats_per_row": 0},
        {"rows": "A-B", "seats_per_row": 1000},
        {"rows": "A-B", "seats_per_row": "3"},
        {"seats": "A1"},
        {},
    ],
    ids=lambda body: repr(body)[:40],
)
def test_bad_batches_are_refused(cinema, body):
    showtime = cinema.showtime()
    response = add_seats(cinema, showtime_id=showtime["id"], **body)
    assert_error(response, 400)
    assert seat_map(cinema, showtime["id"])["seats_total"] == 0


def test_showtime_id_is_required_and_an_integer(cinema):
    showtime = cinema.showtime()
    for value in (None, str(showtime["id"]), True, -1):
        body = assert_error(add_seats(cinema, showtime_id=value, seats=["A1"]), 400)
        assert "showtime_id" in body["errors"], value
    assert_error(cinema.client.post("/seats", json={"seats": ["A1"]}, headers=cinema.admin), 400)
    assert seat_map(cinema, showtime["id"])["seats_total"] == 0


def test_unknown_showtime_is_404(cinema):
    assert_error(add_seats(cinema, showtime_id=9999, seats=["A1"]), 404)


def test_deleted_showtime_is_404(cinema):
    showtime = cinema.showtime()
    assert cinema.client.delete(f"/showtimes/{showtime['id']}", headers=cinema.admin).status_code == 200
    assert_error(add_seats(cinema, showtime_id=showtime["id"], seats=["A1"]), 404)


def test_existing_label_is_409_and_nothing_is_added(cinema):
    showtime = cinema.showtime()
    assert add_seats(cinema, showtime_id=showtime["id"], seats=["A1", "A2", "A3"]).status_code == 201

    response = add_seats(cinema, showtime_id=showtime["id"], seats=["A4", "a3", "A5"])
    body = assert_error(response, 409)
    assert "A3" in body["message"]
    assert "A4" not in body["message"]

    response = add_seats(cinema, showtime_id=showtime["id"], rows="A-B", seats_per_row=4)
    body = assert_error(response, 409)
    assert "A1" in body["message"]

    after = seat_map(cinema, showtime["id"])
    assert labels(after) == ["A1", "A2", "A3"]
    assert after["seats_total"] == 3


def test_normal_user_cannot_add_seats(cinema):
    showtime = cinema.showtime()
    user = cinema.user()
    assert_error(add_seats(cinema, headers=user, showtime_id=showtime["id"], seats=["A1"]), 403)
    assert_error(cinema.client.post("/seats", json={"showtime_id": showtime["id"], "seats": ["A1"]}), 401)
    assert seat_map(cinema, showtime["id"])["seats_total"] == 0


# ---- GET /showtimes/<id>/seats ------------------------------------------------------


def test_seat_map_is_in_natural_order(cinema):
    showtime = cinema.showtime()
    shuffled = ["AA1", "B1", "A10", "Z2", "A2", "Z1", "A1", "B12", "B3", "AB1"]
    assert add_seats(cinema, showtime_id=showtime["id"], seats=shuffled).status_code == 201

    body = seat_map(cinema, showtime["id"], headers=cinema.user())
    assert [row["row"] for row in body["rows"]] == ["A", "B", "Z", "AA", "AB"]
    assert [[seat["label"] for seat in row["seats"]] for row in body["rows"]] == [
        ["A1", "A2", "A10"],
        ["B1", "B3", "B12"],
        ["Z1", "Z2"],
        ["AA1"],
        ["AB1"],
    ]


def test_seat_map_body(cinema):
    movie = cinema.movie(title="Alien")
    showtime = cinema.showtime(movie_id=movie["id"])
    cinema.seats(showtime["id"], rows="A-B", seats_per_row=3)
    body = seat_map(cinema, showtime["id"], headers=cinema.user())
    assert {"showtime_id", "movie_title", "start_time", "seats_total", "seats_available", "rows"} <= set(body)
    assert body["showtime_id"] == showtime["id"]
    assert body["movie_title"] == "Alien"
    assert body["start_time"] == showtime["start_time"]
    assert (body["seats_total"], body["seats_available"]) == (6, 6)
    assert body["rows"][0] == {
        "row": "A",
        "gaps": [],
        "seats": [
            {"label": "A1", "status": "available", "type": "standard", "price": 10, "column": 1},
            {"label": "A2", "status": "available", "type": "standard", "price": 10, "column": 2},
            {"label": "A3", "status": "available", "type": "standard", "price": 10, "column": 3},
        ],
    }


def test_seat_statuses_depend_on_who_asks(cinema):
    showtime = cinema.showtime_with_seats()
    alice = cinema.user("alice")
    bob = cinema.user("bob")
    assert cinema.book(alice, showtime["id"], ["A1", "A2"]).status_code == 201
    assert cinema.book(bob, showtime["id"], ["B5"]).status_code == 201

    for_alice = seat_map(cinema, showtime["id"], headers=alice)
    assert statuses(for_alice)["A1"] == "yours"
    assert statuses(for_alice)["A2"] == "yours"
    assert statuses(for_alice)["B5"] == "booked"
    assert statuses(for_alice)["A3"] == "available"
    assert (for_alice["seats_total"], for_alice["seats_available"]) == (20, 17)

    for_bob = seat_map(cinema, showtime["id"], headers=bob)
    assert statuses(for_bob)["A1"] == "booked"
    assert statuses(for_bob)["B5"] == "yours"

    for_admin = seat_map(cinema, showtime["id"])
    assert {statuses(for_admin)[label] for label in ("A1", "A2", "B5")} == {"booked"}
    assert list(statuses(for_admin).values()).count("available") == 17

    carol = cinema.user("carol")
    for_carol = seat_map(cinema, showtime["id"], headers=carol)
    assert "yours" not in statuses(for_carol).values()
    assert for_carol["seats_available"] == 17


def test_seat_map_of_unknown_showtime_is_404(cinema):
    assert_error(cinema.client.get("/showtimes/9999/seats", headers=cinema.user()), 404)


def test_seat_map_needs_a_token(cinema):
    showtime = cinema.showtime_with_seats()
    assert_error(cinema.client.get(f"/showtimes/{showtime['id']}/seats"), 401)
