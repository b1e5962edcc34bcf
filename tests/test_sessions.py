"""Sessions: a token names its user (not only an id), and logging out ends whole sessions."""

from flask_jwt_extended import create_access_token, decode_token
from sqlalchemy import delete, func, select

from auth import hash_password
from conftest import ADMIN, assert_error
from models import RevokedToken, User, db


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def login(client, username, password):
    response = client.post("/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return response.json


# ---- a token names its user -------------------------------------------------------


def test_a_token_of_a_deleted_user_is_refused(app, client, cinema):
    bob, headers = cinema.user_and_headers("bob")
    with app.app_context():
        db.session.execute(delete(User).where(User.id == bob["id"]))
        db.session.commit()

    assert_error(client.get("/me", headers=headers), 401, "no longer exists")


def test_a_token_does_not_open_another_account_given_the_same_id(app, client, cinema):
    bob, headers = cinema.user_and_headers("bob")
    with app.app_context():
        db.session.execute(delete(User).where(User.id == bob["id"]))
        db.session.add(
            User(id=bob["id"], username="carol", email="carol@example.com",
                 password_hash=hash_password("password123"))
        )
        db.session.commit()

    assert_error(client.get("/me", headers=headers), 401)
    carol = cinema.login("carol", "password123")
    assert client.get("/me", headers=carol).json["id"] == bob["id"]


def test_a_reset_database_refuses_the_tokens_of_the_old_one(app, client, cinema):
    cinema.register("early")  # so that seed-demo needs --force
    tokens = login(client, ADMIN["username"], ADMIN["password"])
    assert client.post("/logout", headers=bearer(tokens["access_token"])).status_code == 200

    # Erases every row, the revoked tokens too; on SQLite the demo admin gets id 1 again.
    result = app.test_cli_runner().invoke(args=["seed-demo", "--force"])
    assert result.exit_code == 0, result.output

    assert_error(client.get("/me", headers=bearer(tokens["access_token"])), 401)
    assert_error(client.get("/users", headers=bearer(tokens["access_token"])), 401)
    assert_error(client.post("/refresh", headers=bearer(tokens["refresh_token"])), 401)


def test_a_token_without_the_user_key_is_refused(app, client, cinema):
    """Tokens made before users had keys name only an id."""
    user = cinema.register("bob")
    with app.app_context():
        token = create_access_token(identity=str(user["id"]), additional_claims={"is_admin": False})

    assert_error(client.get("/me", headers=bearer(token)), 401, "claims")


def test_the_token_user_key_and_session_are_checked_in_one_query(client, cinema, count_statements):
    headers = cinema.user("bob")
    client.get("/me", headers=headers)  # warm up

    with count_statements() as statements:
        assert client.get("/me", headers=headers).status_code == 200

    assert len(statements) == 1, statements


# ---- logging out ends sessions ----------------------------------------------------


def test_access_tokens_refreshed_from_a_session_end_with_it(client, cinema):
    user = cinema.register("bob")
    tokens = login(client, user["username"], "password123")
    refreshed = client.post("/refresh", headers=bearer(tokens["refresh_token"])).json["access_token"]
    assert client.get("/me", headers=bearer(refreshed)).status_code == 200

    assert client.post("/logout", headers=bearer(tokens["access_token"])).status_code == 200

    assert_error(client.get("/me", headers=bearer(refreshed)), 401, "revoked")
    assert_error(client.post("/refresh", headers=bearer(tokens["refresh_token"])), 401, "revoked")


def test_logging_out_with_a_refreshed_token_ends_the_refresh_token_too(client, cinema):
    user = cinema.register("bob")
    tokens = login(client, user["username"], "password123")
    refreshed = client.post("/refresh", headers=bearer(tokens["refresh_token"])).json["access_token"]

    assert client.post("/logout", headers=bearer(refreshed)).status_code == 200

    assert_error(client.post("/refresh", headers=bearer(tokens["refresh_token"])), 401)
    assert_error(client.get("/me", headers=bearer(tokens["access_token"])), 401)


def test_a_logged_out_session_is_refused_as_long_as_its_refresh_token_lives(app, client, cinema):
    user = cinema.register("bob")
    tokens = login(client, user["username"], "password123")

    assert client.post("/logout", headers=bearer(tokens["access_token"])).status_code == 200

    with app.app_context():
        refresh_expires = decode_token(tokens["refresh_token"], allow_expired=True)["exp"]
        kept_until = db.session.scalar(select(func.max(RevokedToken.expires_at)))
    assert kept_until.timestamp() >= refresh_expires


def test_logout_everywhere_ends_every_session_of_the_user(client, cinema):
    user = cinema.register("bob")
    phone = login(client, user["username"], "password123")
    laptop = login(client, user["username"], "password123")
    refreshed = client.post("/refresh", headers=bearer(laptop["refresh_token"])).json["access_token"]
    other = cinema.user("carol")

    response = client.post("/logout?everywhere=true", headers=bearer(phone["access_token"]))

    assert response.status_code == 200, response.json
    assert isinstance(response.json["message"], str)
    for token in (phone["access_token"], laptop["access_token"], refreshed):
        assert_error(client.get("/me", headers=bearer(token)), 401, "revoked")
    for token in (phone["refresh_token"], laptop["refresh_token"]):
        assert_error(client.post("/refresh", headers=bearer(token)), 401)
    assert client.get("/me", headers=other).status_code == 200
    # Logging in again starts a new session that works.
    again = login(client, user["username"], "password123")
    assert client.get("/me", headers=bearer(again["access_token"])).status_code == 200


def test_logout_everywhere_with_a_refresh_token(client, cinema):
    user = cinema.register("bob")
    phone = login(client, user["username"], "password123")
    laptop = login(client, user["username"], "password123")

    assert client.post("/logout?everywhere=1", headers=bearer(laptop["refresh_token"])).status_code == 200

    assert_error(client.get("/me", headers=bearer(phone["access_token"])), 401)


def test_logout_everywhere_false_ends_only_this_session(client, cinema):
    user = cinema.register("bob")
    phone = login(client, user["username"], "password123")
    laptop = login(client, user["username"], "password123")

    assert client.post("/logout?everywhere=false", headers=bearer(phone["access_token"])).status_code == 200

    assert_error(client.get("/me", headers=bearer(phone["access_token"])), 401)
    assert client.get("/me", headers=bearer(laptop["access_token"])).status_code == 200


def test_logout_refuses_a_bad_everywhere_value(client, cinema):
    user = cinema.register("bob")
    tokens = login(client, user["username"], "password123")

    body = assert_error(
        client.post("/logout?everywhere=maybe", headers=bearer(tokens["access_token"])), 400
    )

    assert "everywhere" in body["errors"]
    assert client.get("/me", headers=bearer(tokens["access_token"])).status_code == 200


def test_logout_everywhere_is_in_the_openapi_document(client):
    parameters = client.get("/openapi.json").json["paths"]["/logout"]["post"]["parameters"]

    everywhere = next(parameter for parameter in parameters if parameter["name"] == "everywhere")
    assert everywhere["in"] == "query"
    assert everywhere["schema"]["type"] == "boolean"
