"""Conditional GET: ETags on seat maps, showtimes and movies, and 304 for pollers."""

import pytest

from conftest import assert_error, future


@pytest.fixture
def showing(cinema):
    """A showtime with seats A1-A10, B1-B10 and a user who may book them."""
    showtime = cinema.showtime_with_seats()
    return showtime, cinema.user("viewer")


def seat_map_url(showtime):
    return f"/showtimes/{showtime['id']}/seats"


def showtime_url(showtime):
    return f"/showtimes/{showtime['id']}"


def movie_url(showtime):
    return f"/movies/{showtime['movie_id']}"


def etag_of(client, url, headers):
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.json
    assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
    return response.headers["ETag"]


def get_if_none_match(client, url, headers, tag):
    return client.get(url, headers={**headers, "If-None-Match": tag})


@pytest.mark.parametrize("url_of", [seat_map_url, showtime_url, movie_url])
def test_the_current_tag_gives_a_bodiless_304(cinema, showing, url_of):
    showtime, user = showing
    tag = etag_of(cinema.client, url_of(showtime), user)
    response = get_if_none_match(cinema.client, url_of(showtime), user, tag)
    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == tag


@pytest.mark.parametrize("url_of", [seat_map_url, showtime_url, movie_url])
def test_tag_lists_weak_tags_and_star_match_too(cinema, showing, url_of):
    showtime, user = showing
    tag = etag_of(cinema.client, url_of(showtime), user)
    for header in (f'"other", W/{tag}', "*"):
        assert get_if_none_match(cinema.client, url_of(showtime), user, header).status_code == 304


@pytest.mark.parametrize("url_of", [seat_map_url, showtime_url, movie_url])
def test_an_unknown_or_malformed_tag_gives_the_full_body(cinema, showing, url_of):
    showtime, user = showing
    tag = etag_of(cinema.client, url_of(showtime), user)
    for header in ('"not-the-tag"', "garbage", '""'):
        response = get_if_none_match(cinema.client, url_of(showtime), user, header)
        assert response.status_code == 200
        assert response.headers["ETag"] == tag
        assert response.json


@pytest.mark.parametrize("url_of", [seat_map_url, showtime_url, movie_url])
def test_tags_are_stable_while_nothing_changes(cinema, showing, url_of):
    showtime, user = showing
    assert etag_of(cinema.client, url_of(showtime), user) == etag_of(
        cinema.client, url_of(showtime), user
    )


@pytest.mark.parametrize("url_of", [seat_map_url, showtime_url, movie_url])
def test_booking_and_cancelling_change_the_tag_at_once(cinema, showing, url_of):
    showtime, user = showing
    other = cinema.user("booker")
    before = etag_of(cinema.client, url_of(showtime), user)
    booked = cinema.book(other, showtime["id"], ["A1"])
    assert booked.status_code == 201
    after_booking = etag_of(cinema.client, url_of(showtime), user)
    assert after_booking != before
    # The old tag no longer matches: the poller gets the new state.
    response = get_if_none_match(cinema.client, url_of(showtime), user, before)
    assert response.status_code == 200

    reservation_id = booked.json["reservation"]["id"]
    assert cinema.client.delete(f"/reservations/{reservation_id}", headers=other).status_code == 200
    after_cancel = etag_of(cinema.client, url_of(showtime), user)
    assert after_cancel not in (before, after_booking)


def test_a_refused_booking_leaves_the_tag_alone(cinema, showing):
    showtime, user = showing
    assert cinema.book(user, showtime["id"], ["A1"]).status_code == 201
    tag = etag_of(cinema.client, seat_map_url(showtime), user)
    assert_error(cinema.book(cinema.user("late"), showtime["id"], ["A1", "A2"]), 409)
    assert etag_of(cinema.client, seat_map_url(showtime), user) == tag


@pytest.mark.parametrize("url_of", [seat_map_url, showtime_url, movie_url])
def test_new_seats_change_the_tag(cinema, showing, url_of):
    showtime, user = showing
    before = etag_of(cinema.client, url_of(showtime), user)
    cinema.seats(showtime["id"], rows=["C"], seats_per_row=4)
    assert etag_of(cinema.client, url_of(showtime), user) != before


@pytest.mark.parametrize("url_of", [seat_map_url, showtime_url, movie_url])
def test_showtime_changes_change_the_tag(cinema, showing, url_of):
    showtime, user = showing
    before = etag_of(cinema.client, url_of(showtime), user)
    response = cinema.client.put(showtime_url(showtime), json={"price": 14}, headers=cinema.admin)
    assert response.status_code == 200
    assert etag_of(cinema.client, url_of(showtime), user) != before


@pytest.mark.parametrize("url_of", [seat_map_url, showtime_url, movie_url])
def test_movie_changes_change_the_tag(cinema, showing, url_of):
    """The movie title appears in showtime bodies and seat maps."""
    showtime, user = showing
    before = etag_of(cinema.client, url_of(showtime), user)
    response = cinema.client.put(movie_url(showtime), json={"title": "Tenet"}, headers=cinema.admin)
    assert response.status_code == 200
    assert etag_of(cinema.client, url_of(showtime), user) != before


def test_movie_tag_follows_its_list_of_upcoming_showtimes(cinema, showing):
    showtime, user = showing
    before = etag_of(cinema.client, movie_url(showtime), user)
    added = cinema.showtime(movie_id=showtime["movie_id"], start_time=future(days=40))
    with_new = etag_of(cinema.client, movie_url(showtime), user)
    assert with_new != before
    assert cinema.client.delete(showtime_url(added), headers=cinema.admin).status_code == 200
    # Back to the same body as before: the same tag is right.
    assert etag_of(cinema.client, movie_url(showtime), user) == before


def test_seat_map_tags_differ_per_user(cinema, showing):
    """Seats of your own show as "yours": one user's map is not another's."""
    showtime, user = showing
    other = cinema.user("other")
    mine = etag_of(cinema.client, seat_map_url(showtime), user)
    assert etag_of(cinema.client, seat_map_url(showtime), other) != mine
    response = get_if_none_match(cinema.client, seat_map_url(showtime), other, mine)
    assert response.status_code == 200


def test_a_304_does_not_rebuild_the_seat_map(cinema, showing, count_statements):
    showtime, user = showing
    tag = etag_of(cinema.client, seat_map_url(showtime), user)
    with count_statements() as statements:
        response = get_if_none_match(cinema.client, seat_map_url(showtime), user, tag)
    assert response.status_code == 304
    assert not [sql for sql in statements if "FROM seats" in sql]


def test_a_kept_seat_map_is_served_until_its_tag_changes(cinema, showing, count_statements):
    """Each worker keeps the encoded map per tag for users with no seats in it; holders get theirs."""
    showtime, user = showing
    url = seat_map_url(showtime)
    other = cinema.user()
    first = cinema.client.get(url, headers=user)
    with count_statements() as statements:
        again = cinema.client.get(url, headers=other)
    assert again.get_data() == first.get_data()
    assert not [sql for sql in statements if "FROM seats" in sql]
    # A booking changes the tag: the next map is built, and the booker sees "yours".
    assert cinema.book(other, showtime["id"], ["B1"]).status_code == 201
    with count_statements() as statements:
        after = cinema.client.get(url, headers=user)
    assert [sql for sql in statements if "FROM seats" in sql]
    statuses = lambda response: {seat["label"]: seat["status"] for row in response.json["rows"] for seat in row["seats"]}  # noqa: E731
    assert statuses(after)["B1"] == "booked"
    assert statuses(cinema.client.get(url, headers=other))["B1"] == "yours"
    assert statuses(cinema.client.get(url, headers=user))["B1"] == "booked"
    assert statuses(cinema.client.get(url, headers=other))["B1"] == "yours"


@pytest.mark.parametrize("url_of", [seat_map_url, showtime_url, movie_url])
def test_a_tag_does_not_bypass_auth_or_existence(cinema, showing, url_of):
    showtime, user = showing
    tag = etag_of(cinema.client, url_of(showtime), user)
    assert_error(cinema.client.get(url_of(showtime), headers={"If-None-Match": tag}), 401)
    if url_of is movie_url:
        cinema.client.delete(showtime_url(showtime), headers=cinema.admin)
        assert cinema.client.delete(movie_url(showtime), headers=cinema.admin).status_code == 200
    else:
        assert cinema.client.delete(showtime_url(showtime), headers=cinema.admin).status_code == 200
    assert_error(get_if_none_match(cinema.client, url_of(showtime), user, tag), 404)
    assert_error(get_if_none_match(cinema.client, url_of({"id": 999, "movie_id": 999}), user, tag), 404)


def test_the_openapi_spec_lists_the_304s(app):
    from app import api

    with app.app_context():
        paths = api.spec.to_dict()["paths"]
    for path in ("/showtimes/{showtime_id}/seats", "/showtimes/{showtime_id}", "/movies/{movie_id}",
                 "/admin/report"):
        assert "304" in paths[path]["get"]["responses"], path


def report_tag(cinema):
    return etag_of(cinema.client, "/admin/report", cinema.admin)


def test_report_carries_a_tag_and_answers_304(cinema, showing):
    tag = report_tag(cinema)
    response = get_if_none_match(cinema.client, "/admin/report", cinema.admin, tag)
    assert response.status_code == 304
    assert response.get_data() == b""
    assert report_tag(cinema) == tag
    assert_error(get_if_none_match(cinema.client, "/admin/report", showing[1], tag), 403)


def test_report_tag_changes_with_bookings_seats_showtimes_and_movies(cinema, showing):
    showtime, user = showing
    seen = [report_tag(cinema)]

    def changed():
        tag = report_tag(cinema)
        assert tag not in seen
        seen.append(tag)

    booked = cinema.book(user, showtime["id"], ["A1"])
    changed()
    cinema.client.delete(f"/reservations/{booked.json['reservation']['id']}", headers=user)
    changed()
    cinema.seats(showtime["id"], rows=["C"], seats_per_row=2)
    changed()
    cinema.showtime(movie_id=showtime["movie_id"], start_time=future(days=50))
    changed()
    cinema.client.put(movie_url(showtime), json={"title": "Renamed"}, headers=cinema.admin)
    changed()
    other = cinema.showtime(movie_id=cinema.movie(title="Other")["id"], start_time=future(days=60))
    changed()
    assert cinema.client.delete(movie_url(other), headers=cinema.admin).status_code == 200
    changed()


def test_report_bodies_kept_for_a_tag_never_go_stale(cinema, showing):
    showtime, user = showing
    report = lambda **query: cinema.client.get("/admin/report", query_string=query, headers=cinema.admin).json  # noqa: E731
    assert report()["tickets_sold"] == 0
    assert report(movie_id=showtime["movie_id"])["tickets_sold"] == 0

    cinema.book(user, showtime["id"], ["A1", "A2"])

    assert report()["tickets_sold"] == 2
    assert report(movie_id=showtime["movie_id"])["tickets_sold"] == 2
    assert report(movie_id=showtime["movie_id"] + 1)["tickets_sold"] == 0


def test_a_repeated_report_is_one_query_after_the_token(cinema, showing, count_statements):
    cinema.client.get("/admin/report", headers=cinema.admin)

    with count_statements() as statements:
        response = cinema.client.get("/admin/report", headers=cinema.admin)

    assert response.status_code == 200 and response.json["showtimes"]
    assert len(statements) == 2  # the token's user and revocation, then the report's tag
