"""Sessions: a token names its user (not only an id), and logging out ends whole sessions."""

from flask_jwt_extended import create_access_token
from sqlalchemy import delete

from auth import hash_password
from conftest import ADMIN, assert_error
from models import User, db


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def login(client, username, password):
    response = client.post("/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return response.json


# ---- a token names its user -------------------------------------------------------


def test_a_token_does_not_open_another_account_given_the_same_id(app, client, cinema):
    bob, headers = cinema.user_and_headers("bob")
    with app.app_context():
        db.session.execute(delete(User).where(User.id == bob["id"]))
        db.session.add(
            User(id=bob["id"], username="carol", email="carol@example.com",
                 password_hash=hash_password("password123"))
        )
        db.session.commit()

    assert_error(client.get("/me", headers=headers), 401, "no longer exists")
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
