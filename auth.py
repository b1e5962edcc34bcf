"""Accounts and tokens: JWT callbacks, the login_required / admin_required guards,
password hashing, revocation and the admin created at start-up."""

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from datetime import datetime, timezone
from functools import cache, wraps

from flask import current_app, g, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    current_user,
)
from flask_smorest import abort
from sqlalchemy import bindparam, exists, inspect, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

import apidoc
from errors import Conflict, NotFound, error_response
from models import ADMIN_ROLE, STAFF_ROLE, RevokedToken, User, db, new_token_key, utcnow

log = logging.getLogger("cinema")

jwt = JWTManager()


def register_jwt_callbacks():
    def unauthorized(message):
        return error_response(401, message, {"WWW-Authenticate": "Bearer"})

    jwt.unauthorized_loader(lambda reason: unauthorized(f"Missing token: {reason}."))
    jwt.invalid_token_loader(lambda reason: unauthorized(f"Invalid token: {reason}."))
    jwt.expired_token_loader(lambda header, payload: unauthorized("The token has expired."))
    jwt.revoked_token_loader(lambda header, payload: unauthorized("The token was revoked."))
    jwt.needs_fresh_token_loader(lambda header, payload: unauthorized("A fresh token is required."))
    jwt.token_verification_failed_loader(
        lambda header, payload: unauthorized("The token's claims are not valid.")
    )
    jwt.user_lookup_error_loader(
        lambda header, payload: unauthorized("The token's user no longer exists.")
    )


# Claims of every token besides the subject (the user id): the user's token key, so a
# token opens only the account it was made for, never another one given the same id;
# and the session, shared by the access and refresh tokens of one login and the access
# tokens refreshed from it, so logging out ends them all.
USER_KEY_CLAIM = "user_key"
SESSION_CLAIM = "sid"

# Built once: every authenticated request runs it. A token is revoked when its session
# was logged out (the session id is kept in RevokedToken.jti) or when the user with its
# id has another key: they logged out everywhere, or the id now belongs to someone else.
SESSION_REVOKED = exists().where(RevokedToken.jti == bindparam("session"))
TOKEN_USER_AND_REVOKED = select(
    User, or_(SESSION_REVOKED, User.token_key != bindparam("user_key"))
).where(User.id == bindparam("user_id"))


def token_names(jwt_payload):
    """The user id, user key and session a token names, or None when it lacks one."""
    key, session = jwt_payload.get(USER_KEY_CLAIM), jwt_payload.get(SESSION_CLAIM)
    try:
        user_id = int(jwt_payload["sub"])
    except (TypeError, ValueError):
        return None
    if not all(isinstance(claim, str) and claim for claim in (key, session)):
        return None
    return user_id, key, session


@jwt.token_in_blocklist_loader
def is_token_revoked(jwt_header, jwt_payload):
    """Check the token and load its user in one query (the user loader runs next)."""
    named = token_names(jwt_payload)
    if named is None:  # refused by the claims check that runs next
        g.token_user = None
        return False
    user_id, key, session = named
    row = db.session.execute(
        TOKEN_USER_AND_REVOKED, {"user_id": user_id, "user_key": key, "session": session}
    ).first()
    user, revoked = row if row else (None, False)
    g.token_user = None if revoked else user
    return bool(revoked)


@jwt.token_verification_loader
def token_names_its_user(jwt_header, jwt_payload):
    return token_names(jwt_payload) is not None


@jwt.user_lookup_loader
def load_user(jwt_header, jwt_payload):
    # Loaded, together with the key check, by is_token_revoked, which always runs first.
    return g.pop("token_user", None)


# ---- checking a token -------------------------------------------------------------
#
# Every authenticated request checks its token once: the signature (HMAC-SHA256, the
# only algorithm the API issues), the expiry, the token type, and then, in the one
# query of is_token_revoked, the session and the user. flask-jwt-extended still makes
# the tokens and provides ``current_user`` and ``get_jwt()``; its own check decoded each
# token four times (PyJWT scans the segments character by character each time, about
# 0.6 ms a request), so the check is done here, in one pass over the segments.

# header.payload.signature, each unpadded base64url: anything else is not one of ours.
TOKEN_SHAPE = re.compile(r"([A-Za-z0-9_-]{2,})\.([A-Za-z0-9_-]{2,})\.([A-Za-z0-9_-]{43})")
ISSUED_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenRefused(Exception):
    """A token the API does not accept; the message says why (401)."""


def segment(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenRefused("Invalid token: a segment is not base64url.") from None


def verified_claims(token: str, secret: str, leeway: float = 0) -> dict:
    """The claims of a token signed with ``secret`` that has not expired; TokenRefused if not."""
    shape = TOKEN_SHAPE.fullmatch(token)
    if shape is None:
        raise TokenRefused("Invalid token: not a signed JWT (header.payload.signature).")
    header_part, payload_part, signature_part = shape.groups()
    expected = hmac.new(secret.encode(), f"{header_part}.{payload_part}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, segment(signature_part)):
        raise TokenRefused("Invalid token: Signature verification failed.")
    try:
        header, claims = json.loads(segment(header_part)), json.loads(segment(payload_part))
    except (ValueError, UnicodeDecodeError):
        raise TokenRefused("Invalid token: a segment is not JSON.") from None
    if not isinstance(header, dict) or header.get("alg") != ISSUED_HEADER["alg"] or not isinstance(claims, dict):
        raise TokenRefused("Invalid token: not a token this API issued.")
    now = time.time()
    expires, not_before = claims.get("exp"), claims.get("nbf", 0)
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in (expires, not_before)):
        raise TokenRefused("The token's claims are not valid.")
    if expires <= now - leeway:
        raise TokenRefused("The token has expired.")
    if not_before > now + leeway:
        raise TokenRefused("Invalid token: The token is not yet valid (nbf).")
    return claims


def check_token(kind: str | None):
    """Accept the request's bearer token of ``kind`` ("access", "refresh"; None: either).

    Leaves the claims and the user where flask-jwt-extended's ``get_jwt()`` and
    ``current_user`` find them; TokenRefused otherwise.
    """
    header = request.headers.get("Authorization")
    if not header:
        raise TokenRefused("Missing token: Missing Authorization Header.")
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        raise TokenRefused("Missing token: Bad Authorization header. Expected 'Authorization: Bearer <JWT>'.")
    config = current_app.config
    claims = verified_claims(token, config["JWT_SECRET_KEY"], config["JWT_DECODE_LEEWAY"])
    if kind is not None and claims.get("type") != kind:
        raise TokenRefused(f"Invalid token: Only {'refresh' if kind == 'refresh' else 'non-refresh'} tokens are allowed.")
    if claims.get("type") not in ("access", "refresh") or not token_names_its_user(None, claims):
        raise TokenRefused("The token's claims are not valid.")
    if is_token_revoked(None, claims):
        raise TokenRefused("The token was revoked.")
    user = load_user(None, claims)
    if user is None:
        raise TokenRefused("The token's user no longer exists.")
    g._jwt_extended_jwt = claims
    g._jwt_extended_jwt_header = ISSUED_HEADER
    g._jwt_extended_jwt_user = {"loaded_user": user}
    g._jwt_extended_jwt_location = "headers"


def token_required(kind: str | None = "access"):
    """A view decorator: the view runs only with a token of ``kind`` (see check_token)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            try:
                check_token(kind)
            except TokenRefused as refused:
                return error_response(401, str(refused), {"WWW-Authenticate": "Bearer"})
            return current_app.ensure_sync(view)(*args, **kwargs)

        return wrapper

    return decorate


# Each of these enforces a token and documents it (bearerAuth, 401, 403) in the spec.


def login_required(view):
    """A valid access token."""
    return apidoc.document_security(token_required("access")(view), 401)


def refresh_token_required(view):
    """A valid refresh token."""
    return apidoc.document_security(token_required("refresh")(view), 401)


def any_token_required(view):
    """A valid access or refresh token."""
    return apidoc.document_security(token_required(None)(view), 401)


def role_required(allowed, message: str):
    """An access token whose user ``allowed(user)`` says may go on (re-checked in the database, not the token)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not allowed(current_user):
                abort(403, message=message)
            return view(*args, **kwargs)

        return apidoc.document_security(token_required("access")(wrapper), 401, 403)

    return decorate


admin_required = role_required(lambda user: user.is_admin, "Admins only.")
admin_required.__doc__ = "An access token of an admin."
# Door staff check tickets in; admins may do everything staff may.
staff_required = role_required(lambda user: user.is_staff or user.is_admin, "Door staff and admins only.")


# ---- accounts ---------------------------------------------------------------------


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def register_user(data, is_admin: bool = False) -> User:
    """A new account; Conflict when the username or email is taken (case-insensitive)."""
    username_key, email = data["username"].lower(), data["email"].lower()
    password_hash = hash_password(data["password"])  # before the transaction starts
    taken = db.session.execute(
        select(User.username_key, User.email).where(
            or_(User.username_key == username_key, User.email == email)
        )
    ).first()
    if taken:
        what = "username" if taken.username_key == username_key else "email"
        raise Conflict(f"That {what} is already registered.")
    user = User(
        username=data["username"], email=email, password_hash=password_hash, is_admin=is_admin
    )
    db.session.add(user)
    db.session.commit()
    return user


def make_admin(user: User, email: str | None = None, password: str | None = None):
    """Promote the user, with this email and password when given; Conflict when the email is taken."""
    if email is not None:
        email = email.lower()
        taken = db.session.scalar(select(User.id).where(User.email == email, User.id != user.id))
        if taken:
            raise Conflict("That email is already registered.")
        user.email = email
    if password is not None:
        user.password_hash = hash_password(password)
        user.token_key = new_token_key()  # whoever knew the old password keeps no session
    user.is_admin = True
    try:
        db.session.commit()
    except IntegrityError:  # the email was taken in the meantime
        db.session.rollback()
        raise Conflict("That email is already registered.") from None


def authenticate(username: str, password: str) -> User | None:
    """The user with this username (or email) and password, else None."""
    key = username.strip().lower()
    user = db.session.scalar(select(User).where(or_(User.username_key == key, User.email == key)))
    # An unknown user costs one hash check too, so the answer's time does not tell
    # whether the account exists.
    password_hash = user.password_hash if user else dummy_password_hash(
        current_app.config["PASSWORD_HASH_METHOD"]
    )
    if not check_password_hash(password_hash, password) or user is None:
        return None
    return user


@cache
def dummy_password_hash(method: str) -> str:
    """A hash that no password matches, made once per process and method."""
    return generate_password_hash(secrets.token_urlsafe(32), method=method)


def token_claims(user: User, session: str) -> dict:
    return {"is_admin": user.is_admin, USER_KEY_CLAIM: user.token_key, SESSION_CLAIM: session}


def login_tokens(user: User) -> dict:
    """The access and refresh tokens of a new session."""
    claims = token_claims(user, secrets.token_hex(16))
    return {
        "access_token": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh_token": create_refresh_token(identity=str(user.id), additional_claims=claims),
    }


def refreshed_access_token(user: User, refresh_claims: dict) -> str:
    """A new access token in the session of this refresh token (its decoded claims)."""
    claims = token_claims(user, refresh_claims[SESSION_CLAIM])
    return create_access_token(identity=str(user.id), additional_claims=claims)


def log_out(user: User, token: dict, everywhere: bool = False):
    """Refuse every token of this token's session from now on, or of all the user's sessions."""
    if everywhere:
        user.token_key = new_token_key()  # no token made so far names the new key
    else:
        # The session's refresh token was made at login, so it expires one refresh
        # lifetime from now at the latest: keep the row until then.
        expires = max(
            datetime.fromtimestamp(token["exp"], timezone.utc),
            utcnow() + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
        )
        db.session.add(RevokedToken(jti=token[SESSION_CLAIM], expires_at=expires))
    # Forget sessions that have expired anyway, so the table stays small.
    db.session.execute(db.delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
    db.session.commit()


def promote(user_id: int) -> User:
    """Make a user an admin (idempotent)."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found.")
    user.is_admin = True
    db.session.commit()
    return user


def set_role(user_id: int, role: str, by: User) -> User:
    """Make a user an admin, door staff or a plain user (idempotent).

    Nobody changes their own role: the last admin cannot lock everyone out.
    The guards read the role from the database, so it holds from the next request.
    """
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found.")
    if user.id == by.id and role != user.role:
        raise Conflict("You cannot change your own role; ask another admin.")
    user.is_admin, user.is_staff = role == ADMIN_ROLE, role == STAFF_ROLE
    db.session.commit()
    return user


def bootstrap_admin():
    """Create the ADMIN_* user at start-up when no user of that name exists."""
    config = current_app.config
    if not (config["ADMIN_USERNAME"] and config["ADMIN_EMAIL"] and config["ADMIN_PASSWORD"]):
        return
    if not inspect(db.engine).has_table(User.__tablename__):
        log.warning("The database has no tables yet: run `flask --app app db upgrade`.")
        return
    key = config["ADMIN_USERNAME"].lower()
    if db.session.scalar(select(User.id).where(User.username_key == key)):
        return
    db.session.add(
        User(
            username=config["ADMIN_USERNAME"],
            email=config["ADMIN_EMAIL"],
            password_hash=hash_password(config["ADMIN_PASSWORD"]),
            is_admin=True,
        )
    )
    try:
        db.session.commit()
        log.info("Created admin user %s", config["ADMIN_USERNAME"])
    except IntegrityError:  # another worker created it first
        db.session.rollback()
