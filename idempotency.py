"""Idempotent retries: an ``Idempotency-Key`` makes a write happen once, however often it is sent.

A client that got no answer (a timeout, a dropped connection) sends the request again
with the same key and gets the first answer back, marked ``Idempotent-Replayed: true``,
instead of a second booking (Stripe's ``Idempotency-Key``; pretix's
``X-Idempotency-Key`` is accepted as another name for it). A key is the user's own, and
lasts IDEMPOTENCY_KEY_HOURS.

Exactly once, even when a worker dies between the commit and the answer:

1. Before the view runs, a row for (user, key) without an answer (``status`` NULL) is
   added to the request's own transaction. The rule's commit commits it together with
   the change; a rule that creates something names it in the row first
   (``remember_resource``). When the rule refuses, the rollback takes the row away
   with everything else: no row, no change.
2. Once the answer is known (after the email), it is written into the row in a second,
   small transaction. 409, 429 and 5xx answers are not kept: their retry runs again.
3. A retry that finds the row:
   - for another method, path or body: 422;
   - with an answer: that answer again, the same status, body bytes and Location;
   - without one: the change was committed but its answer never recorded (the first
     request is still sending its email, or its worker died there). The answer is
     rebuilt from what the row names (the view's ``rebuild``); nothing is done again.
4. A retry while the first is still inside its transaction: on PostgreSQL the first
   holds a transaction-level advisory lock on (user, key), so the retry answers 409
   with Retry-After: 1 at once instead of queueing; on SQLite every write request takes
   the write lock first (BEGIN IMMEDIATE), so the retry waits for the first's commit
   and then finds its row. Should two inserts meet anyway, the unique (user_id, key)
   refuses the second: a 409 as well.

Each new key deletes the expired ones, so the table holds about a window's worth.
"""

import hashlib
import json
import logging
from copy import deepcopy
from datetime import timedelta
from functools import wraps

from flask import after_this_request, current_app, g, request
from flask_jwt_extended import current_user
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from apidoc import IDEMPOTENCY_HEADERS
from errors import Invalid, error_response
from models import IdempotencyKey, db, utcnow

log = logging.getLogger("cinema")

REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
REUSED_MESSAGE = "This Idempotency-Key was used for another request (method, path or body); send a new key."
IN_USE_MESSAGE = "A request with this Idempotency-Key is still running; try again in a moment."


def idempotent(rebuild):
    """Make a view answer a retry with the same Idempotency-Key from its first answer.

    ``rebuild(row)`` gives the view's answer again for a change that was committed
    but whose answer was never recorded. Goes right above the view, under the
    route's other decorators (they parse the body and check the token first).
    """

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            key = request_key()
            if key is None:
                return view(*args, **kwargs)
            fingerprint = request_fingerprint()
            if first_still_running(current_user.id, key):
                return still_running()
            now = utcnow()
            window = timedelta(hours=current_app.config["IDEMPOTENCY_KEY_HOURS"])
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - window))
            row = db.session.scalar(
                select(IdempotencyKey).where(IdempotencyKey.user_id == current_user.id, IdempotencyKey.key == key)
            )
            if row is not None:
                return answer_again(row, fingerprint, rebuild)
            row = IdempotencyKey(user_id=current_user.id, key=key, fingerprint=fingerprint, created_at=now)
            db.session.add(row)
            try:
                db.session.flush()
            except IntegrityError:
                db.session.rollback()
                return still_running()
            g.idempotency_key = row
            after_this_request(record_answer)
            return view(*args, **kwargs)

        wrapper._apidoc = deepcopy(getattr(view, "_apidoc", {}))
        wrapper._apidoc["idempotent"] = True  # see apidoc.add_idempotency_doc
        return wrapper

    return decorate


def request_key() -> str | None:
    """The request's key, or None; Invalid when it is not 1-255 printable ASCII characters."""
    given = {name: request.headers.get(name) for name in IDEMPOTENCY_HEADERS}
    keys = {value for value in given.values() if value is not None}
    if not keys:
        return None
    if len(keys) > 1:
        raise Invalid(f"{' and '.join(IDEMPOTENCY_HEADERS)} differ; send one of them.")
    (key,) = keys
    if not (1 <= len(key) <= MAX_KEY_LENGTH and all(" " <= character <= "~" for character in key)):
        raise Invalid(f"An Idempotency-Key is 1-{MAX_KEY_LENGTH} printable ASCII characters.")
    return key


def request_fingerprint() -> str:
    """SHA-256 of the method, the path and the body (as canonical JSON when it is JSON)."""
    body = request.get_json(silent=True)
    if body is None:
        content = request.get_data()
    else:
        content = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(content)
    return digest.hexdigest()


def first_still_running(user_id: int, key: str) -> bool:
    """Whether another transaction holds (user, key) now; else this one holds it (PostgreSQL)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return False  # SQLite: the write lock already keeps the first one's transaction to itself
    key_hash = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)
    locked = db.session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:user_id, :key_hash)"), {"user_id": user_id, "key_hash": key_hash}
    )
    return not locked


def still_running():
    return error_response(409, IN_USE_MESSAGE, {"Retry-After": "1"})


def answer_again(row: IdempotencyKey, fingerprint: str, rebuild):
    """The first answer to this key, or 422 when the key was used for another request."""
    if row.fingerprint != fingerprint:
        return error_response(422, REUSED_MESSAGE)
    after_this_request(mark_replayed)
    if row.status is None:
        return rebuild(row)
    response = current_app.response_class(row.body, status=row.status, mimetype="application/json")
    if row.location:
        response.headers["Location"] = row.location
    return response


def mark_replayed(response):
    response.headers[REPLAYED_HEADER] = "true"
    return response


def remember_resource(resource_id: int):
    """Name what the change created in its key's row, before the change's commit (no key: nothing)."""
    row = g.get("idempotency_key")
    if row is not None:
        row.resource_id = resource_id


def kept(status: int) -> bool:
    """Answers a retry gets again; after a conflict, a rate limit or a failure it runs again."""
    return 200 <= status < 300 or (400 <= status < 500 and status not in (409, 429))


def record_answer(response):
    """Write the answer into the key's row; a refused request (rolled back) gets a row of its own."""
    row = g.idempotency_key
    if not kept(response.status_code):
        db.session.rollback()
        return response
    answer = {
        "status": response.status_code,
        "body": response.get_data(),
        "location": response.headers.get("Location"),
    }
    try:
        recorded = db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == row.user_id, IdempotencyKey.key == row.key, IdempotencyKey.status.is_(None))
            .values(**answer)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not recorded:
            db.session.add(
                IdempotencyKey(
                    user_id=row.user_id, key=row.key, fingerprint=row.fingerprint, created_at=row.created_at, **answer
                )
            )
        db.session.commit()
    except SQLAlchemyError:
        # The answer goes out all the same: a retry rebuilds it from the committed change
        # (or, after a refusal, runs again or finds the answer a concurrent retry kept).
        db.session.rollback()
        log.warning("Could not record the answer to Idempotency-Key %r of user %s", row.key, row.user_id, exc_info=True)
    return response
