"""Seat types, blocked seats, the seat map as a picture, and what guests filter showtimes by."""

import xml.etree.ElementTree as ET

import pytest

from conftest import assert_error, future

SVG = "{http://www.w3.org/2000/svg}"


def statuses(cinema, showtime_id, headers=None):
    body = cinema.client.get(f"/showtimes/{showtime_id}/seats", headers=headers or cinema.admin).json
    return {seat["label"]: (seat["status"], seat["type"]) for row in body["rows"] for seat in row["seats"]}


def change(cinema, showtime_id, headers=None, **body):
    return cinema.client.patch(f"/showtimes/{showtime_id}/seats", json=body, headers=headers or cinema.admin)


def test_seats_added_by_hand_can_have_a_type(cinema):
    showtime = cinema.showtime()
    response = cinema.client.post(
        "/seats", json={"showtime_id": showtime["id"], "seats": ["K1", "K2"], "type": "premium"}, headers=cinema.admin
    )

    assert response.status_code == 201
    assert statuses(cinema, showtime["id"]) == {"K1": ("available", "premium"), "K2": ("available", "premium")}
    body = {"showtime_id": showtime["id"], "seats": ["K3"], "type": "sofa"}
    assert "type" in assert_error(cinema.client.post("/seats", json=body, headers=cinema.admin), 400)["errors"]


def test_admins_change_seat_types(cinema):
    showtime = cinema.showtime_with_seats()

    response = change(cinema, showtime["id"], seats=["A1", "a2"], type="accessible")

    assert response.status_code == 200, response.json
    assert statuses(cinema, showtime["id"])["A2"] == ("available", "accessible")


def test_a_blocked_seat_is_never_sold(cinema):
    showtime = cinema.showtime_with_seats()
    guest = cinema.user()

    assert change(cinema, showtime["id"], seats=["B5"], blocked=True).status_code == 200
    refused = cinema.book(guest, showtime["id"], ["B4", "B5"])
    shown = cinema.client.get(f"/showtimes/{showtime['id']}", headers=guest).json

    assert assert_error(refused, 409, "not for sale")["errors"] == {"seats": ["B5"]}
    assert statuses(cinema, showtime["id"], guest)["B5"] == ("blocked", "standard")
    assert statuses(cinema, showtime["id"], guest)["B4"] == ("available", "standard")  # nothing was booked
    assert (shown["seats_total"], shown["seats_available"]) == (20, 19)
    assert change(cinema, showtime["id"], seats=["B5"], blocked=False).status_code == 200
    assert cinema.book(guest, showtime["id"], ["B5"]).status_code == 201


def test_blocking_a_booked_seat_names_it_and_changes_nothing(cinema):
    showtime = cinema.showtime_with_seats()
    assert cinema.book(cinema.user(), showtime["id"], ["A3"]).status_code == 201

    response = change(cinema, showtime["id"], seats=["A2", "A3"], blocked=True)

    assert assert_error(response, 409, "A3")["errors"] == {"seats": ["A3"]}
    assert statuses(cinema, showtime["id"])["A2"] == ("available", "standard")


@pytest.mark.parametrize(
    "body",
    [
        {"seats": ["A1"]},
        {"seats": [], "blocked": True},
        {"seats": ["A1", "A1"], "blocked": True},
        {"seats": ["A1"], "type": "throne"},
        {"seats": ["A1"], "blocked": "yes please"},
        {"seats": ["A1"], "blocked": 0},
        {"seats": "A1", "blocked": True},
    ],
)
def test_bad_seat_changes_are_refused(cinema, body):
    showtime = cinema.showtime_with_seats()

    assert_error(change(cinema, showtime["id"], **body), 400)


def test_seat_changes_name_unknown_seats_and_need_an_admin(cinema):
    showtime = cinema.showtime_with_seats()

    unknown = change(cinema, showtime["id"], seats=["A1", "Z9"], blocked=True)

    assert assert_error(unknown, 400, "Z9")["errors"] == {"seats": ["Unknown seat: Z9"]}
    assert statuses(cinema, showtime["id"])["A1"] == ("available", "standard")
    assert_error(change(cinema, showtime["id"], headers=cinema.user(), seats=["A1"], blocked=True), 403)
    assert_error(change(cinema, 999, seats=["A1"], blocked=True), 404)


def test_a_seat_change_bumps_the_seat_maps_etag(cinema):
    showtime = cinema.showtime_with_seats()
    first = cinema.client.get(f"/showtimes/{showtime['id']}/seats", headers=cinema.admin)

    change(cinema, showtime["id"], seats=["A1"], type="premium")
    again = cinema.client.get(
        f"/showtimes/{showtime['id']}/seats", headers={**cinema.admin, "If-None-Match": first.headers["ETag"]}
    )

    assert again.status_code == 200


# ---- the seat map as a picture ------------------------------------------------------


def test_the_seat_map_picture_shows_every_seat_with_its_status(cinema):
    response = cinema.client.post(
        "/halls",
        json={"name": "Studio 1", "plan": {"rows": [{"rows": "A-C", "seats": 6, "aisles": [3], "type": "standard"}],
                                           "seat_types": {"C1-C6": "premium"}}},
        headers=cinema.admin,
    )
    assert response.status_code == 201
    showtime = cinema.showtime(hall="Studio 1", prices={"premium": 14})
    alice, bob = cinema.user("alice"), cinema.user("bob")
    assert cinema.book(alice, showtime["id"], ["A1"]).status_code == 201
    assert cinema.book(bob, showtime["id"], ["A2"]).status_code == 201
    assert change(cinema, showtime["id"], seats=["B6"], blocked=True).status_code == 200

    response = cinema.client.get(f"/showtimes/{showtime['id']}/seatmap.svg", headers=alice)

    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.data)
    seats = {group.get("data-label"): group for group in root.iter(f"{SVG}g") if group.get("data-label")}
    assert len(seats) == 18
    assert {label: seats[label].get("data-status") for label in ("A1", "A2", "B6", "C1")} == {
        "A1": "yours", "A2": "booked", "B6": "blocked", "C1": "available",
    }
    assert seats["C3"].get("aria-label") == "Row C seat 3, premium, available, $14"
    assert "Inception" in root.find(f"{SVG}title").text


def test_the_picture_carries_the_seat_maps_etag(cinema):
    showtime = cinema.showtime_with_seats()
    guest = cinema.user()
    url = f"/showtimes/{showtime['id']}/seatmap.svg"

    first = cinema.client.get(url, headers=guest)
    same = cinema.client.get(url, headers={**guest, "If-None-Match": first.headers["ETag"]})
    seat_map_tag = cinema.client.get(f"/showtimes/{showtime['id']}/seats", headers=guest).headers["ETag"]
    cinema.book(cinema.user(), showtime["id"], ["A1"])
    changed = cinema.client.get(url, headers={**guest, "If-None-Match": first.headers["ETag"]})

    assert first.headers["ETag"] == seat_map_tag
    assert same.status_code == 304
    assert changed.status_code == 200


def test_the_picture_needs_a_token_and_a_showtime(cinema):
    assert_error(cinema.client.get("/showtimes/1/seatmap.svg"), 401)
    assert_error(cinema.client.get("/showtimes/999/seatmap.svg", headers=cinema.user()), 404)


def test_a_title_cannot_break_out_of_the_picture(cinema):
    movie = cinema.movie(title='<script>alert("x")</script> & co')
    showtime = cinema.showtime_with_seats(movie_id=movie["id"])

    response = cinema.client.get(f"/showtimes/{showtime['id']}/seatmap.svg", headers=cinema.user())

    assert b"<script>" not in response.data
    assert '<script>alert("x")</script> & co' in ET.fromstring(response.data).find(f"{SVG}title").text


# ---- what a guest chooses by --------------------------------------------------------


def test_movies_have_a_rating_a_language_and_a_trailer(cinema):
    movie = cinema.movie(age_rating="FSK 12", language="German", trailer_url="https://example.com/trailer")

    assert (movie["age_rating"], movie["language"], movie["trailer_url"]) == ("FSK 12", "German", "https://example.com/trailer")
    bad = cinema.client.post(
        "/movies", json={"title": "X", "genre": "Y", "trailer_url": "javascript:alert(1)"}, headers=cinema.admin
    )
    assert "trailer_url" in assert_error(bad, 400)["errors"]


def test_showtimes_filter_by_format_languages_and_rating(cinema):
    english = cinema.movie(title="Dune", language="English", age_rating="PG-13", duration_minutes=100)
    german = cinema.movie(title="Lola rennt", language="German", age_rating="FSK 12", duration_minutes=80)
    day = future(days=5, hour=12)[:10]
    dune_3d = cinema.showtime(movie_id=english["id"], start_time=f"{day}T12:00:00", format="3D",
                              audio_language="English", subtitles="German")
    dune_2d = cinema.showtime(movie_id=english["id"], start_time=f"{day}T18:00:00", audio_language="German")
    lola = cinema.showtime(movie_id=german["id"], start_time=f"{day}T12:00:00", hall="Studio 2", audio_language="German")

    def ids(query, path="/showtimes"):
        response = cinema.client.get(f"{path}?{query}", headers=cinema.user())
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json]

    assert dune_2d["format"] == "2D" and dune_3d["format"] == "3D"
    assert ids("format=3D") == [dune_3d["id"]]
    assert ids("audio_language=german") == [lola["id"], dune_2d["id"]]
    assert ids("subtitles=German") == [dune_3d["id"]]
    assert ids("language=English&audio_language=German") == [dune_2d["id"]]
    assert ids(f"date={day}&age_rating=fsk%2012", "/showtimes/search") == [lola["id"]]
    assert "format" in assert_error(cinema.client.get("/showtimes?format=8K", headers=cinema.user()), 400)["errors"]


def test_a_bad_format_is_refused(cinema):
    movie = cinema.movie()
    response = cinema.client.post(
        "/showtimes", json={"movie_id": movie["id"], "start_time": future(), "format": "VR"}, headers=cinema.admin
    )

    assert "format" in assert_error(response, 400)["errors"]


# ---- best available -----------------------------------------------------------------


@pytest.fixture
def plan_showtime(cinema):
    """Rows A-E of 8 seats with an aisle after seat 4; wheelchair space A1 with companion A2."""
    plan = {
        "rows": [{"rows": "A-E", "seats": 8, "aisles": [4]}],
        "seat_types": {"A1": "accessible", "A2": "companion", "E1-E8": "premium"},
        "preferred_row": "C",
    }
    response = cinema.client.post("/halls", json={"name": "Studio 1", "plan": plan}, headers=cinema.admin)
    assert response.status_code == 201, response.json
    return cinema.showtime(hall="Studio 1")


def best(cinema, showtime_id, query, headers=None):
    return cinema.client.get(f"/showtimes/{showtime_id}/best-available?{query}", headers=headers or cinema.user())


def test_best_available_picks_seats_together_in_the_preferred_row(cinema, plan_showtime):
    response = best(cinema, plan_showtime["id"], "quantity=2")

    assert response.status_code == 200, response.json
    assert response.json["seats"] in (["C3", "C4"], ["C5", "C6"])  # beside the aisle, in the middle
    assert response.json["together"] is True
    assert "row C" in response.json["explanation"]
    assert best(cinema, plan_showtime["id"], "quantity=2").json == response.json  # the same map, the same answer


def test_best_available_holds_nothing_and_skips_taken_and_blocked_seats(cinema, plan_showtime):
    showtime_id = plan_showtime["id"]
    for row in "ABCDE":
        change(cinema, showtime_id, seats=[f"{row}{n}" for n in range(1, 9) if n not in (5, 6, 7, 8)], blocked=True)
    assert cinema.book(cinema.user(), showtime_id, ["C5", "C6"]).status_code == 201
    before = statuses(cinema, showtime_id)

    picked = best(cinema, showtime_id, "quantity=4").json["seats"]

    assert len(picked) == 4 and all(before[label][0] == "available" for label in picked)
    assert statuses(cinema, showtime_id) == before


def test_best_available_without_a_group_is_a_409_unless_split_is_allowed(cinema, plan_showtime):
    showtime_id = plan_showtime["id"]

    refused = best(cinema, showtime_id, "quantity=5")
    split = best(cinema, showtime_id, "quantity=5&allow_split=true")

    assert_error(refused, 409, "allow_split")
    assert split.status_code == 200 and len(split.json["seats"]) == 5 and split.json["together"] is False


def test_best_available_wheelchair_spaces_and_seat_types_on_request(cinema, plan_showtime):
    showtime_id = plan_showtime["id"]

    with_wheelchair = best(cinema, showtime_id, "quantity=2&accessible=1").json["seats"]
    premium = best(cinema, showtime_id, "quantity=2&seat_types=premium").json["seats"]
    plain = best(cinema, showtime_id, "quantity=4").json["seats"]

    assert with_wheelchair == ["A1", "A2"]
    assert all(label.startswith("E") for label in premium)
    assert not {"A1", "A2"} & set(plain)


@pytest.mark.parametrize(
    "query",
    ["", "quantity=0", "quantity=51", "quantity=two", "quantity=2&accessible=3", "quantity=2&seat_types=throne",
     "quantity=2&allow_split=maybe", "quantity=" + "9" * 5000],
)
def test_bad_best_available_questions_are_a_400(cinema, plan_showtime, query):
    assert_error(best(cinema, plan_showtime["id"], query), 400)


def test_best_available_needs_a_token_and_a_showtime(cinema):
    assert_error(cinema.client.get("/showtimes/1/best-available?quantity=2"), 401)
    assert_error(best(cinema, 999, "quantity=2"), 404)


def test_a_preferred_row_must_be_a_row_of_the_plan(cinema):
    plan = {"rows": [{"rows": "A-C", "seats": 4}], "preferred_row": "Z"}

    body = assert_error(cinema.client.post("/halls", json={"name": "X", "plan": plan}, headers=cinema.admin), 400)

    assert "preferred_row" in " ".join(body["errors"]["plan"])
