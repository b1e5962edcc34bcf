"""The OpenAPI document at /openapi.json and the docs page at /docs."""

import io
import re
from datetime import timedelta
from functools import partial

import pytest
from openapi_spec_validator import validate

from app import create_app
from conftest import ADMIN, Cinema, assert_error, test_config, during_outage
from contract_endpoints import CONTRACT_ENDPOINTS, PAGINATED, RATE_LIMITED
from fakes import closed_port_url
from models import Reservation, db, utcnow
from sqlalchemy import update

ERROR_STATUSES_EVERYWHERE = {"500", "503"}


@pytest.fixture
def spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.content_type.startswith("application/json")
    return response.json


def operation(spec, method, path):
    return spec["paths"][path][method.lower()]


def resolve(spec, item):
    """Follow a local $ref (#/components/...) to what it names."""
    while "$ref" in item:
        node = spec
        for part in item["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        item = node
    return item


def json_content(spec, response):
    return resolve(spec, response)["content"]["application/json"]


def test_the_document_is_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_the_description_explains_auth_errors_and_lists(spec):
    description = spec["info"]["description"]

    assert "Authorization: Bearer" in description
    assert '"error": "Not Found"' in description
    assert "X-Total-Count" in description


def test_every_contract_endpoint_is_documented_and_nothing_else(spec):
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }

    assert documented == {(method, path) for method, path, _ in CONTRACT_ENDPOINTS}


@pytest.mark.parametrize("method, path, auth", CONTRACT_ENDPOINTS)
def test_bearer_security_exactly_where_a_token_is_needed(spec, method, path, auth):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert "security" not in spec  # no global default: public endpoints stay public
    security = operation(spec, method, path).get("security")
    if auth == "none":
        assert security is None
    else:
        assert security == [{"bearerAuth": []}]


@pytest.mark.parametrize("method, path, auth", CONTRACT_ENDPOINTS)
def test_documented_security_matches_what_the_server_does(client, method, path, auth):
    url = re.sub(r"\{\w+\}", "1", path)

    response = client.open(url, method=method, json={} if method in {"POST", "PUT"} else None)

    if auth == "none":
        assert response.status_code != 401
    else:
        assert_error(response, 401)


@pytest.mark.parametrize("method, path, auth", CONTRACT_ENDPOINTS)
def test_every_error_response_has_the_contract_shape(spec, method, path, auth):
    responses = operation(spec, method, path)["responses"]
    errors = {status: item for status, item in responses.items() if status[0] in "45"}

    assert ERROR_STATUSES_EVERYWHERE <= set(errors)
    assert "default" not in responses  # every status is listed, nothing left implicit
    for status, item in errors.items():
        content = json_content(spec, item)
        assert resolve(spec, content["schema"]) == spec["components"]["schemas"]["Error"]
        example = content["example"]
        assert example["status"] == int(status)
        assert isinstance(example["error"], str) and isinstance(example["message"], str)


@pytest.mark.parametrize("method, path, auth", CONTRACT_ENDPOINTS)
def test_each_endpoint_lists_the_errors_it_can_return(spec, method, path, auth):
    op = operation(spec, method, path)
    statuses = set(op["responses"])
    expected = set(ERROR_STATUSES_EVERYWHERE)
    if auth != "none":
        expected.add("401")
    if auth in ("admin", "staff"):
        expected.add("403")
    if "{" in path:
        expected.add("404")
    if op.get("parameters") and any(p["in"] == "query" for p in op["parameters"]):
        expected.add("400")
    if "requestBody" in op:
        expected |= {"400", "413", "415"}
    if method in {"POST", "PUT", "DELETE"}:
        expected.add("415")
    if (method, path) in RATE_LIMITED:
        expected.add("429")

    assert expected <= statuses, expected - statuses


def test_the_error_schema_is_the_contract_shape(spec):
    error = spec["components"]["schemas"]["Error"]

    assert set(error["required"]) == {"status", "error", "message"}
    assert set(error["properties"]) == {"status", "error", "message", "errors", "error_id"}
    assert error["properties"]["status"]["type"] == "integer"
    assert error["properties"]["errors"]["type"] == "object"


def test_specific_conflicts_are_described(spec):
    conflict = operation(spec, "POST", "/reservations")["responses"]["409"]

    assert conflict["description"].startswith("A seat is taken, the showtime started, the seat limit is reached")


@pytest.mark.parametrize("method, path", sorted(PAGINATED))
def test_lists_document_their_pagination_headers(spec, method, path):
    op = operation(spec, method, path)
    ok = op["responses"]["200"]
    names = {p["name"] for p in op["parameters"] if p["in"] == "query"}

    assert set(ok["headers"]) == {"X-Total-Count", "Link"}
    assert ok["content"]["application/json"]["schema"]["type"] == "array"
    assert {"page", "per_page"} <= names


@pytest.mark.parametrize(
    "path", ["/register", "/movies", "/showtimes", "/seats", "/reservations"]
)
def test_creates_document_201_with_location(spec, path):
    created = operation(spec, "POST", path)["responses"]["201"]

    assert "Location" in created["headers"]


def test_rate_limited_endpoints_document_retry_after(spec):
    for method, path in RATE_LIMITED:
        too_many = operation(spec, method, path)["responses"]["429"]
        assert "Retry-After" in too_many["headers"]


def test_examples_come_from_the_contract(spec):
    register = operation(spec, "POST", "/register")
    body = register["requestBody"]["content"]["application/json"]["example"]
    answer = register["responses"]["201"]["content"]["application/json"]["example"]

    assert body == {"username": "john_doe", "email": "john@example.com", "password": "password123"}
    assert answer["message"] == "User registered successfully"
    assert set(answer["user"]) == {"id", "username", "email", "is_admin"}
    reservation = operation(spec, "POST", "/reservations")
    assert reservation["requestBody"]["content"]["application/json"]["example"] == {
        "showtime_id": 3,
        "seats": ["A1", "A2"],
    }
    assert spec["components"]["schemas"]["Movie"]["properties"]["title"]["example"] == "Inception"


def test_money_is_a_number_and_ids_in_paths_are_positive(spec):
    showtime = spec["components"]["schemas"]["Showtime"]
    (parameter,) = spec["paths"]["/movies/{movie_id}"]["parameters"]

    assert showtime["properties"]["price"]["type"] == "number"
    assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def test_patterns_use_the_openapi_regex_dialect(spec):
    username = spec["components"]["schemas"]["Register"]["properties"]["username"]

    assert username["pattern"] == "^[A-Za-z0-9_.-]{3,32}$"


@pytest.mark.parametrize("url", ["/movies/0", "/movies/99999999999999999999", "/showtimes/4294967296/seats"])
def test_ids_beyond_the_documented_range_are_not_found(client, cinema, url):
    assert_error(client.get(url, headers=cinema.admin), 404, "not found")


def test_the_docs_page_is_served_from_local_files(client):
    response = client.get("/docs/")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    assert '"url": "/openapi.json"' in page
    assert '"validatorUrl": null' in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(asset.startswith("/docs/") for asset in assets), assets
    absolute = re.findall(r"https?://[^\s\"']+", page)
    assert all(url.startswith("http://localhost/docs/") for url in absolute), absolute
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_docs_without_a_slash_redirects(client):
    response = client.get("/docs")

    assert response.status_code == 308
    assert response.headers["Location"].endswith("/docs/")


def test_unknown_docs_file_is_a_json_404(client):
    assert_error(client.get("/docs/no-such-file.js"), 404)


# ---- the documented examples are real answers ---------------------------------------

# Errors every operation may meet whose example is the shared one, checked once below.
SHARED_ERRORS = {400, 413, 415, 500, 503}
MISSING = 999  # an id nothing in the demo cinema has


def shape(value):
    """A JSON value's keys, recursively, and the kind of each leaf; a list by its first item."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else "string"


def wording(message: str) -> str:
    """A message without its numbers (ids, times) and error ids: what example and answer share."""
    return re.sub(r"\d+", "N", re.sub(r"\b[0-9a-f]{12}\b", "ID", message))


def documented_examples(spec):
    """(method, path, status) -> the JSON example of every documented answer that has one."""
    examples = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            for status, response in op["responses"].items():
                content = resolve(spec, response).get("content", {}).get("application/json", {})
                if "example" in content:
                    examples[(method.upper(), path, int(status))] = content["example"]
    return examples


def request_example(spec, method, path):
    return operation(spec, method, path)["requestBody"]["content"]["application/json"]["example"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


class Demo:
    """The demo cinema of ``flask --app app seed-demo``, used the way its docs page shows."""

    def __init__(self, app, client, spec):
        result = app.test_cli_runner().invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
        self.app, self.client, self.spec = app, client, spec
        self.admin = self.login({"username": "demo_admin", "password": "demo-admin-pass"})
        self.user = self.login(request_example(spec, "POST", "/login"))

    def login(self, credentials):
        response = self.client.post("/login", json=credentials)
        assert response.status_code == 200, (credentials, response.json)
        return bearer(response.json["access_token"])

    def example(self, method, path):
        return request_example(self.spec, method, path)


@pytest.fixture
def demo(app, client, spec):
    return Demo(app, client, spec)


def test_the_login_and_register_examples_work_on_the_demo_data(demo):
    login = demo.client.post("/login", json=demo.example("POST", "/login"))
    register = demo.client.post("/register", json=demo.example("POST", "/register"))

    assert login.status_code == 200, login.json
    assert login.json["user"]["username"] == "demo_user"
    assert register.status_code == 201, register.json  # no demo account has that name or email


def successful_answers(demo):
    """(method, path, status) -> a real answer, for each documented success."""
    client, admin, user = demo.client, demo.admin, demo.user
    answers = {}

    def answer(method, path, status, url=None, **request):
        response = client.open(url or path, method=method, **request)
        assert response.status_code == status, (method, url or path, response.get_json())
        answers[(method, path, status)] = response.get_json()
        return response.get_json()

    registered = answer("POST", "/register", 201, json=demo.example("POST", "/register"))
    answer("POST", "/login", 200, json=demo.example("POST", "/login"))
    answer("POST", "/users/promote/{user_id}", 200, f"/users/promote/{registered['user']['id']}", headers=admin)
    # In a hall without a plan: a showtime in the demo's halls has all its seats from the start.
    showtime = client.post("/showtimes", json={**demo.example("POST", "/showtimes"), "hall": "Garage"}, headers=admin).json
    seats = {**demo.example("POST", "/seats"), "showtime_id": showtime["id"]}
    answer("POST", "/seats", 201, json=seats, headers=admin)
    reserved = answer("POST", "/reservations", 201, json=demo.example("POST", "/reservations"), headers=user)
    reservation_id, showtime_id = reserved["reservation"]["id"], reserved["reservation"]["showtime_id"]
    answer("GET", "/reservations/{reservation_id}", 200, f"/reservations/{reservation_id}", headers=user)
    answer("GET", "/showtimes/{showtime_id}/seats", 200, f"/showtimes/{showtime_id}/seats", headers=user)
    answer("DELETE", "/reservations/{reservation_id}", 200, f"/reservations/{reservation_id}", headers=user)
    held = answer("POST", "/holds", 201, json=demo.example("POST", "/holds"), headers=user)
    hold_url = f"/holds/{held['hold']['id']}"
    answer("GET", "/holds/{hold_id}", 200, hold_url, headers=user)
    answer("POST", "/holds/{hold_id}/extend", 200, f"{hold_url}/extend", headers=user)
    answer("DELETE", "/holds/{hold_id}", 200, hold_url, headers=user)
    answer("GET", "/admin/report", 200, headers=admin)
    answer("GET", "/health", 200)
    return answers


def test_the_examples_of_answers_have_the_keys_of_real_answers(spec, demo):
    """On the demo data and with the documented requests, each example has a real answer's keys."""
    documented = {key: example for key, example in documented_examples(spec).items() if key[2] < 400}

    answers = successful_answers(demo)

    assert set(documented) == set(answers)
    for key, example in documented.items():
        assert shape(example) == shape(answers[key]), (key, example, answers[key])


def operation_errors(demo, tmp_path):
    """(method, path, status) -> the real answer, for each error whose example is the operation's own."""
    client, admin, user = demo.client, demo.admin, demo.user
    from test_posters import PNG

    def image(data=PNG, headers=admin, **form):
        return {"data": {"image": (io.BytesIO(data), "poster.png", "image/png"), **form}, "headers": headers}

    calls = {}
    for method, path, auth in CONTRACT_ENDPOINTS:
        url = re.sub(r"\{\w+\}", str(MISSING), path)
        body = {"json": {}} if method in {"POST", "PUT"} else {}
        if auth != "none":
            calls[(method, path, 401)] = partial(client.open, url, method=method, **body)
        if auth in ("admin", "staff"):
            calls[(method, path, 403)] = partial(client.open, url, method=method, headers=user, **body)
    showtime_example = demo.example("POST", "/showtimes")
    # In the demo cinema showtime 3 (of movie 3) is booked, reservation 3 is demo_user's and
    # cancelled, and a 600-minute movie 1 would run into the next showtime in its hall.
    calls.update(
        {
            ("POST", "/login", 401): partial(client.post, "/login", json={"username": "demo_user", "password": "x"}),
            ("GET", "/reservations", 403): partial(client.get, "/reservations?all=true", headers=user),
            ("POST", "/users/promote/{user_id}", 404): partial(client.post, f"/users/promote/{MISSING}", headers=admin),
            ("GET", "/movies/{movie_id}", 404): partial(client.get, f"/movies/{MISSING}", headers=user),
            ("PUT", "/movies/{movie_id}", 404): partial(
                client.put, f"/movies/{MISSING}", json={"title": "X"}, headers=admin
            ),
            ("DELETE", "/movies/{movie_id}", 404): partial(client.delete, f"/movies/{MISSING}", headers=admin),
            ("POST", "/upload-poster", 404): partial(client.post, "/upload-poster", **image(movie_id=str(MISSING))),
            ("POST", "/movies/{movie_id}/poster", 404): partial(client.post, f"/movies/{MISSING}/poster", **image()),
            ("GET", "/posters/{name}", 404): partial(client.get, "/posters/nothing.png"),
            ("POST", "/showtimes", 404): partial(
                client.post, "/showtimes", json={**showtime_example, "movie_id": MISSING}, headers=admin
            ),
            ("GET", "/showtimes/{showtime_id}", 404): partial(client.get, f"/showtimes/{MISSING}", headers=user),
            ("PUT", "/showtimes/{showtime_id}", 404): partial(
                client.put, f"/showtimes/{MISSING}", json={"price": 5}, headers=admin
            ),
            ("DELETE", "/showtimes/{showtime_id}", 404): partial(client.delete, f"/showtimes/{MISSING}", headers=admin),
            ("GET", "/showtimes/{showtime_id}/seats", 404): partial(
                client.get, f"/showtimes/{MISSING}/seats", headers=user
            ),
            ("POST", "/seats", 404): partial(
                client.post, "/seats", json={"showtime_id": MISSING, "seats": ["A1"]}, headers=admin
            ),
            ("POST", "/reservations", 404): partial(
                client.post, "/reservations", json={"showtime_id": MISSING, "seats": ["A1"]}, headers=user
            ),
            ("GET", "/reservations/{reservation_id}", 404): partial(
                client.get, f"/reservations/{MISSING}", headers=user
            ),
            ("DELETE", "/reservations/{reservation_id}", 404): partial(
                client.delete, f"/reservations/{MISSING}", headers=user
            ),
            ("POST", "/register", 409): partial(
                twice, partial(client.post, "/register", json=demo.example("POST", "/register"))
            ),
            ("PUT", "/movies/{movie_id}", 409): partial(
                client.put, "/movies/1", json={"duration_minutes": 600}, headers=admin
            ),
            ("DELETE", "/movies/{movie_id}", 409): partial(client.delete, "/movies/3", headers=admin),
            ("POST", "/showtimes", 409): partial(
                twice, partial(client.post, "/showtimes", json=showtime_example, headers=admin)
            ),
            ("PUT", "/showtimes/{showtime_id}", 409): partial(
                client.put, "/showtimes/3", json={"price": 5}, headers=admin
            ),
            ("DELETE", "/showtimes/{showtime_id}", 409): partial(client.delete, "/showtimes/3", headers=admin),
            ("POST", "/seats", 409): partial(
                client.post, "/seats", json={"showtime_id": 3, "seats": ["A1"]}, headers=admin
            ),
            ("POST", "/reservations", 409): partial(
                on_expired_hold, demo, lambda hold_id: client.post("/reservations", json={"hold_id": hold_id}, headers=user)
            ),
            ("DELETE", "/reservations/{reservation_id}", 409): partial(client.delete, "/reservations/3", headers=user),
            ("POST", "/reservations", 422): partial(
                key_reused,
                partial(client.post, "/reservations", json={"showtime_id": MISSING, "seats": ["A1"]}),
                partial(client.post, "/reservations", json={"showtime_id": MISSING, "seats": ["A2"]}),
                {**user, "Idempotency-Key": "book-once"},
            ),
            ("DELETE", "/reservations/{reservation_id}", 422): partial(
                key_reused,
                partial(client.delete, f"/reservations/{MISSING}"),
                partial(client.delete, f"/reservations/{MISSING + 1}"),
                {**user, "Idempotency-Key": "cancel-once"},
            ),
            ("POST", "/holds", 404): partial(
                client.post, "/holds", json={"showtime_id": MISSING, "quantity": 2}, headers=user
            ),
            ("POST", "/holds", 409): partial(
                client.post, "/holds", json={"showtime_id": 3, "seats": [f"H{n}" for n in range(1, 10)]}, headers=user
            ),
            ("POST", "/holds", 422): partial(
                key_reused,
                partial(client.post, "/holds", json={"showtime_id": MISSING, "quantity": 2}),
                partial(client.post, "/holds", json={"showtime_id": MISSING, "quantity": 3}),
                {**user, "Idempotency-Key": "hold-once"},
            ),
            ("GET", "/holds/{hold_id}", 404): partial(client.get, f"/holds/{MISSING}", headers=user),
            ("POST", "/holds/{hold_id}/extend", 404): partial(client.post, f"/holds/{MISSING}/extend", headers=user),
            ("DELETE", "/holds/{hold_id}", 404): partial(client.delete, f"/holds/{MISSING}", headers=user),
            ("POST", "/holds/{hold_id}/extend", 409): partial(
                on_expired_hold, demo, lambda hold_id: client.post(f"/holds/{hold_id}/extend", headers=user)
            ),
            ("DELETE", "/holds/{hold_id}", 409): partial(
                on_expired_hold, demo, lambda hold_id: client.delete(f"/holds/{hold_id}", headers=user)
            ),
            ("POST", "/users/{user_id}/role", 404): partial(
                client.post, f"/users/{MISSING}/role", json={"role": "staff"}, headers=admin
            ),
            ("POST", "/users/{user_id}/role", 409): partial(demote_yourself, client, admin),
            ("POST", "/reservations/{reservation_id}/cancel", 400): partial(
                client.post, "/reservations/1/cancel", json={"seats": ["C9"]}, headers=user
            ),
            ("POST", "/reservations/{reservation_id}/cancel", 404): partial(
                client.post, f"/reservations/{MISSING}/cancel", json={}, headers=user
            ),
            ("POST", "/reservations/{reservation_id}/cancel", 409): partial(
                client.post, "/reservations/3/cancel", json={}, headers=user
            ),
            ("POST", "/reservations/{reservation_id}/cancel", 422): partial(
                key_reused,
                partial(client.post, f"/reservations/{MISSING}/cancel", json={}),
                partial(client.post, f"/reservations/{MISSING + 1}/cancel", json={}),
                {**user, "Idempotency-Key": "cancel-seats-once"},
            ),
            ("GET", "/reservations/{reservation_id}/tickets", 404): partial(
                client.get, f"/reservations/{MISSING}/tickets", headers=user
            ),
            ("POST", "/reservations/{reservation_id}/tickets/{seat}/reissue", 409): partial(
                client.post, "/reservations/3/tickets/A1/reissue", headers=user
            ),
            ("POST", "/reservations/{reservation_id}/tickets/{seat}/reissue", 404): partial(
                client.post, f"/reservations/{MISSING}/tickets/A1/reissue", headers=user
            ),
            ("POST", "/check-ins", 404): partial(client.post, "/check-ins", json={"secret": "NOPE"}, headers=admin),
            ("POST", "/check-ins", 409): partial(check_in_too_early, client, user, admin),
            ("POST", "/upload-poster", 400): partial(client.post, "/upload-poster", **image(b"not an image")),
            ("POST", "/movies/{movie_id}/poster", 400): partial(client.post, "/movies/1/poster", **image(b"not an image")),
            ("POST", "/upload-poster", 415): partial(
                client.post, "/upload-poster", data="image", content_type="text/plain", headers=admin
            ),
            ("POST", "/movies/{movie_id}/poster", 415): partial(
                client.post, "/movies/1/poster", data="image", content_type="text/plain", headers=admin
            ),
            ("GET", "/health", 503): partial(during_outage, demo.app, partial(client.get, "/health")),
            ("PATCH", "/showtimes/{showtime_id}/seats", 404): partial(
                client.patch, f"/showtimes/{MISSING}/seats", json={"seats": ["A1"], "blocked": True}, headers=admin
            ),
            ("PATCH", "/showtimes/{showtime_id}/seats", 409): partial(
                client.patch, "/showtimes/3/seats", json={"seats": ["E5"], "blocked": True}, headers=admin
            ),
            ("GET", "/showtimes/{showtime_id}/seatmap.svg", 404): partial(
                client.get, f"/showtimes/{MISSING}/seatmap.svg", headers=user
            ),
            ("GET", "/showtimes/{showtime_id}/best-available", 404): partial(
                client.get, f"/showtimes/{MISSING}/best-available?quantity=2", headers=user
            ),
            ("GET", "/showtimes/{showtime_id}/best-available", 409): partial(
                client.get, "/showtimes/3/best-available?quantity=20", headers=user
            ),
            ("GET", "/showtimes/{showtime_id}/prices", 404): partial(
                client.get, f"/showtimes/{MISSING}/prices", headers=user
            ),
            ("POST", "/halls", 409): partial(client.post, "/halls", json={"name": "Studio 2"}, headers=admin),
            ("GET", "/halls/{hall_id}", 404): partial(client.get, f"/halls/{MISSING}", headers=user),
            ("PUT", "/halls/{hall_id}", 404): partial(client.put, f"/halls/{MISSING}", json={"name": "X"}, headers=admin),
            ("PUT", "/halls/{hall_id}", 409): partial(client.put, "/halls/1", json={"name": "Studio 2"}, headers=admin),
            ("POST", "/ticket-types", 409): partial(
                client.post,
                "/ticket-types",
                json={"code": "child", "name": "Kid", "price_rule": "percent", "percent": 50},
                headers=admin,
            ),
            ("PUT", "/ticket-types/{code}", 404): partial(client.put, "/ticket-types/vip", json={"name": "X"}, headers=admin),
            ("PUT", "/ticket-types/{code}", 409): partial(
                client.put, "/ticket-types/adult", json={"active": False}, headers=admin
            ),
        }
    )
    # An image host that is not there.
    nowhere = f"cloudinary://k:s@cloud?upload_prefix={closed_port_url()}"
    cloudy = Cinema(new_app(tmp_path / "cloudy", CLOUDINARY_URL=nowhere).test_client())
    movie_id = cloudy.movie()["id"]
    calls[("POST", "/upload-poster", 502)] = partial(
        cloudy.client.post, "/upload-poster", **image(headers=cloudy.admin)
    )
    calls[("POST", "/movies/{movie_id}/poster", 502)] = partial(
        cloudy.client.post, f"/movies/{movie_id}/poster", **image(headers=cloudy.admin)
    )
    return {key: call() for key, call in calls.items()}


def shared_errors(demo, tmp_path):
    """Component response name -> a real answer it stands for (429 aside, see rate_limited_errors)."""
    client, admin, user = demo.client, demo.admin, demo.user
    failing = new_app(tmp_path / "failing", TESTING=False, PROPAGATE_EXCEPTIONS=False)
    failing.add_url_rule("/explode", "explode", lambda: 1 / 0)
    too_large = "x" * (demo.app.config["MAX_CONTENT_LENGTH"] + 1)
    return {
        "BAD_REQUEST": client.post("/movies", json={"genre": "Sci-Fi"}, headers=admin),
        "UNAUTHORIZED": client.get("/me"),
        "FORBIDDEN": client.get("/users", headers=user),
        "NOT_FOUND": client.get("/movies/7", headers=user),
        "CONFLICT": twice(partial(book_a1, client, user)),
        "REQUEST_ENTITY_TOO_LARGE": client.post(
            "/movies", data=too_large, content_type="application/json", headers=admin
        ),
        "UNSUPPORTED_MEDIA_TYPE": client.post("/movies", data="x", content_type="text/plain", headers=admin),
        "INTERNAL_SERVER_ERROR": failing.test_client().get("/explode"),
        "SERVICE_UNAVAILABLE": during_outage(
            demo.app, partial(client.post, "/login", json=demo.example("POST", "/login"))
        ),
    }


def rate_limited_errors(tmp_path):
    """The 429s of login and registration. Last: an app with rate limits turns them on for all."""
    client = new_app(tmp_path / "limited", RATELIMIT_ENABLED=True).test_client()
    token = client.post("/login", json={"username": ADMIN["username"], "password": ADMIN["password"]}).json
    admin = bearer(token["access_token"])
    return {
        ("POST", "/check-ins", 429): past_the_limit(
            partial(client.post, "/check-ins", json={"secret": "NOPE"}, headers=admin)
        ),
        ("POST", "/login", 429): past_the_limit(partial(client.post, "/login", json={})),
        ("POST", "/register", 429): past_the_limit(partial(client.post, "/register", json={})),
    }


def new_app(folder, **settings):
    folder.mkdir()
    return create_app(test_config(folder, **settings))


def book_a1(client, headers):
    return client.post("/reservations", json={"showtime_id": 3, "seats": ["A1"]}, headers=headers)


def on_expired_hold(demo, call):
    """``call(hold_id)`` on a hold of demo_user's that has just run out."""
    hold = demo.client.post("/holds", json={"showtime_id": 3, "quantity": 1}, headers=demo.user)
    assert hold.status_code == 201, hold.get_json()
    with demo.app.app_context():
        db.session.execute(
            update(Reservation)
            .where(Reservation.id == hold.json["hold"]["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    return call(hold.json["hold"]["id"])
def demote_yourself(client, admin):
    me = client.get("/me", headers=admin).json
    return client.post(f"/users/{me['id']}/role", json={"role": "user"}, headers=admin)


def check_in_too_early(client, user, admin):
    """Demo reservation 1 is for a showtime days ahead: its door is not open yet."""
    secret = client.get("/reservations/1/tickets", headers=user).json["tickets"][0]["secret"]
    return client.post("/check-ins", json={"secret": secret}, headers=admin)


def twice(call):
    """The second answer to the same request."""
    call()
    return call()


def key_reused(first, second, headers):
    """The answer to ``second`` sent with the headers (and Idempotency-Key) of ``first``."""
    first(headers=headers)
    return second(headers=headers)


def past_the_limit(call):
    for _ in range(1000):
        response = call()
        if response.status_code == 429:
            return response
    raise AssertionError("no 429 after 1000 requests")


def error_mismatch(example, response):
    """Why ``example`` is not what ``response`` answered, or None when it is."""
    real = response.get_json()
    if real is None or response.status_code != example["status"]:
        return f"answered {response.status_code}: {response.get_data(as_text=True)[:200]}"
    if shape(example) != shape(real) or example["error"] != real["error"]:
        return f"documented {example}, answered {real}"
    if wording(example["message"]) != wording(real["message"]):
        return f"documented {example['message']!r}, answered {real['message']!r}"
    return None


def test_documented_errors_are_the_real_ones(spec, demo, tmp_path):
    """Each error example says what the server answers then (ids and times aside)."""
    answers = operation_errors(demo, tmp_path)
    components = {
        name: json_content(spec, item)["example"] for name, item in spec["components"]["responses"].items()
    }
    shared_answers = shared_errors(demo, tmp_path)
    answers.update(rate_limited_errors(tmp_path))
    shared_answers["TOO_MANY_REQUESTS"] = answers[("POST", "/login", 429)]
    shared_by_status = {example["status"]: example for example in components.values()}
    problems = []

    for (method, path, status), example in documented_examples(spec).items():
        if status < 400:
            continue
        if (method, path, status) in answers:
            problem = error_mismatch(example, answers[(method, path, status)])
        elif status in SHARED_ERRORS:
            problem = None if example == shared_by_status[status] else f"not the shared example: {example}"
        else:
            problem = "no real request stands behind this example"
        if problem:
            problems.append(f"{method} {path} {status}: {problem}")
    for name, example in components.items():
        problem = error_mismatch(example, shared_answers[name])
        if problem:
            problems.append(f"components/responses/{name}: {problem}")

    assert problems == [], "\n".join(problems)
