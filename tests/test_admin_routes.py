"""Every admin route refuses a normal user with 403 and changes nothing."""

import pytest

from conftest import assert_error, future


@pytest.fixture
def scene(cinema):
    """A movie, a showtime with seats and a second user, created by the admin."""
    movie = cinema.movie()
    showtime = cinema.showtime(movie_id=movie["id"])
    cinema.seats(showtime["id"])
    other = cinema.register("bystander")
    return {"movie": movie["id"], "showtime": showtime["id"], "user": other["id"]}


def admin_calls(scene):
    return [
        ("get", "/users", None),
        ("post", f"/users/promote/{scene['user']}", None),
        ("post", "/movies", {"title": "Heat", "genre": "Crime"}),
        ("put", f"/movies/{scene['movie']}", {"title": "Renamed"}),
        ("delete", f"/movies/{scene['movie']}", None),
        ("post", "/showtimes", {"movie_id": scene["movie"], "start_time": future(days=40)}),
        ("put", f"/showtimes/{scene['showtime']}", {"hall": "Other"}),
        ("delete", f"/showtimes/{scene['showtime']}", None),
        ("post", "/seats", {"showtime_id": scene["showtime"], "seats": ["Z1"]}),
        ("get", "/admin/report", None),
        ("get", "/reservations?all=true", None),
    ]


def snapshot(client, admin, scene):
    """What an admin sees of the data the calls above could change."""
    return {
        "users": client.get("/users", headers=admin).json,
        "movies": client.get("/movies", headers=admin).json,
        "showtime": client.get(f"/showtimes/{scene['showtime']}", headers=admin).json,
        "seats": client.get(f"/showtimes/{scene['showtime']}/seats", headers=admin).json,
    }


def test_normal_user_gets_403_everywhere_and_nothing_changes(client, cinema, scene):
    user = cinema.user("plain")
    before = snapshot(client, cinema.admin, scene)
    for method, path, body in admin_calls(scene):
        response = getattr(client, method)(path, json=body, headers=user)
        assert_error(response, 403)
    assert snapshot(client, cinema.admin, scene) == before


def test_anonymous_caller_gets_401_everywhere(client, cinema, scene):
    for method, path, body in admin_calls(scene):
        response = getattr(client, method)(path, json=body)
        assert_error(response, 401)


def test_the_same_calls_work_for_an_admin(client, cinema, scene):
    """The 403s above come from the role check, not from bad requests."""
    for method, path, body in admin_calls(scene):
        if method == "delete":
            continue  # deleting is checked last, below
        response = getattr(client, method)(path, json=body, headers=cinema.admin)
        assert response.status_code in (200, 201), (path, response.json)
    response = client.delete(f"/showtimes/{scene['showtime']}", headers=cinema.admin)
    assert response.status_code == 200
    response = client.delete(f"/movies/{scene['movie']}", headers=cinema.admin)
    assert response.status_code == 200
