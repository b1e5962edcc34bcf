"""Errors keep one JSON shape everywhere; the health check."""

import json

import pytest

from app import create_app
from conftest import assert_error, test_config


def test_unknown_route(client):
    response = client.get("/no/such/route")

    body = assert_error(response, 404)
    assert body["error"] == "Not Found"
    assert response.content_type.startswith("application/json")
    assert "<html" not in response.get_data(as_text=True).lower()


def test_unknown_route_with_a_token_and_a_body(client, cinema):
    response = client.post("/moviez", json={"title": "Heat"}, headers=cinema.admin)

    assert_error(response, 404)


def test_method_not_allowed_lists_the_allowed_methods(client, cinema):
    response = client.patch("/movies", json={"title": "Heat"}, headers=cinema.admin)

    body = assert_error(response, 405)
    assert body["error"] == "Method Not Allowed"
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "PATCH" not in allowed
    assert client.get("/movies", headers=cinema.admin).json == []


def test_method_not_allowed_on_a_single_method_route(client):
    response = client.get("/register")

    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


def test_body_over_the_size_limit(client, cinema):
    body = json.dumps({"title": "Heat", "genre": "Crime", "description": "x" * (1024 * 1024 + 1)})

    response = client.post(
        "/movies", data=body, content_type="application/json", headers=cinema.admin
    )

    result = assert_error(response, 413)
    assert result["error"] == "Request Entity Too Large"
    assert client.get("/movies", headers=cinema.admin).json == []


def test_body_over_the_size_limit_on_a_public_route(client):
    body = json.dumps({"username": "u" * (1024 * 1024 + 10), "email": "a@b.co", "password": "x" * 8})

    assert_error(client.post("/register", data=body, content_type="application/json"), 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_body_is_refused(client, cinema, content_type):
    response = client.post(
        "/movies", data="title=Heat&genre=Crime", content_type=content_type, headers=cinema.admin
    )

    assert_error(response, 415)
    assert client.get("/movies", headers=cinema.admin).json == []


def test_multipart_body_is_refused_on_a_json_route(client, cinema):
    response = client.post(
        "/movies", data={"title": "Heat", "genre": "Crime"}, headers=cinema.admin
    )

    assert_error(response, 415)
    assert client.get("/movies", headers=cinema.admin).json == []


def test_json_with_a_charset_is_accepted(client, cinema):
    response = client.post(
        "/movies",
        data=json.dumps({"title": "Heat", "genre": "Crime"}),
        content_type="application/json; charset=utf-8",
        headers=cinema.admin,
    )

    assert response.status_code == 201


@pytest.mark.parametrize("raw", ['{"title": "Heat",', "{'title': 'Heat'}", "not json", "{"])
def test_malformed_json(client, cinema, raw):
    response = client.post("/movies", data=raw, content_type="application/json", headers=cinema.admin)

    assert_error(response, 400)
    assert client.get("/movies", headers=cinema.admin).json == []


@pytest.mark.parametrize("raw", ["[]", '[{"title": "Heat", "genre": "Crime"}]', "null", '"Heat"', "42", "true"])
def test_json_that_is_not_an_object(client, cinema, raw):
    response = client.post("/movies", data=raw, content_type="application/json", headers=cinema.admin)

    assert_error(response, 400)
    assert client.get("/movies", headers=cinema.admin).json == []


@pytest.mark.parametrize("raw", ["[]", "null"])
def test_json_that_is_not_an_object_on_register(client, raw):
    assert_error(client.post("/register", data=raw, content_type="application/json"), 400)


def test_validation_errors_name_the_fields(client, cinema):
    response = client.post(
        "/movies", json={"title": "", "duration_minutes": 0}, headers=cinema.admin
    )

    body = assert_error(response, 400)
    assert set(body["errors"]) == {"title", "genre", "duration_minutes"}
    for messages in body["errors"].values():
        assert isinstance(messages, list) and messages
        assert all(isinstance(message, str) for message in messages)


@pytest.fixture
def failing_app(tmp_path):
    app = create_app(test_config(tmp_path, TESTING=False, PROPAGATE_EXCEPTIONS=False))

    @app.route("/explode")
    def explode():
        raise RuntimeError("SELECT password_hash FROM users WHERE id = 1")

    return app


def test_internal_error_hides_the_details(failing_app):
    response = failing_app.test_client().get("/explode")

    body = assert_error(response, 500)
    assert body["error"] == "Internal Server Error"
    assert isinstance(body["error_id"], str) and body["error_id"]
    assert body["error_id"] in body["message"]
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert "SELECT" not in text and "password_hash" not in text
    assert "RuntimeError" not in text


def test_internal_error_ids_differ(failing_app):
    client = failing_app.test_client()

    first = assert_error(client.get("/explode"), 500)["error_id"]
    second = assert_error(client.get("/explode"), 500)["error_id"]

    assert first != second


def test_internal_error_is_logged_with_its_id(failing_app, caplog):
    with caplog.at_level("ERROR"):
        body = assert_error(failing_app.test_client().get("/explode"), 500)

    assert any(body["error_id"] in record.getMessage() for record in caplog.records)


def test_app_keeps_working_after_an_internal_error(failing_app):
    client = failing_app.test_client()
    assert_error(client.get("/explode"), 500)

    assert client.get("/health").status_code == 200


def test_health(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_unknown_routes_and_methods_come_before_body_checks(client):
    assert_error(client.post("/nope", data="x", content_type="text/plain"), 404)
    assert_error(client.get("/nope?q=%00"), 404)
    assert_error(client.put("/health", data="x", content_type="text/plain"), 405)
