"""`flask seed-demo`: a demo cinema in an empty database, seen through the API."""

from datetime import datetime

import pytest

from app import create_app
from conftest import test_config
from demo import DEMO_ADMIN, DEMO_USER


@pytest.fixture
def seeded(app):
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    return result.output


def login(client, account):
    response = client.post(
        "/login", json={"username": account["username"], "password": account["password"]}
    )
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}, response.json["user"]


def all_showtimes(client, headers):
    response = client.get("/showtimes?per_page=100", headers=headers)
    assert response.status_code == 200
    assert int(response.headers["X-Total-Count"]) == len(response.json)
    return response.json


def test_prints_the_demo_accounts_and_what_it_made(seeded):
    assert "12 movies" in seeded
    assert "56 showtimes" in seeded
    for account in (DEMO_ADMIN, DEMO_USER):
        assert account["username"] in seeded
        assert account["password"] in seeded


def test_the_printed_accounts_log_in_with_their_roles(client, seeded):
    _, admin = login(client, DEMO_ADMIN)
    _, user = login(client, DEMO_USER)

    assert admin["is_admin"] is True
    assert user["is_admin"] is False


def test_a_dozen_movies_across_genres(client, seeded):
    headers, _ = login(client, DEMO_USER)

    movies = client.get("/movies?per_page=100", headers=headers).json

    assert len(movies) == 12
    assert len({movie["genre"] for movie in movies}) >= 8
    assert all(movie["duration_minutes"] and movie["description"] for movie in movies)


def test_a_week_of_showtimes_in_two_halls_without_overlaps(client, seeded):
    headers, _ = login(client, DEMO_USER)

    showtimes = all_showtimes(client, headers)

    days = {datetime.fromisoformat(item["start_time"]).date() for item in showtimes}
    assert len(days) == 7
    halls = {item["hall"] for item in showtimes}
    assert halls == {"Main", "Studio 2"}
    for hall in halls:
        in_hall = sorted(
            (item for item in showtimes if item["hall"] == hall), key=lambda item: item["start_time"]
        )
        for earlier, later in zip(in_hall, in_hall[1:]):
            assert datetime.fromisoformat(earlier["end_time"]) <= datetime.fromisoformat(later["start_time"])


def test_every_showtime_has_a_seat_layout(client, seeded):
    headers, _ = login(client, DEMO_USER)

    showtimes = all_showtimes(client, headers)

    sizes = {(item["hall"], item["seats_total"]) for item in showtimes}
    assert sizes == {("Main", 140), ("Studio 2", 59)}  # Studio 2 has a pillar in place of C10
    seat_map = client.get(f"/showtimes/{showtimes[0]['id']}/seats", headers=headers).json
    assert [row["row"] for row in seat_map["rows"]] == list("ABCDEFGHIJ")
    assert len(seat_map["rows"][0]["seats"]) == 14


def test_some_bookings_exist_and_the_demo_user_can_book_more(client, seeded):
    headers, _ = login(client, DEMO_USER)
    admin, _ = login(client, DEMO_ADMIN)

    mine = client.get("/reservations", headers=headers).json
    report = client.get("/admin/report", headers=admin).json

    assert sorted(item["status"] for item in mine) == ["cancelled", "confirmed", "confirmed"]
    assert report["total_reservations"] == 4
    assert report["tickets_sold"] == 8
    assert report["cancelled_reservations"] == 1
    booked = next(item for item in mine if item["status"] == "confirmed")
    seat_map = client.get(f"/showtimes/{booked['showtime_id']}/seats", headers=headers).json
    statuses = {seat["label"]: seat["status"] for row in seat_map["rows"] for seat in row["seats"]}
    assert all(statuses[label] == "yours" for label in booked["seats"])
    free = next(label for label, status in statuses.items() if status == "available")
    response = client.post(
        "/reservations", json={"showtime_id": booked["showtime_id"], "seats": [free]}, headers=headers
    )
    assert response.status_code == 201


def test_refuses_a_database_that_has_data(app, client, seeded):
    headers, _ = login(client, DEMO_ADMIN)
    client.post("/movies", json={"title": "Extra", "genre": "Drama"}, headers=headers)

    result = app.test_cli_runner().invoke(args=["seed-demo"])

    assert result.exit_code != 0
    assert "already has data" in result.output
    assert len(client.get("/movies?per_page=100", headers=headers).json) == 13


def test_refuses_a_database_with_only_a_registered_user(app, client):
    client.post(
        "/register", json={"username": "early", "email": "early@example.com", "password": "password123"}
    )

    result = app.test_cli_runner().invoke(args=["seed-demo"])

    assert result.exit_code != 0
    assert client.post("/login", json={"username": DEMO_USER["username"], "password": DEMO_USER["password"]}).status_code == 401


def test_force_replaces_existing_data(app, client, seeded):
    headers, _ = login(client, DEMO_ADMIN)
    client.post("/movies", json={"title": "Extra", "genre": "Drama"}, headers=headers)

    result = app.test_cli_runner().invoke(args=["seed-demo", "--force"])

    assert result.exit_code == 0, result.output
    headers, _ = login(client, DEMO_ADMIN)
    titles = [movie["title"] for movie in client.get("/movies?per_page=100", headers=headers).json]
    assert len(titles) == 12 and "Extra" not in titles


def test_builds_the_schema_of_a_new_database_first(tmp_path):
    new_database = f"sqlite:///{tmp_path / 'new.db'}"
    app = create_app(test_config(tmp_path, SQLALCHEMY_DATABASE_URI=new_database, CREATE_TABLES=False))

    result = app.test_cli_runner().invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    headers, user = login(app.test_client(), DEMO_USER)
    assert user["is_admin"] is False
    assert len(all_showtimes(app.test_client(), headers)) > 0
