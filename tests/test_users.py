"""Users (admin): listing, promotion, the admin check, and the two ways to make the first admin."""

import re
from urllib.parse import parse_qs, urlparse

import pytest
from flask_jwt_extended import create_access_token, decode_token
from sqlalchemy import select

from app import create_app
from conftest import ADMIN, assert_error, test_config
from models import User, db


def links(response) -> dict:
    """The Link header as {rel: {"page": n, "per_page": n}}."""
    found = {}
    for url, rel in re.findall(r'<([^>]*)>;\s*rel="([^"]+)"', response.headers.get("Link", "")):
        query = parse_qs(urlparse(url).query)
        found[rel] = {name: int(values[0]) for name, values in query.items() if name in ("page", "per_page")}
    return found


def all_users(client, headers) -> list:
    response = client.get("/users?per_page=100", headers=headers)
    assert response.status_code == 200
    return response.json


# ---- GET /users -------------------------------------------------------------------


def test_users_lists_everyone_for_an_admin(client, cinema):
    first = cinema.register("alice")
    second = cinema.register("bob")

    response = client.get("/users", headers=cinema.admin)

    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    usernames = [user["username"] for user in response.json]
    assert usernames == ["admin", "alice", "bob"]
    by_name = {user["username"]: user for user in response.json}
    assert by_name["alice"]["id"] == first["id"]
    assert by_name["bob"]["email"] == second["email"]
    assert by_name["admin"]["is_admin"] is True
    assert by_name["alice"]["is_admin"] is False
    for user in response.json:
        assert {"id", "username", "email", "is_admin"} <= set(user)
        assert "password" not in user and "password_hash" not in user


def test_users_is_paginated(client, cinema):
    for number in range(4):
        cinema.register(f"user_{number}")  # five users with the admin

    response = client.get("/users?page=2&per_page=2", headers=cinema.admin)

    assert response.status_code == 200
    assert [user["username"] for user in response.json] == ["user_1", "user_2"]
    assert response.headers["X-Total-Count"] == "5"
    rels = links(response)
    assert rels["first"] == {"page": 1, "per_page": 2}
    assert rels["prev"] == {"page": 1, "per_page": 2}
    assert rels["next"] == {"page": 3, "per_page": 2}
    assert rels["last"] == {"page": 3, "per_page": 2}

    last = client.get("/users?page=3&per_page=2", headers=cinema.admin)
    assert [user["username"] for user in last.json] == ["user_3"]
    assert "next" not in links(last)


def test_users_page_past_the_end_is_empty(client, cinema):
    cinema.register("alice")

    response = client.get("/users?page=50", headers=cinema.admin)

    assert response.status_code == 200
    assert response.json == []
    assert response.headers["X-Total-Count"] == "2"


@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "page=abc", "per_page=0", "per_page=101", "per_page=x", "page=1.5"]
)
def test_users_refuses_bad_paging(client, cinema, query):
    body = assert_error(client.get(f"/users?{query}", headers=cinema.admin), 400)
    assert set(body["errors"]) <= {"page", "per_page"}


def test_users_is_for_admins_only(client, cinema):
    headers = cinema.user()

    assert_error(client.get("/users", headers=headers), 403)
    assert_error(client.get("/users"), 401)


# ---- POST /users/promote/<id> -----------------------------------------------------


def test_promote_makes_a_user_admin(client, cinema):
    user = cinema.register("alice")

    response = client.post(f"/users/promote/{user['id']}", headers=cinema.admin)

    assert response.status_code == 200
    assert response.json["message"] == "User promoted to admin successfully"
    promoted = response.json["user"]
    assert promoted["id"] == user["id"]
    assert promoted["username"] == "alice"
    assert promoted["email"] == user["email"]
    assert promoted["is_admin"] is True
    # A fresh login says so too, and the new admin can use admin routes.
    login = client.post("/login", json={"username": "alice", "password": "password123"})
    assert login.json["user"]["is_admin"] is True
    assert client.get(
        "/users", headers={"Authorization": f"Bearer {login.json['access_token']}"}
    ).status_code == 200


def test_promote_is_idempotent(client, cinema):
    user = cinema.register("alice")

    first = client.post(f"/users/promote/{user['id']}", headers=cinema.admin)
    second = client.post(f"/users/promote/{user['id']}", headers=cinema.admin)

    assert first.status_code == second.status_code == 200
    assert second.json["user"]["is_admin"] is True
    assert second.json["message"] == "User promoted to admin successfully"
    admins = [u for u in all_users(client, cinema.admin) if u["is_admin"]]
    assert sorted(u["username"] for u in admins) == ["admin", "alice"]


def test_promote_is_refused_to_non_admins(client, cinema):
    user, headers = cinema.user_and_headers("alice")
    other = cinema.register("bob")

    assert_error(client.post(f"/users/promote/{user['id']}", headers=headers), 403)
    assert_error(client.post(f"/users/promote/{other['id']}", headers=headers), 403)
    assert_error(client.post(f"/users/promote/{other['id']}"), 401)

    admins = [u["username"] for u in all_users(client, cinema.admin) if u["is_admin"]]
    assert admins == ["admin"]


def test_promote_unknown_user(client, cinema):
    body = assert_error(client.post("/users/promote/99999", headers=cinema.admin), 404)
    assert "99999" in body["message"]


@pytest.mark.parametrize("user_id", ["-1", "abc", "1.0", "0x1"])
def test_promote_with_an_id_that_is_not_a_positive_integer(client, cinema, user_id):
    assert_error(client.post(f"/users/promote/{user_id}", headers=cinema.admin), 404)


def test_promote_id_zero_is_unknown(client, cinema):
    assert_error(client.post("/users/promote/0", headers=cinema.admin), 404)


# ---- the admin flag is checked in the database, not only in the token -------------


def test_token_issued_before_promotion_works_for_admin_routes(app, client, cinema):
    user, headers = cinema.user_and_headers("alice")
    with app.app_context():
        assert decode_token(headers["Authorization"].split()[1])["is_admin"] is False
    assert_error(client.get("/users", headers=headers), 403)

    assert client.post(f"/users/promote/{user['id']}", headers=cinema.admin).status_code == 200

    response = client.get("/users", headers=headers)
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "2"
    movie = client.post("/movies", json={"title": "Heat", "genre": "Crime"}, headers=headers)
    assert movie.status_code == 201


def test_admin_claim_in_the_token_is_not_trusted(app, client, cinema):
    user = cinema.register("mallory")
    victim = cinema.register("victim")
    genuine = cinema.login("mallory", "password123")["Authorization"].split()[1]
    with app.app_context():
        claims = decode_token(genuine)
        forged = create_access_token(
            identity=str(user["id"]),
            additional_claims={"user_key": claims["user_key"], "sid": claims["sid"], "is_admin": True},
        )
    headers = {"Authorization": f"Bearer {forged}"}

    # The token itself is valid: ordinary routes accept it.
    assert client.get("/me", headers=headers).json["is_admin"] is False

    assert_error(client.get("/users", headers=headers), 403)
    assert_error(client.post(f"/users/promote/{victim['id']}", headers=headers), 403)
    assert_error(client.post("/movies", json={"title": "Heat", "genre": "Crime"}, headers=headers), 403)

    assert [u["username"] for u in all_users(client, cinema.admin) if u["is_admin"]] == ["admin"]
    assert client.get("/movies", headers=cinema.admin).headers["X-Total-Count"] == "0"


# ---- the first admin: ADMIN_* settings --------------------------------------------


def test_configured_admin_exists_and_can_log_in(client):
    response = client.post(
        "/login", json={"username": ADMIN["username"], "password": ADMIN["password"]}
    )

    assert response.status_code == 200
    assert response.json["user"]["username"] == ADMIN["username"]
    assert response.json["user"]["is_admin"] is True
    me = client.get("/me", headers={"Authorization": f"Bearer {response.json['access_token']}"})
    assert me.json["email"] == ADMIN["email"]
    assert me.json["is_admin"] is True


def test_restarting_does_not_duplicate_the_configured_admin(tmp_path, client, cinema):
    admin_id = client.get("/me", headers=cinema.admin).json["id"]

    restarted = create_app(test_config(tmp_path)).test_client()

    users = all_users(restarted, cinema.admin)
    assert [(u["id"], u["username"]) for u in users] == [(admin_id, ADMIN["username"])]


def test_restart_keeps_a_changed_admin_password_untouched(tmp_path, client):
    """The bootstrap only creates the admin; it never overwrites an existing account."""
    create_app(test_config(tmp_path, ADMIN_PASSWORD="a-different-pass"))

    old = client.post("/login", json={"username": ADMIN["username"], "password": ADMIN["password"]})
    new = client.post("/login", json={"username": ADMIN["username"], "password": "a-different-pass"})
    assert old.status_code == 200
    assert_error(new, 401)


def test_no_admin_is_created_without_the_settings(tmp_path):
    app = create_app(
        test_config(tmp_path, ADMIN_USERNAME=None, ADMIN_EMAIL=None, ADMIN_PASSWORD=None)
    )
    client = app.test_client()

    response = client.post(
        "/login", json={"username": ADMIN["username"], "password": ADMIN["password"]}
    )
    assert_error(response, 401)


# ---- the first admin: flask create-admin ------------------------------------------


def login_as(client, username, password):
    return client.post("/login", json={"username": username, "password": password})


def test_cli_creates_an_admin(app, client):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "boss", "--email", "boss@example.com",
              "--password", "S3cret-pass"]
    )

    assert result.exit_code == 0, result.output
    assert "boss" in result.output
    response = login_as(client, "boss", "S3cret-pass")
    assert response.status_code == 200
    assert response.json["user"]["is_admin"] is True
    headers = {"Authorization": f"Bearer {response.json['access_token']}"}
    assert client.get("/users", headers=headers).status_code == 200


def test_cli_promotes_an_existing_user(app, client, cinema):
    user = cinema.register("alice")

    # No --password and no input: an existing user is promoted without a prompt.
    result = app.test_cli_runner().invoke(args=["create-admin", "--username", "ALICE"])

    assert result.exit_code == 0, result.output
    assert f"Promoted alice (id {user['id']}) to admin." in result.output
    users = all_users(client, cinema.admin)
    assert len(users) == 2
    alice = next(u for u in users if u["id"] == user["id"])
    assert alice["is_admin"] is True
    assert alice["email"] == "alice@example.com"
    # Her password is unchanged.
    assert login_as(client, "alice", "password123").status_code == 200


def test_cli_updates_the_password_of_an_existing_user(app, client, cinema):
    cinema.register("alice")
    old_session = cinema.login("alice", "password123")

    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "alice", "--email", "alice@example.com",
              "--password", "new-pass-123"]
    )

    assert result.exit_code == 0, result.output
    assert "Promoted alice" in result.output
    assert "Updated the password of alice" in result.output
    assert "Changed the email" not in result.output  # the same one
    assert_error(login_as(client, "alice", "password123"), 401)
    response = login_as(client, "alice", "new-pass-123")
    assert response.status_code == 200
    assert response.json["user"]["is_admin"] is True
    # Whoever knew the old password keeps no session.
    assert_error(client.get("/me", headers=old_session), 401)
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash).where(User.username_key == "alice"))
    assert stored.split("$")[0] == app.config["PASSWORD_HASH_METHOD"]


def test_cli_refuses_a_short_password_for_an_existing_user(app, client, cinema):
    cinema.register("alice")

    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "alice", "--password", "short"]
    )

    assert result.exit_code != 0
    assert "password" in result.output.lower()
    assert login_as(client, "alice", "password123").json["user"]["is_admin"] is False


def test_cli_changes_the_email_of_an_existing_user(app, client, cinema):
    user = cinema.register("alice")

    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "alice", "--email", "Alice.New@Example.com"]
    )

    assert result.exit_code == 0, result.output
    assert "Changed the email of alice to alice.new@example.com." in result.output
    alice = next(u for u in all_users(client, cinema.admin) if u["id"] == user["id"])
    assert alice["email"] == "alice.new@example.com"
    assert alice["is_admin"] is True
    assert login_as(client, "alice.new@example.com", "password123").status_code == 200


def test_cli_refuses_the_email_of_another_user_for_an_existing_user(app, client, cinema):
    alice = cinema.register("alice")
    cinema.register("bob")

    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "alice", "--email", "BOB@example.com"]
    )

    assert result.exit_code != 0
    assert "already registered" in result.output
    assert "Traceback" not in result.output
    unchanged = next(u for u in all_users(client, cinema.admin) if u["id"] == alice["id"])
    assert unchanged["email"] == "alice@example.com"
    assert unchanged["is_admin"] is False


def test_cli_says_when_the_user_is_already_an_admin(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "--username", ADMIN["username"]])

    assert result.exit_code == 0, result.output
    assert "already an admin" in result.output


def test_cli_needs_an_email_to_create_an_admin(app, client):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "boss", "--password", "S3cret-pass"]
    )

    assert result.exit_code != 0
    assert "--email" in result.output
    assert_error(login_as(client, "boss", "S3cret-pass"), 401)


def test_cli_builds_the_schema_of_a_new_database_first(tmp_path):
    new_database = f"sqlite:///{tmp_path / 'new.db'}"
    app = create_app(test_config(tmp_path, SQLALCHEMY_DATABASE_URI=new_database, CREATE_TABLES=False))

    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "boss", "--email", "boss@example.com",
              "--password", "S3cret-pass"]
    )

    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    response = login_as(app.test_client(), "boss", "S3cret-pass")
    assert response.status_code == 200
    assert response.json["user"]["is_admin"] is True


def test_cli_refuses_an_invalid_email(app, client, cinema):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "boss", "--email", "not-an-email",
              "--password", "S3cret-pass"]
    )

    assert result.exit_code != 0
    assert "email" in result.output.lower()
    assert [u["username"] for u in all_users(client, cinema.admin)] == ["admin"]
    assert_error(login_as(client, "boss", "S3cret-pass"), 401)


def test_cli_refuses_a_short_password(app, client, cinema):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "boss", "--email", "boss@example.com",
              "--password", "short"]
    )

    assert result.exit_code != 0
    assert [u["username"] for u in all_users(client, cinema.admin)] == ["admin"]


def test_cli_refuses_an_email_that_is_taken(app, client, cinema):
    cinema.register("alice", email="alice@example.com")

    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "boss", "--email", "ALICE@example.com",
              "--password", "S3cret-pass"]
    )

    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert [u["username"] for u in all_users(client, cinema.admin)] == ["admin", "alice"]


def test_cli_prompts_for_the_password(app, client):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "boss", "--email", "boss@example.com"],
        input="typed-pass-1\ntyped-pass-1\n",
    )

    assert result.exit_code == 0, result.output
    assert "typed-pass-1" not in result.output  # hidden input
    response = login_as(client, "boss", "typed-pass-1")
    assert response.status_code == 200
    assert response.json["user"]["is_admin"] is True


def test_cli_prompt_needs_matching_confirmation(app, client):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "--username", "boss", "--email", "boss@example.com"],
        input="typed-pass-1\nsomething-else\n",
    )

    assert result.exit_code != 0
    assert_error(login_as(client, "boss", "typed-pass-1"), 401)
