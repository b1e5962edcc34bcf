"""The movie catalogue: create, list, search, read, update and archive."""

import re
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import assert_error, future

MOVIE_KEYS = {
    "id",
    "title",
    "genre",
    "description",
    "poster_url",
    "duration_minutes",
    "age_rating",
    "language",
    "trailer_url",
    "created_at",
}
MISSING = object()
VALID = {
    "title": "Inception",
    "genre": "Sci-Fi",
    "description": "A thief who steals corporate secrets through dream-sharing.",
    "poster_url": "https://example.com/posters/inception.jpg",
    "duration_minutes": 148,
}


def links(response) -> dict:
    """The Link header as {rel: {query parameter: value}}."""
    found = {}
    for url, rel in re.findall(r'<([^>]*)>;\s*rel="([^"]+)"', response.headers.get("Link", "")):
        found[rel] = {name: values[0] for name, values in parse_qs(urlparse(url).query).items()}
    return found


def titles(response) -> list:
    assert response.status_code == 200, response.json
    return [movie["title"] for movie in response.json]


def catalogue(client, headers) -> list:
    response = client.get("/movies?per_page=100", headers=headers)
    assert response.status_code == 200
    return response.json


def search(client, headers, **params):
    return client.get("/movies/search", query_string=params, headers=headers)


# ---- POST /movies -----------------------------------------------------------------


def test_create_movie(client, cinema):
    response = client.post("/movies", json=VALID, headers=cinema.admin)

    assert response.status_code == 201
    movie = response.json
    assert set(movie) == MOVIE_KEYS
    assert isinstance(movie["id"], int)
    for field, value in VALID.items():
        assert movie[field] == value
    assert re.search(r"[+-]\d\d:\d\d$", movie["created_at"]), movie["created_at"]
    assert response.headers["Location"].endswith(f"/movies/{movie['id']}")

    stored = client.get(response.headers["Location"], headers=cinema.admin)
    assert stored.status_code == 200
    assert {key: stored.json[key] for key in MOVIE_KEYS} == movie


def test_create_movie_with_only_the_required_fields(client, cinema):
    response = client.post("/movies", json={"title": "Heat", "genre": "Crime"}, headers=cinema.admin)

    assert response.status_code == 201
    assert set(response.json) == MOVIE_KEYS
    assert response.json["description"] is None
    assert response.json["poster_url"] is None
    assert response.json["duration_minutes"] is None


@pytest.mark.parametrize("title", ["Amélie", "千と千尋の神隠し", "Léon: The Professional 🎬"])
def test_create_movie_with_a_unicode_title(client, cinema, title):
    response = client.post("/movies", json={**VALID, "title": title}, headers=cinema.admin)

    assert response.status_code == 201
    assert response.json["title"] == title
    stored = client.get(f"/movies/{response.json['id']}", headers=cinema.admin)
    assert stored.json["title"] == title
    assert titles(client.get("/movies", headers=cinema.admin)) == [title]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"title": MISSING}, "title"),
        ({"title": None}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 42}, "title"),
        ({"genre": MISSING}, "genre"),
        ({"genre": None}, "genre"),
        ({"genre": ""}, "genre"),
        ({"genre": " \t "}, "genre"),
        ({"genre": "g" * 51}, "genre"),
        ({"poster_url": "javascript:alert(1)"}, "poster_url"),
        ({"poster_url": "ftp://example.com/poster.jpg"}, "poster_url"),
        ({"poster_url": "data:image/png;base64,AAAA"}, "poster_url"),
        ({"poster_url": "not a url"}, "poster_url"),
        ({"poster_url": "https://example.com/" + "p" * 500}, "poster_url"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": -5}, "duration_minutes"),
        ({"duration_minutes": 601}, "duration_minutes"),
        ({"duration_minutes": "90"}, "duration_minutes"),
        ({"duration_minutes": True}, "duration_minutes"),
        ({"duration_minutes": 90.5}, "duration_minutes"),
        ({"description": 7}, "description"),
        ({"id": 99}, "id"),
        ({"rating": 5}, "rating"),
    ],
)
def test_create_movie_validation(client, cinema, changes, field):
    body = {key: value for key, value in {**VALID, **changes}.items() if value is not MISSING}

    response = client.post("/movies", json=body, headers=cinema.admin)

    error = assert_error(response, 400)
    assert field in error["errors"], error
    assert catalogue(client, cinema.admin) == []


def test_create_movie_boundaries_are_accepted(client, cinema):
    body = {
        "title": "t" * 200,
        "genre": "g" * 50,
        "poster_url": "http://localhost:5500/posters/a.png",
        "duration_minutes": 600,
    }
    response = client.post("/movies", json=body, headers=cinema.admin)
    assert response.status_code == 201, response.json

    short = client.post(
        "/movies", json={"title": "x", "genre": "y", "duration_minutes": 1}, headers=cinema.admin
    )
    assert short.status_code == 201, short.json


def test_create_movie_needs_a_json_body(client, cinema):
    assert_error(client.post("/movies", headers=cinema.admin), 400)
    assert_error(client.post("/movies", json={}, headers=cinema.admin), 400)
    assert_error(
        client.post("/movies", data="title=Heat", content_type="text/plain", headers=cinema.admin),
        415,
    )
    assert catalogue(client, cinema.admin) == []


def test_every_admin_movie_route_refuses_a_normal_user(client, cinema):
    movie = cinema.movie(title="Heat")
    headers = cinema.user()

    assert_error(client.post("/movies", json=VALID, headers=headers), 403)
    assert_error(client.put(f"/movies/{movie['id']}", json={"title": "Cold"}, headers=headers), 403)
    assert_error(client.delete(f"/movies/{movie['id']}", headers=headers), 403)

    assert titles(client.get("/movies", headers=headers)) == ["Heat"]
    assert client.get(f"/movies/{movie['id']}", headers=headers).json["title"] == "Heat"


def test_movie_routes_need_a_token(client, cinema):
    movie = cinema.movie()

    assert_error(client.get("/movies"), 401)
    assert_error(client.get("/movies/search?q=a"), 401)
    assert_error(client.get(f"/movies/{movie['id']}"), 401)
    assert_error(client.post("/movies", json=VALID), 401)
    assert_error(client.put(f"/movies/{movie['id']}", json={"title": "X"}), 401)
    assert_error(client.delete(f"/movies/{movie['id']}"), 401)
    assert client.get(f"/movies/{movie['id']}", headers=cinema.admin).json["title"] == "Inception"


# ---- GET /movies ------------------------------------------------------------------


def test_list_movies_ordered_by_title(client, cinema):
    for title in ("Zodiac", "Alien", "Memento", "Blade Runner"):
        cinema.movie(title=title)
    headers = cinema.user()

    response = client.get("/movies", headers=headers)

    assert titles(response) == ["Alien", "Blade Runner", "Memento", "Zodiac"]
    assert response.headers["X-Total-Count"] == "4"
    assert all(set(movie) >= MOVIE_KEYS for movie in response.json)


def test_list_movies_is_paginated(client, cinema):
    for title in ("A1", "A2", "A3", "A4", "A5"):
        cinema.movie(title=title)

    response = client.get("/movies?page=2&per_page=2", headers=cinema.admin)

    assert titles(response) == ["A3", "A4"]
    assert response.headers["X-Total-Count"] == "5"
    rels = links(response)
    assert set(rels) == {"first", "prev", "next", "last"}
    assert rels["first"]["page"] == "1"
    assert rels["prev"]["page"] == "1"
    assert rels["next"]["page"] == "3"
    assert rels["last"]["page"] == "3"
    assert all(rel["per_page"] == "2" for rel in rels.values())

    # Following the links walks the catalogue.
    next_url = re.search(r'<([^>]*)>;\s*rel="next"', response.headers["Link"]).group(1)
    assert titles(client.get(next_url, headers=cinema.admin)) == ["A5"]

    first = client.get("/movies?per_page=2", headers=cinema.admin)
    assert titles(first) == ["A1", "A2"]
    assert "prev" not in links(first)
    assert links(first)["next"]["page"] == "2"


def test_list_movies_links_keep_the_filter(client, cinema):
    for number in range(3):
        cinema.movie(title=f"Drama {number}", genre="Drama")
    cinema.movie(title="Comedy", genre="Comedy")

    response = client.get("/movies?genre=Drama&per_page=2", headers=cinema.admin)

    assert response.headers["X-Total-Count"] == "3"
    assert links(response)["next"]["genre"] == "Drama"


def test_list_movies_default_page_size_is_twenty(client, cinema):
    for number in range(21):
        cinema.movie(title=f"Movie {number:02d}")

    response = client.get("/movies", headers=cinema.admin)

    assert len(response.json) == 20
    assert response.headers["X-Total-Count"] == "21"
    assert links(response)["next"]["page"] == "2"


def test_list_movies_page_past_the_end(client, cinema):
    cinema.movie(title="Heat")

    response = client.get("/movies?page=9", headers=cinema.admin)

    assert response.status_code == 200
    assert response.json == []
    assert response.headers["X-Total-Count"] == "1"


def test_list_movies_when_there_are_none(client, cinema):
    response = client.get("/movies", headers=cinema.user())

    assert response.status_code == 200
    assert response.json == []
    assert response.headers["X-Total-Count"] == "0"


def test_list_movies_filtered_by_genre(client, cinema):
    cinema.movie(title="Heat", genre="Crime")
    cinema.movie(title="Up", genre="Animation")
    cinema.movie(title="Fargo", genre="Crime")

    response = client.get("/movies?genre=Crime", headers=cinema.admin)
    assert titles(response) == ["Fargo", "Heat"]
    assert response.headers["X-Total-Count"] == "2"

    assert titles(client.get("/movies?genre=crime", headers=cinema.admin)) == ["Fargo", "Heat"]
    assert titles(client.get("/movies?genre=Western", headers=cinema.admin)) == []


@pytest.mark.parametrize(
    "query", ["per_page=0", "per_page=101", "page=0", "page=-1", "page=abc", "per_page=ten"]
)
def test_list_movies_refuses_bad_paging(client, cinema, query):
    body = assert_error(client.get(f"/movies?{query}", headers=cinema.admin), 400)
    assert set(body["errors"]) <= {"page", "per_page"}


def test_list_movies_accepts_the_largest_page(client, cinema):
    cinema.movie()
    assert titles(client.get("/movies?per_page=100", headers=cinema.admin)) == ["Inception"]


# ---- GET /movies/search -----------------------------------------------------------


@pytest.fixture
def library(cinema):
    for title, genre in [
        ("The Dark Knight", "Action"),
        ("Dark City", "Sci-Fi"),
        ("Inception", "Sci-Fi"),
        ("Amélie", "Romance"),
        ("Knight and Day", "Action Comedy"),
    ]:
        cinema.movie(title=title, genre=genre)
    return cinema


def test_search_by_title(client, library):
    response = search(client, library.admin, title="dark")

    assert titles(response) == ["Dark City", "The Dark Knight"]
    assert response.headers["X-Total-Count"] == "2"


def test_search_by_genre(client, library):
    assert titles(search(client, library.admin, genre="action")) == [
        "Knight and Day",
        "The Dark Knight",
    ]
    assert titles(search(client, library.admin, genre="SCI")) == ["Dark City", "Inception"]


def test_search_by_title_and_genre_together(client, library):
    response = search(client, library.admin, title="knight", genre="comedy")

    assert titles(response) == ["Knight and Day"]
    assert titles(search(client, library.admin, title="dark", genre="romance")) == []


def test_search_with_q_matches_title_or_genre(client, library):
    assert titles(search(client, library.admin, q="sci")) == ["Dark City", "Inception"]
    assert titles(search(client, library.admin, q="knight")) == ["Knight and Day", "The Dark Knight"]
    assert titles(search(client, library.admin, q="romance")) == ["Amélie"]


def test_search_is_case_insensitive_beyond_ascii(client, library):
    assert titles(search(client, library.admin, title="AMÉLIE")) == ["Amélie"]
    assert titles(search(client, library.admin, q="amélie")) == ["Amélie"]
    assert titles(search(client, library.admin, title="mél")) == ["Amélie"]


def test_search_finds_unicode_titles(client, cinema):
    cinema.movie(title="千と千尋の神隠し", genre="Animation")
    cinema.movie(title="Heat", genre="Crime")

    assert titles(search(client, cinema.admin, title="千尋")) == ["千と千尋の神隠し"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("' OR 1=1 --", []),
        ("%", ["100% Love"]),
        ("_", ["Under_score"]),
        ("\\", ["Back\\slash"]),
        ("'", ["Ocean's Eleven"]),
        ("1=1", []),
        ("%' OR '1'='1", []),
    ],
)
def test_search_treats_its_text_literally(client, cinema, text, expected):
    for title in ("100% Love", "Under_score", "Back\\slash", "Ocean's Eleven", "Plain"):
        cinema.movie(title=title)

    assert titles(search(client, cinema.admin, title=text)) == expected
    assert titles(search(client, cinema.admin, q=text)) == expected
    assert len(catalogue(client, cinema.admin)) == 5


def test_search_needs_a_criterion(client, library):
    assert_error(client.get("/movies/search", headers=library.admin), 400)
    assert_error(search(client, library.admin, title=""), 400)
    assert_error(search(client, library.admin, page=1), 400)


def test_search_is_paginated(client, library):
    response = search(client, library.admin, q="i", per_page=2, page=2)

    assert response.status_code == 200
    total = int(response.headers["X-Total-Count"])
    assert total == 5
    assert titles(response) == ["Inception", "Knight and Day"]
    rels = links(response)
    assert rels["next"]["page"] == "3"
    assert rels["prev"]["page"] == "1"
    assert rels["last"]["page"] == "3"
    assert rels["next"]["q"] == "i"

    assert search(client, library.admin, q="i", page=10).json == []
    assert_error(search(client, library.admin, q="i", per_page=0), 400)
    assert_error(search(client, library.admin, q="i", per_page=101), 400)


def test_search_is_open_to_every_user(client, library):
    assert titles(search(client, library.user(), q="inception")) == ["Inception"]


# ---- GET /movies/<id> -------------------------------------------------------------


def test_get_movie_with_its_upcoming_showtimes(client, cinema):
    movie = cinema.movie(title="Heat", duration_minutes=170)
    later = cinema.showtime(movie_id=movie["id"], start_time=future(days=10))
    sooner = cinema.showtime(movie_id=movie["id"], start_time=future(days=5))
    other = cinema.showtime(start_time=future(days=5), hall="Two")

    response = client.get(f"/movies/{movie['id']}", headers=cinema.user())

    assert response.status_code == 200
    body = response.json
    assert set(body) >= MOVIE_KEYS | {"showtimes"}
    assert body["id"] == movie["id"]
    assert body["title"] == "Heat"
    assert body["duration_minutes"] == 170
    assert [showtime["id"] for showtime in body["showtimes"]] == [sooner["id"], later["id"]]
    assert other["id"] not in [showtime["id"] for showtime in body["showtimes"]]
    assert body["showtimes"][0]["movie_id"] == movie["id"]
    assert body["showtimes"][0]["start_time"] == sooner["start_time"]


def test_get_movie_without_showtimes(client, cinema):
    movie = cinema.movie()

    response = client.get(f"/movies/{movie['id']}", headers=cinema.admin)

    assert response.status_code == 200
    assert response.json["showtimes"] == []


def test_get_unknown_movie(client, cinema):
    body = assert_error(client.get("/movies/4242", headers=cinema.admin), 404)
    assert "4242" in body["message"]


@pytest.mark.parametrize("movie_id", ["-1", "abc", "1.5"])
def test_get_movie_with_a_malformed_id(client, cinema, movie_id):
    cinema.movie()
    assert_error(client.get(f"/movies/{movie_id}", headers=cinema.admin), 404)


# ---- PUT /movies/<id> -------------------------------------------------------------


def test_update_movie_partially(client, cinema):
    movie = cinema.movie(**VALID)

    response = client.put(f"/movies/{movie['id']}", json={"genre": "Thriller"}, headers=cinema.admin)

    assert response.status_code == 200
    assert set(response.json) == MOVIE_KEYS
    assert response.json == {**movie, "genre": "Thriller"}
    stored = client.get(f"/movies/{movie['id']}", headers=cinema.admin).json
    assert stored["genre"] == "Thriller"
    assert stored["title"] == VALID["title"]
    assert stored["description"] == VALID["description"]
    assert stored["duration_minutes"] == VALID["duration_minutes"]


def test_update_movie_every_field(client, cinema):
    movie = cinema.movie(**VALID)
    changes = {
        "title": "千と千尋の神隠し",
        "genre": "Animation",
        "description": "A girl in a world of spirits.",
        "poster_url": "http://example.com/spirited.png",
        "duration_minutes": 125,
    }

    response = client.put(f"/movies/{movie['id']}", json=changes, headers=cinema.admin)

    assert response.status_code == 200
    assert response.json == {**movie, **changes}
    assert titles(client.get("/movies", headers=cinema.admin)) == ["千と千尋の神隠し"]


def test_update_movie_can_clear_optional_fields(client, cinema):
    movie = cinema.movie(**VALID)

    response = client.put(
        f"/movies/{movie['id']}", json={"poster_url": None, "description": None}, headers=cinema.admin
    )

    assert response.status_code == 200
    assert response.json["poster_url"] is None
    assert response.json["description"] is None


def test_update_unknown_movie(client, cinema):
    assert_error(client.put("/movies/4242", json={"title": "Ghost"}, headers=cinema.admin), 404)
    assert catalogue(client, cinema.admin) == []


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"title": ""}, "title"),
        ({"title": "  "}, "title"),
        ({"title": None}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"genre": "g" * 51}, "genre"),
        ({"genre": ""}, "genre"),
        ({"poster_url": "javascript:alert(1)"}, "poster_url"),
        ({"poster_url": "ftp://example.com/a.jpg"}, "poster_url"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": 601}, "duration_minutes"),
        ({"duration_minutes": "90"}, "duration_minutes"),
        ({"duration_minutes": True}, "duration_minutes"),
        ({"id": 5}, "id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ],
)
def test_update_movie_validation(client, cinema, changes, field):
    movie = cinema.movie(**VALID)

    response = client.put(
        f"/movies/{movie['id']}", json={"genre": "Drama", **changes}, headers=cinema.admin
    )

    assert field in assert_error(response, 400)["errors"]
    stored = client.get(f"/movies/{movie['id']}", headers=cinema.admin).json
    assert {key: stored[key] for key in MOVIE_KEYS} == movie


def test_update_movie_with_an_empty_body(client, cinema):
    movie = cinema.movie(**VALID)

    assert_error(client.put(f"/movies/{movie['id']}", json={}, headers=cinema.admin), 400)
    assert_error(client.put(f"/movies/{movie['id']}", headers=cinema.admin), 400)
    for raw in ("null", "[]"):
        response = client.put(
            f"/movies/{movie['id']}", data=raw, content_type="application/json", headers=cinema.admin
        )
        assert_error(response, 400)
    stored = client.get(f"/movies/{movie['id']}", headers=cinema.admin).json
    assert {key: stored[key] for key in MOVIE_KEYS} == movie


def test_update_deleted_movie(client, cinema):
    movie = cinema.movie()
    assert client.delete(f"/movies/{movie['id']}", headers=cinema.admin).status_code == 200

    assert_error(client.put(f"/movies/{movie['id']}", json={"title": "Back"}, headers=cinema.admin), 404)


# ---- DELETE /movies/<id> ----------------------------------------------------------


def test_delete_movie_removes_it_and_its_showtimes_everywhere(client, cinema):
    movie = cinema.movie(title="Heat", genre="Crime")
    kept = cinema.movie(title="Fargo", genre="Crime")
    showtime = cinema.showtime_with_seats(movie_id=movie["id"])
    kept_showtime = cinema.showtime(movie_id=kept["id"], hall="Two")
    headers = cinema.user()

    response = client.delete(f"/movies/{movie['id']}", headers=cinema.admin)

    assert response.status_code == 200
    assert isinstance(response.json["message"], str) and response.json["message"]
    assert_error(client.get(f"/movies/{movie['id']}", headers=headers), 404)
    assert titles(client.get("/movies", headers=headers)) == ["Fargo"]
    assert client.get("/movies", headers=headers).headers["X-Total-Count"] == "1"
    assert titles(client.get("/movies?genre=Crime", headers=headers)) == ["Fargo"]
    assert titles(search(client, headers, title="heat")) == []
    assert titles(search(client, headers, genre="crime")) == ["Fargo"]
    listed = client.get("/showtimes", headers=headers)
    assert [item["id"] for item in listed.json] == [kept_showtime["id"]]
    assert_error(client.get(f"/showtimes/{showtime['id']}", headers=headers), 404)
    assert_error(client.delete(f"/movies/{movie['id']}", headers=cinema.admin), 404)


def test_delete_unknown_movie(client, cinema):
    cinema.movie()

    assert_error(client.delete("/movies/4242", headers=cinema.admin), 404)
    assert len(catalogue(client, cinema.admin)) == 1


def test_delete_movie_is_refused_while_an_upcoming_showtime_is_booked(client, cinema):
    movie = cinema.movie(title="Heat")
    showtime = cinema.showtime_with_seats(movie_id=movie["id"])
    headers = cinema.user()
    booking = cinema.book(headers, showtime["id"], ["A1", "A2"])
    assert booking.status_code == 201, booking.json

    assert_error(client.delete(f"/movies/{movie['id']}", headers=cinema.admin), 409)

    assert client.get(f"/movies/{movie['id']}", headers=headers).status_code == 200
    assert titles(client.get("/movies", headers=headers)) == ["Heat"]
    assert titles(search(client, headers, title="heat")) == ["Heat"]
    assert [item["id"] for item in client.get("/showtimes", headers=headers).json] == [showtime["id"]]
    current = client.get(f"/showtimes/{showtime['id']}", headers=headers)
    assert current.status_code == 200
    assert current.json["seats_available"] == current.json["seats_total"] - 2
    reservation = client.get(
        f"/reservations/{booking.json['reservation']['id']}", headers=headers
    )
    assert reservation.json["status"] == "confirmed"


def test_delete_movie_is_allowed_once_the_booking_is_cancelled(client, cinema):
    movie = cinema.movie(title="Heat")
    showtime = cinema.showtime_with_seats(movie_id=movie["id"])
    headers = cinema.user()
    reservation_id = cinema.book(headers, showtime["id"], ["A1"]).json["reservation"]["id"]
    assert_error(client.delete(f"/movies/{movie['id']}", headers=cinema.admin), 409)

    cancel = client.delete(f"/reservations/{reservation_id}", headers=headers)
    assert cancel.status_code == 200

    assert client.delete(f"/movies/{movie['id']}", headers=cinema.admin).status_code == 200
    assert_error(client.get(f"/movies/{movie['id']}", headers=headers), 404)
    assert client.get("/showtimes", headers=headers).json == []


def test_reservation_history_survives_a_movie_delete(client, cinema):
    movie = cinema.movie(title="Heat")
    showtime = cinema.showtime_with_seats(movie_id=movie["id"])
    headers = cinema.user()
    booked = cinema.book(headers, showtime["id"], ["A1", "A2"]).json["reservation"]
    assert client.delete(f"/reservations/{booked['id']}", headers=headers).status_code == 200
    assert client.delete(f"/movies/{movie['id']}", headers=cinema.admin).status_code == 200

    response = client.get(f"/reservations/{booked['id']}", headers=headers)

    assert response.status_code == 200
    history = response.json
    assert history["id"] == booked["id"]
    assert history["status"] == "cancelled"
    assert history["movie_title"] == "Heat"
    assert history["showtime_id"] == showtime["id"]
    assert history["start_time"] == showtime["start_time"]
    assert history["seats"] == ["A1", "A2"]
    assert history["total_price"] == booked["total_price"]
    listed = client.get("/reservations", headers=headers).json
    assert [item["id"] for item in listed] == [booked["id"]]
    assert listed[0]["movie_title"] == "Heat"
    assert client.get(f"/reservations/{booked['id']}", headers=cinema.admin).status_code == 200
