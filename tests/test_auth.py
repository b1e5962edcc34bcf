"""Accounts and tokens: /register, /login, /refresh, /logout, /me and every JWT failure."""

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import jwt as pyjwt
import pytest
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from werkzeug.security import check_password_hash

import auth

from app import create_app
from conftest import ADMIN, SECRET, assert_error, test_config

NEW_USER = {"username": "john_doe", "email": "john@example.com", "password": "password123"}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def login(client, username="john_doe", password="password123"):
    return client.post("/login", json={"username": username, "password": password})


def user_count(client, admin_headers):
    response = client.get("/users", headers=admin_headers)
    assert response.status_code == 200
    return int(response.headers["X-Total-Count"])


@pytest.fixture
def registered(client):
    response = client.post("/register", json=NEW_USER)
    assert response.status_code == 201, response.json
    return response.json["user"]


@pytest.fixture
def tokens(client, registered):
    response = login(client)
    assert response.status_code == 200, response.json
    return response.json


# ---- /register --------------------------------------------------------------------


def test_register_returns_the_new_user(client):
    response = client.post("/register", json=NEW_USER)

    assert response.status_code == 201
    body = response.json
    assert set(body) == {"message", "user"}
    assert body["message"] == "User registered successfully"
    assert set(body["user"]) == {"id", "username", "email", "is_admin"}
    assert isinstance(body["user"]["id"], int)
    assert body["user"]["username"] == "john_doe"
    assert body["user"]["email"] == "john@example.com"
    assert body["user"]["is_admin"] is False
    assert "password" not in response.get_data(as_text=True)
    assert response.headers["Location"]


def test_registered_user_can_log_in_and_read_their_profile(client, registered):
    response = login(client)
    assert response.status_code == 200

    me = client.get("/me", headers=bearer(response.json["access_token"]))
    assert me.status_code == 200
    assert me.json["id"] == registered["id"]
    assert me.json["username"] == "john_doe"


def test_register_location_points_at_the_profile(client):
    response = client.post("/register", json=NEW_USER)
    tokens = login(client).json

    profile = client.get(response.headers["Location"], headers=bearer(tokens["access_token"]))
    assert profile.status_code == 200
    assert profile.json["id"] == response.json["user"]["id"]


@pytest.mark.parametrize(
    "username",
    ["ab", "a" * 33, "john doe", "john@doe", "jöhn", "john!", "", "   ", "<script>", "john_doe\n",
     "\njohn_doe", "john\tdoe"],
)
def test_register_refuses_bad_usernames(client, cinema, username):
    before = user_count(client, cinema.admin)

    response = client.post("/register", json={**NEW_USER, "username": username})

    body = assert_error(response, 400)
    assert "username" in body["errors"]
    assert user_count(client, cinema.admin) == before


@pytest.mark.parametrize("username", ["abc", "a" * 32, "John.Doe-99_x", "___"])
def test_register_accepts_usernames_of_the_allowed_alphabet(client, username):
    response = client.post(
        "/register", json={**NEW_USER, "username": username, "email": "ok@example.com"}
    )

    assert response.status_code == 201, response.json
    assert response.json["user"]["username"] == username


@pytest.mark.parametrize(
    "email",
    ["", "john", "john@", "@example.com", "john@example", "john doe@example.com", "a@b@c.com",
     "x" * 250 + "@example.com", "john@example.com\n", "john@example.com "],
)
def test_register_refuses_bad_emails(client, email):
    response = client.post("/register", json={**NEW_USER, "email": email})

    body = assert_error(response, 400)
    assert "email" in body["errors"]
    assert login(client).status_code == 401


@pytest.mark.parametrize("password", ["", "short", "1234567", "p" * 129])
def test_register_refuses_bad_passwords(client, cinema, password):
    before = user_count(client, cinema.admin)

    response = client.post("/register", json={**NEW_USER, "password": password})

    body = assert_error(response, 400)
    assert "password" in body["errors"]
    assert user_count(client, cinema.admin) == before


def test_register_accepts_a_password_of_exactly_eight_characters(client):
    response = client.post("/register", json={**NEW_USER, "password": "12345678"})

    assert response.status_code == 201
    assert login(client, password="12345678").status_code == 200


@pytest.mark.parametrize("missing", ["username", "email", "password"])
def test_register_needs_every_field(client, missing):
    body = {key: value for key, value in NEW_USER.items() if key != missing}

    error = assert_error(client.post("/register", json=body), 400)
    assert missing in error["errors"]


def test_register_refuses_unknown_fields(client):
    response = client.post("/register", json={**NEW_USER, "is_admin": True})

    error = assert_error(response, 400)
    assert "is_admin" in error["errors"]
    assert login(client).status_code == 401


@pytest.mark.parametrize(
    "field, value",
    [
        ("username", 123),
        ("username", ["john_doe"]),
        ("email", {"address": "john@example.com"}),
        ("password", 12345678),
        ("password", None),
        ("username", True),
    ],
)
def test_register_refuses_wrong_types(client, field, value):
    response = client.post("/register", json={**NEW_USER, field: value})

    error = assert_error(response, 400)
    assert field in error["errors"]


def test_register_refuses_a_huge_username_without_crashing(client):
    response = client.post("/register", json={**NEW_USER, "username": "a" * 10_000})

    assert "username" in assert_error(response, 400)["errors"]


def test_register_refuses_malformed_json(client):
    response = client.post(
        "/register", data='{"username": "john_doe",', content_type="application/json"
    )

    assert_error(response, 400)
    assert login(client).status_code == 401


def test_register_refuses_an_empty_body(client):
    assert_error(client.post("/register"), 400)
    assert_error(client.post("/register", data="", content_type="application/json"), 400)
    assert_error(client.post("/register", json={}), 400)


def test_register_refuses_a_non_json_content_type(client):
    response = client.post(
        "/register",
        data="username=john_doe&email=john@example.com&password=password123",
        content_type="application/x-www-form-urlencoded",
    )

    assert_error(response, 415)
    assert login(client).status_code == 401


def test_register_refuses_a_taken_username_in_any_case(client, registered, cinema):
    before = user_count(client, cinema.admin)

    response = client.post(
        "/register", json={**NEW_USER, "username": "JOHN_DOE", "email": "other@example.com"}
    )

    assert_error(response, 409, "username")
    assert user_count(client, cinema.admin) == before
    assert login(client, "other@example.com").status_code == 401


def test_register_refuses_a_taken_email_in_any_case(client, registered, cinema):
    before = user_count(client, cinema.admin)

    response = client.post(
        "/register", json={**NEW_USER, "username": "someone_else", "email": "John@EXAMPLE.com"}
    )

    assert_error(response, 409, "email")
    assert user_count(client, cinema.admin) == before
    assert login(client, "someone_else").status_code == 401


# ---- /login -----------------------------------------------------------------------


def test_login_by_username(client, registered):
    response = login(client)

    assert response.status_code == 200
    body = response.json
    assert set(body) == {"access_token", "refresh_token", "user"}
    assert body["user"] == {"id": registered["id"], "username": "john_doe", "is_admin": False, "role": "user"}
    assert body["access_token"] != body["refresh_token"]


def test_login_by_email_in_any_case(client, registered):
    for name in ("john@example.com", "JOHN@Example.com"):
        response = login(client, name)
        assert response.status_code == 200, name
        assert response.json["user"]["id"] == registered["id"]


def test_login_username_is_case_insensitive(client, registered):
    response = login(client, "John_Doe")

    assert response.status_code == 200
    assert response.json["user"]["username"] == "john_doe"


def test_login_tokens_carry_the_user_id_as_subject(app, client, registered):
    tokens = login(client).json

    with app.app_context():
        access = decode_token(tokens["access_token"])
        refresh = decode_token(tokens["refresh_token"])
    assert access["sub"] == str(registered["id"])
    assert access["type"] == "access"
    assert refresh["type"] == "refresh"
    assert access["is_admin"] is False


def test_login_access_token_lasts_an_hour(app, client, registered):
    tokens = login(client).json

    with app.app_context():
        access = decode_token(tokens["access_token"])
        refresh = decode_token(tokens["refresh_token"])
    assert access["exp"] - access["iat"] == 3600
    assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600


def test_login_failures_do_not_tell_which_part_was_wrong(client, registered):
    unknown = login(client, "nobody", "password123")
    wrong_password = login(client, "john_doe", "wrong-password")
    wrong_password_by_email = login(client, "john@example.com", "wrong-password")

    first = assert_error(unknown, 401)
    second = assert_error(wrong_password, 401)
    third = assert_error(wrong_password_by_email, 401)
    assert first["message"] == second["message"] == third["message"]
    assert "access_token" not in second


@pytest.mark.parametrize("username", ["nobody", "john_doe", "john@example.com"])
def test_login_checks_one_password_hash_whether_or_not_the_user_exists(
    app, client, registered, monkeypatch, username
):
    """Else an unknown user's answer comes back sooner, telling that the account does not exist."""
    checked = []

    def check(password_hash, password):
        checked.append(password_hash)
        return check_password_hash(password_hash, password)

    monkeypatch.setattr(auth, "check_password_hash", check)

    assert_error(login(client, username, "wrong-password"), 401)
    assert len(checked) == 1
    assert checked[0].split("$")[0] == app.config["PASSWORD_HASH_METHOD"]


@pytest.mark.parametrize(
    "body",
    [{}, {"username": "john_doe"}, {"password": "password123"}, {"username": 1, "password": "x"}],
)
def test_login_validates_its_body(client, registered, body):
    assert_error(client.post("/login", json=body), 400)


def test_login_refuses_a_non_json_body(client, registered):
    response = client.post(
        "/login", data="username=john_doe&password=password123", content_type="text/plain"
    )

    assert_error(response, 415)


def test_login_rate_limit(tmp_path):
    app = create_app(test_config(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute"))
    client = app.test_client()
    credentials = {"username": ADMIN["username"], "password": ADMIN["password"]}

    for _ in range(3):
        assert client.post("/login", json=credentials).status_code == 200

    response = client.post("/login", json=credentials)
    body = assert_error(response, 429)
    assert "access_token" not in body
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None
    assert int(retry_after) > 0


def test_login_rate_limit_counts_failed_attempts(tmp_path):
    app = create_app(test_config(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute"))
    client = app.test_client()

    for _ in range(3):
        assert_error(client.post("/login", json={"username": "admin", "password": "guess-1234"}), 401)

    # Even the right password is refused once the limit is reached.
    response = client.post("/login", json={"username": "admin", "password": ADMIN["password"]})
    assert_error(response, 429)


# ---- /refresh ---------------------------------------------------------------------


def test_refresh_gives_a_new_working_access_token(app, client, registered, tokens):
    response = client.post("/refresh", headers=bearer(tokens["refresh_token"]))

    assert response.status_code == 200
    new_token = response.json["access_token"]
    with app.app_context():
        assert decode_token(new_token)["type"] == "access"
        assert decode_token(new_token)["sub"] == str(registered["id"])
    me = client.get("/me", headers=bearer(new_token))
    assert me.status_code == 200
    assert me.json["username"] == "john_doe"


def test_refresh_refuses_an_access_token(client, tokens):
    body = assert_error(client.post("/refresh", headers=bearer(tokens["access_token"])), 401)
    assert "access_token" not in body


def test_refresh_needs_a_token(client):
    assert_error(client.post("/refresh"), 401)


# ---- /logout ----------------------------------------------------------------------


def test_logout_revokes_the_access_token(client, tokens):
    headers = bearer(tokens["access_token"])
    assert client.get("/me", headers=headers).status_code == 200

    response = client.post("/logout", headers=headers)
    assert response.status_code == 200
    assert isinstance(response.json["message"], str)

    assert_error(client.get("/me", headers=headers), 401)
    assert_error(client.post("/logout", headers=headers), 401)


def test_logout_ends_only_that_session(client, registered):
    first = login(client).json
    second = login(client).json

    assert client.post("/logout", headers=bearer(first["access_token"])).status_code == 200

    assert_error(client.get("/me", headers=bearer(first["access_token"])), 401)
    # The refresh token of the same login is revoked with it.
    assert_error(client.post("/refresh", headers=bearer(first["refresh_token"])), 401)
    assert client.get("/me", headers=bearer(second["access_token"])).status_code == 200
    assert client.post("/refresh", headers=bearer(second["refresh_token"])).status_code == 200


def test_logout_with_a_refresh_token_ends_its_session(client, tokens):
    refresh_headers = bearer(tokens["refresh_token"])

    assert client.post("/logout", headers=refresh_headers).status_code == 200

    assert_error(client.post("/refresh", headers=refresh_headers), 401)
    # The access token of the same login is revoked with it.
    assert_error(client.get("/me", headers=bearer(tokens["access_token"])), 401)


def test_logout_needs_a_token(client):
    assert_error(client.post("/logout"), 401)


def test_revocation_survives_a_restart(tmp_path, client, tokens):
    headers = bearer(tokens["access_token"])
    refresh_headers = bearer(tokens["refresh_token"])
    assert client.post("/logout", headers=headers).status_code == 200

    restarted = create_app(test_config(tmp_path)).test_client()

    assert_error(restarted.get("/me", headers=headers), 401)
    assert_error(restarted.post("/refresh", headers=refresh_headers), 401)
    # Tokens that were not revoked still work after the restart.
    fresh = login(restarted).json
    assert restarted.get("/me", headers=bearer(fresh["access_token"])).status_code == 200


# ---- /me --------------------------------------------------------------------------


def test_me_returns_the_callers_profile(client, registered, tokens):
    response = client.get("/me", headers=bearer(tokens["access_token"]))

    assert response.status_code == 200
    body = response.json
    assert body["id"] == registered["id"]
    assert body["username"] == "john_doe"
    assert body["email"] == "john@example.com"
    assert body["is_admin"] is False
    assert "password" not in body and "password_hash" not in body


def test_me_for_the_admin(client, cinema):
    response = client.get("/me", headers=cinema.admin)

    assert response.status_code == 200
    assert response.json["username"] == ADMIN["username"]
    assert response.json["is_admin"] is True


# ---- JWT failures: always 401 in the error shape, never 422 -----------------------


def test_missing_authorization_header(client):
    response = client.get("/me")

    assert_error(response, 401)
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Token abc.def.ghi",
        "Basic am9objpwYXNzd29yZA==",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer a.b",
    ],
)
def test_malformed_authorization_header(client, header):
    assert_error(client.get("/me", headers={"Authorization": header}), 401)


def test_expired_token(app, client, registered):
    with app.app_context():
        token = create_access_token(
            identity=str(registered["id"]), expires_delta=timedelta(seconds=-1)
        )

    body = assert_error(client.get("/me", headers=bearer(token)), 401)
    assert "expired" in body["message"].lower()


def test_expired_refresh_token(app, client, registered):
    with app.app_context():
        token = create_refresh_token(
            identity=str(registered["id"]), expires_delta=timedelta(seconds=-1)
        )

    assert_error(client.post("/refresh", headers=bearer(token)), 401)
    assert_error(client.post("/logout", headers=bearer(token)), 401)


def test_tampered_payload(client, registered, cinema):
    tokens = login(client).json
    header, _, signature = tokens["access_token"].split(".")
    admin_id = client.get("/me", headers=cinema.admin).json["id"]
    claims = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims.update({"sub": str(admin_id), "is_admin": True})
    forged_payload = base64url(json.dumps(claims).encode())
    tampered = f"{header}.{forged_payload}.{signature}"

    assert_error(client.get("/me", headers=bearer(tampered)), 401)
    assert_error(client.get("/users", headers=bearer(tampered)), 401)


def test_token_signed_with_another_key(app, client, registered):
    with app.app_context():
        genuine = decode_token(login(client).json["access_token"])
    forged = pyjwt.encode(genuine, "another-secret-key-that-is-also-32-bytes-long", algorithm="HS256")

    assert_error(client.get("/me", headers=bearer(forged)), 401)


def test_token_with_alg_none(app, client, registered):
    with app.app_context():
        genuine = decode_token(login(client).json["access_token"])
    unsigned = pyjwt.encode(genuine, None, algorithm="none")

    assert_error(client.get("/me", headers=bearer(unsigned)), 401)


def test_genuine_claims_with_the_right_key_are_accepted(app, client, registered):
    """The forged-token tests above fail for the signature, not for their claims."""
    with app.app_context():
        genuine = decode_token(login(client).json["access_token"])
    resigned = pyjwt.encode(genuine, SECRET, algorithm="HS256")

    assert client.get("/me", headers=bearer(resigned)).status_code == 200


def test_refresh_token_used_as_an_access_token(client, tokens):
    assert_error(client.get("/me", headers=bearer(tokens["refresh_token"])), 401)
    assert_error(client.get("/movies", headers=bearer(tokens["refresh_token"])), 401)


def test_token_of_a_user_that_does_not_exist(app, client):
    with app.app_context():
        access = create_access_token(identity="999999")
        refresh = create_refresh_token(identity="999999")

    assert_error(client.get("/me", headers=bearer(access)), 401)
    assert_error(client.post("/refresh", headers=bearer(refresh)), 401)


@pytest.mark.parametrize("subject", ["abc", "", "1.5"])
def test_token_with_a_non_numeric_subject(app, client, subject):
    with app.app_context():
        token = create_access_token(identity=subject)

    assert_error(client.get("/me", headers=bearer(token)), 401)


# ---- the one-pass token check (auth.verified_claims) ---------------------------------


def genuine_claims(app, client):
    with app.app_context():
        return decode_token(login(client).json["access_token"])


def signed(header: dict, claims, secret=SECRET, algorithm=hashlib.sha256) -> str:
    head = base64url(json.dumps(header).encode())
    body = base64url(claims if isinstance(claims, bytes) else json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), algorithm).digest()
    return f"{head}.{body}.{base64url(signature)}"


HS256 = {"alg": "HS256", "typ": "JWT"}


def test_a_token_made_by_hand_like_ours_is_accepted(app, client, registered):
    """The helpers below make tokens exactly as the API does: the refusals are the changes."""
    assert client.get("/me", headers=bearer(signed(HS256, genuine_claims(app, client)))).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        lambda claims: {**claims, "exp": None},
        lambda claims: {key: value for key, value in claims.items() if key != "exp"},
        lambda claims: {**claims, "exp": str(claims["exp"])},
        lambda claims: {**claims, "exp": True},
        lambda claims: {**claims, "nbf": claims["exp"]},
        lambda claims: {**claims, "type": "id"},
        lambda claims: {key: value for key, value in claims.items() if key != "type"},
        lambda claims: [claims],
        lambda claims: b"\xff\xfe not json",
    ],
    ids=["exp null", "no exp", "exp text", "exp boolean", "not yet valid", "other type", "no type", "a list", "bytes"],
)
def test_signed_tokens_with_bad_claims_are_refused(app, client, registered, change):
    token = signed(HS256, change(genuine_claims(app, client)))
    assert_error(client.get("/me", headers=bearer(token)), 401)


@pytest.mark.parametrize("header", [{"alg": "HS512", "typ": "JWT"}, {"alg": "none"}, {"typ": "JWT"}, ["HS256"]])
def test_headers_naming_another_algorithm_are_refused(app, client, registered, header):
    algorithm = hashlib.sha512 if "HS512" in str(header) else hashlib.sha256
    token = signed(header, genuine_claims(app, client), algorithm=algorithm)
    assert_error(client.get("/me", headers=bearer(token)), 401)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token + "=",
        lambda token: token + ".x",
        lambda token: token.replace(".", "..", 1),
        lambda token: token[:-1] + "é",
        lambda token: token[:-2],
        lambda token: token + "A",
        lambda token: " " + token,
        lambda token: token.replace("-", "+").replace("_", "/") + ("+" if "-" not in token and "_" not in token else ""),
    ],
    ids=["padding", "four segments", "empty segment", "non-ascii", "short signature", "long signature",
         "two spaces", "standard base64"],
)
def test_tokens_that_are_not_our_shape_are_refused(app, client, registered, mangle):
    token = login(client).json["access_token"]
    assert_error(client.get("/me", headers={"Authorization": f"Bearer {mangle(token)}"}), 401)
