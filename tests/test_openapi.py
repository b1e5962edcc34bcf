"""The OpenAPI document at /openapi.json and the docs page at /docs."""

import re

import pytest
from openapi_spec_validator import validate

from conftest import assert_error
from contract_endpoints import CONTRACT_ENDPOINTS, PAGINATED, RATE_LIMITED

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
    if auth == "admin":
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

    assert conflict["description"] == "A seat is taken, or the showtime started"


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
