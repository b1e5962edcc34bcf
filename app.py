"""Movie cinema booking API: the application factory and every route.

Each view reads its validated arguments, calls one rule (``auth``, ``booking``,
``scheduling``, ``reports``) and shapes the answer; the rules raise the small
exceptions of ``errors``, which one handler turns into the contract's JSON.
"""

import logging
import os
from urllib.parse import urlencode

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, Response, current_app, jsonify, request, send_from_directory, url_for
from flask_cors import CORS
from flask_jwt_extended import current_user, get_jwt
from flask_limiter import HeaderNames, Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import abort
from sqlalchemy import func, select
from werkzeug.middleware.proxy_fix import ProxyFix

import apidoc
import auth
import booking
import idempotency
import posters
import pricing
import reports
import scheduling
import schemas as s
import seatmap_svg
import settings
import tickets
from auth import admin_required, any_token_required, jwt, login_required, refresh_token_required, staff_required
from cli import register_commands
from database import DATABASE_PROBLEMS, MIGRATIONS, configure_sqlite, database_health, migrate_database
from emails import send_booking_confirmation, send_cancellation, send_change
from errors import ApiRequest, JsonProvider, error_response, register_error_handlers, register_request_guards
from models import DEFAULT_TICKET_TYPE, User, db, utcnow

log = logging.getLogger("cinema")  # emails.py logs under "cinema.emails"

api = apidoc.JsonErrorApi(
    spec_kwargs={"marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=apidoc.schema_name)}
)
api.register_field(s.Dollars, "number", None)


def default_rate_limit():
    return current_app.config["DEFAULT_RATE_LIMIT"]


# The limiter would put Retry-After on every answer it counts; it writes its wait
# under this name instead, and security_headers passes it on for a 429 only.
LIMITER_RETRY_AFTER = "X-RateLimit-Retry-After"
limiter = Limiter(
    key_func=get_remote_address,
    default_limits=[default_rate_limit],
    header_name_mapping={HeaderNames.RETRY_AFTER: LIMITER_RETRY_AFTER},
)
cors = CORS()
migrate = Migrate(directory=MIGRATIONS, compare_type=True, render_as_batch=True)

auth_blp = apidoc.ApiBlueprint("auth", __name__, description="Accounts and tokens")
users_blp = apidoc.ApiBlueprint("users", __name__, description="Users (admin)")
movies_blp = apidoc.ApiBlueprint("movies", __name__, description="The movie catalogue")
showtimes_blp = apidoc.ApiBlueprint("showtimes", __name__, description="Showtimes and seat maps")
seats_blp = apidoc.ApiBlueprint("seats", __name__, description="Seat layouts (admin)")
halls_blp = apidoc.ApiBlueprint("halls", __name__, description="Halls and their seat plans")
pricing_blp = apidoc.ApiBlueprint("pricing", __name__, description="Ticket types and prices")
holds_blp = apidoc.ApiBlueprint("holds", __name__, description="Seat holds: hold, then confirm")
reservations_blp = apidoc.ApiBlueprint("reservations", __name__, description="Bookings")
tickets_blp = apidoc.ApiBlueprint("tickets", __name__, description="Tickets, changes to bookings, and the check-in")
admin_blp = apidoc.ApiBlueprint("admin", __name__, description="Reports (admin)")
health_blp = apidoc.ApiBlueprint("health", __name__, description="Liveness")
BLUEPRINTS = (
    auth_blp,
    users_blp,
    movies_blp,
    showtimes_blp,
    seats_blp,
    halls_blp,
    pricing_blp,
    holds_blp,
    reservations_blp,
    tickets_blp,
    admin_blp,
    health_blp,
)


def create_app(config=None):
    """Build the app: defaults, then the environment (and .env), then ``config``."""
    app = Flask(__name__, instance_relative_config=True)
    app.request_class = ApiRequest
    app.json = JsonProvider(app)
    settings.load(app, config)
    app.json.sort_keys = False  # keep "status", "error", "message" in that order
    if not logging.getLogger().handlers:  # a server (gunicorn) may have set logging up
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(app.config["LOG_LEVEL"])

    if app.config["TRUSTED_PROXIES"]:
        # The client's address from X-Forwarded-For, counted from the right so a client
        # cannot choose it, and the scheme the nearest proxy was reached by. Not the
        # forwarded host: PUBLIC_URL names the API wherever a URL is kept.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"], x_proto=1)
    db.init_app(app)
    migrate.init_app(app, db)
    jwt.init_app(app)
    # Registered before the limiter: after-request hooks run last registered first,
    # so this one sees the limiter's headers.
    app.after_request(security_headers)
    limiter.init_app(app)
    cors.init_app(app)
    api.init_app(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(apidoc.docs_blueprint())
    app.extensions["report_bodies"] = {}  # (report tag, filters) -> body, see admin_report
    app.extensions["seat_map_bodies"] = {}  # showtime tag -> (body, holders), see seat_map
    register_error_handlers(app)
    auth.register_jwt_callbacks()
    register_request_guards(app)
    register_commands(app)

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)
        if app.config["AUTO_MIGRATE"]:
            migrate_database()
        elif app.config["CREATE_TABLES"]:
            db.create_all()
            pricing.add_default_ticket_types()
        auth.bootstrap_admin()
    return app


# ---- auth -------------------------------------------------------------------------


def login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def register_limit():
    return current_app.config["REGISTER_RATE_LIMIT"]


@auth_blp.route("/register", methods=["POST"])
@limiter.limit(register_limit)
@auth_blp.arguments(s.RegisterSchema, example=apidoc.EXAMPLES["register"])
@auth_blp.response(
    201, s.RegisterResponseSchema, headers=apidoc.CREATED_HEADERS, example=apidoc.EXAMPLES["registered"]
)
@auth_blp.alt_response(
    409, description="Username or email already taken", example=apidoc.ERROR_EXAMPLES["name_taken"]
)
@auth_blp.alt_response(
    429,
    description="Past REGISTER_RATE_LIMIT",
    headers=apidoc.RETRY_HEADERS,
    example=apidoc.ERROR_EXAMPLES["register_limit"],
)
def register(data):
    """Create an account."""
    user = auth.register_user(data)
    return created({"message": "User registered successfully", "user": user}, "users.get_me")


@auth_blp.route("/login", methods=["POST"])
@limiter.limit(login_limit)
@auth_blp.arguments(s.LoginSchema, example=apidoc.EXAMPLES["login"])
@auth_blp.response(200, s.TokenResponseSchema, example=apidoc.EXAMPLES["logged_in"])
@auth_blp.alt_response(
    401, description="Unknown user or wrong password", example=apidoc.ERROR_EXAMPLES["wrong_password"]
)
@auth_blp.alt_response(429, description="Past LOGIN_RATE_LIMIT", headers=apidoc.RETRY_HEADERS)
def login(data):
    """Exchange a username (or email) and password for tokens."""
    user = auth.authenticate(data["username"], data["password"])
    if user is None:
        abort(401, message="Wrong username or password.")
    return {**auth.login_tokens(user), "user": user}


@auth_blp.route("/refresh", methods=["POST"])
@refresh_token_required
@auth_blp.response(200, s.AccessTokenSchema)
def refresh():
    """Exchange a refresh token for a new access token."""
    return {"access_token": auth.refreshed_access_token(current_user, get_jwt())}


@auth_blp.route("/logout", methods=["POST"])
@any_token_required
@auth_blp.arguments(s.LogoutQuerySchema, location="query")
@auth_blp.response(200, s.MessageSchema)
def logout(query):
    """End the session of the token that made this request: its access and refresh tokens."""
    auth.log_out(current_user, get_jwt(), everywhere=query["everywhere"])
    return {"message": "Logged out everywhere" if query["everywhere"] else "Logged out"}


@users_blp.route("/me", methods=["GET"])
@login_required
@users_blp.response(200, s.UserSchema)
def get_me():
    """Your own profile."""
    return current_user


@users_blp.route("/users", methods=["GET"])
@admin_required
@users_blp.arguments(s.UsersQuerySchema, location="query")
@users_blp.response(200, s.UserSchema(many=True), headers=apidoc.PAGE_HEADERS)
def list_users(args):
    """Every user, by id (admins)."""
    return paginate(select(User).order_by(User.id), args)


@users_blp.route("/users/promote/<int:user_id>", methods=["POST"])
@admin_required
@users_blp.response(200, s.PromoteResponseSchema, example=apidoc.EXAMPLES["promoted"])
@users_blp.alt_response(404, description="Unknown user", example=apidoc.ERROR_EXAMPLES["user_not_found"])
def promote_user(user_id):
    """Make a user an admin (idempotent)."""
    return {"message": "User promoted to admin successfully", "user": auth.promote(user_id)}


# ---- movies -----------------------------------------------------------------------

MOVIE_DUMPER = s.LeanDumper(s.MovieSchema())


@movies_blp.route("/movies", methods=["POST"])
@admin_required
@movies_blp.arguments(s.MovieSchema, example=apidoc.EXAMPLES["movie"])
@movies_blp.response(201, s.MovieSchema, headers=apidoc.CREATED_HEADERS)
def create_movie(data):
    """Add a movie to the catalogue."""
    movie = scheduling.create_movie(data)
    return created(movie, "movies.get_movie", movie_id=movie.id)


@movies_blp.route("/movies", methods=["GET"])
@login_required
@movies_blp.arguments(s.MoviesQuerySchema, location="query")
@movies_blp.response(200, s.MovieSchema(many=True), headers=apidoc.PAGE_HEADERS)
def list_movies(args):
    """The catalogue, by title; ``?genre=`` filters (case-insensitive)."""
    movies, headers = paginate(scheduling.movies_query(args.get("genre")), args)
    return lean_response([MOVIE_DUMPER.dump(movie) for movie in movies], headers)


@movies_blp.route("/movies/search", methods=["GET"])
@login_required
@movies_blp.arguments(s.MovieSearchQuerySchema, location="query")
@movies_blp.response(200, s.MovieSchema(many=True), headers=apidoc.PAGE_HEADERS)
def search_movies(args):
    """Case-insensitive substring search on title and/or genre, or ``q`` for either."""
    statement = scheduling.search_movies_query(args.get("title"), args.get("genre"), args.get("q"))
    movies, headers = paginate(statement, args)
    return lean_response([MOVIE_DUMPER.dump(movie) for movie in movies], headers)


@movies_blp.route("/movies/<int:movie_id>", methods=["GET"])
@login_required
@movies_blp.response(200, s.MovieDetailSchema)
@movies_blp.alt_response(404, description="Unknown or deleted movie")
@movies_blp.alt_response(304, description="Not modified (If-None-Match)")
def get_movie(movie_id):
    """One movie with its upcoming showtimes; carries an ETag."""
    now = utcnow()
    movie, tag = scheduling.movie_and_tag(movie_id, now)
    cached = not_modified(tag)
    if cached:
        return cached
    body = {
        **{name: getattr(movie, name) for name in s.MovieSchema().fields},
        "showtimes": scheduling.upcoming_showtimes(movie_id, now),
    }
    return body, etag_header(tag)


@movies_blp.route("/movies/<int:movie_id>", methods=["PUT"])
@admin_required
@movies_blp.arguments(s.MovieSchema(partial=True), example={"duration_minutes": 150})
@movies_blp.response(200, s.MovieSchema)
@movies_blp.alt_response(404, description="Unknown or deleted movie")
@movies_blp.alt_response(
    409,
    description="A longer film would overlap the next showtime in a hall",
    example=apidoc.ERROR_EXAMPLES["hall_taken"],
)
def update_movie(data, movie_id):
    """Change a movie; send only the fields that change."""
    json_body_required(data)
    movie, replaced_poster = scheduling.update_movie(movie_id, data)
    scheduling.discard_unused_poster(replaced_poster)
    return movie


@movies_blp.route("/movies/<int:movie_id>", methods=["DELETE"])
@admin_required
@movies_blp.response(200, s.MessageSchema)
@movies_blp.alt_response(404, description="Unknown or deleted movie")
@movies_blp.alt_response(
    409, description="Upcoming showtimes have bookings", example=apidoc.ERROR_EXAMPLES["movie_booked"]
)
def delete_movie(movie_id):
    """Archive a movie and its showtimes; refused while upcoming showtimes are booked."""
    movie = scheduling.archive_movie(movie_id)
    scheduling.discard_unused_poster(movie.poster_url)
    return {"message": f"Movie {movie_id} deleted"}


# ---- posters ----------------------------------------------------------------------


def poster_upload(with_movie_id: bool):
    """Admins only; documents the body, the answer and the errors of a poster upload."""
    decorators = [
        admin_required,
        movies_blp.doc(requestBody=apidoc.poster_request_body(with_movie_id)),
        movies_blp.response(201, s.PosterSchema),
        movies_blp.alt_response(
            400,
            description="Not a whole JPEG, PNG, WebP or GIF image, one over MAX_POSTER_PIXELS "
            "or with HTML in it, or a bad movie_id",
            example=apidoc.ERROR_EXAMPLES["not_an_image"],
        ),
        movies_blp.alt_response(404, description="No such movie"),
        movies_blp.alt_response(413, description="The image is over MAX_POSTER_BYTES"),
        movies_blp.alt_response(
            415, description="Neither multipart nor JSON", example=apidoc.ERROR_EXAMPLES["not_an_upload"]
        ),
        movies_blp.alt_response(
            502,
            description="The image host failed; nothing changed",
            example=apidoc.ERROR_EXAMPLES["image_host_failed"],
        ),
    ]

    def decorate(view):
        for decorator in reversed(decorators):
            view = decorator(view)
        return view

    return decorate


@movies_blp.route("/upload-poster", methods=["POST"])
@poster_upload(with_movie_id=True)
def upload_poster():
    """Store a poster: multipart field ``image`` (or ``file``), or JSON ``{"image": base64}``.

    With ``movie_id`` the image becomes that movie's ``poster_url``.
    """
    data, movie_id = posters.read_poster_request()
    return save_poster(data, movie_id)


@movies_blp.route("/movies/<int:movie_id>/poster", methods=["POST"])
@poster_upload(with_movie_id=False)
def upload_movie_poster(movie_id):
    """Store a poster and make it this movie's ``poster_url``."""
    data, _ = posters.read_poster_request(movie_id_allowed=False)
    return save_poster(data, movie_id)


def save_poster(data: bytes, movie_id: int | None):
    stored, movie, replaced_poster = scheduling.attach_poster(data, movie_id)
    scheduling.discard_unused_poster(replaced_poster)
    return {**stored, "movie": movie}, 201, {"Location": stored["url"]}


@movies_blp.route("/posters/<name>", methods=["GET"])
@movies_blp.doc(
    responses={200: {"description": "The image", "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}}
)
@movies_blp.alt_response(404, description="No such poster", example=apidoc.ERROR_EXAMPLES["poster_not_found"])
def get_poster(name):
    """A locally stored poster (public, cached for a year: its name is its content hash)."""
    found = posters.local_poster(name)
    if found is None:
        abort(404, message="Poster not found.")
    folder, content_type = found
    response = send_from_directory(folder, name, mimetype=content_type, max_age=365 * 24 * 3600)
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response


# ---- showtimes --------------------------------------------------------------------


@showtimes_blp.route("/showtimes", methods=["POST"])
@admin_required
@showtimes_blp.arguments(s.ShowtimeCreateSchema, example=apidoc.EXAMPLES["showtime"])
@showtimes_blp.response(201, s.ShowtimeSchema, headers=apidoc.CREATED_HEADERS)
@showtimes_blp.alt_response(404, description="Unknown movie")
@showtimes_blp.alt_response(
    409, description="The hall is taken at that time", example=apidoc.ERROR_EXAMPLES["hall_taken"]
)
def create_showtime(data):
    """Schedule a movie in a hall; a hall with a seat plan gives the showtime its seats at once.

    A hall named for the first time is created without a plan.
    """
    showtime, movie, seats = scheduling.create_showtime(data)
    body = scheduling.showtime_body(showtime, movie.title, seats, seats)
    return created(body, "showtimes.get_showtime", showtime_id=showtime.id)


@showtimes_blp.route("/showtimes", methods=["GET"])
@login_required
@showtimes_blp.arguments(s.ShowtimeRangeQuerySchema, location="query")
@showtimes_blp.response(200, s.ShowtimeSchema(many=True), headers=apidoc.PAGE_HEADERS)
def list_showtimes(args):
    """Upcoming showtimes (or those in ?date= / ?from= / ?to=), by start time."""
    statement = scheduling.listed_showtimes_query(args, upcoming_by_default=True)
    rows, headers = paginate(statement, args, scalars=False)
    return [scheduling.showtime_body(*row) for row in rows], headers


@showtimes_blp.route("/showtimes/search", methods=["GET"])
@login_required
@showtimes_blp.arguments(s.ShowtimeSearchQuerySchema, location="query")
@showtimes_blp.response(200, s.ShowtimeSchema(many=True), headers=apidoc.PAGE_HEADERS)
def search_showtimes(args):
    """Showtimes on a local date (?date=YYYY-MM-DD) or between ?from= and ?to=."""
    statement = scheduling.listed_showtimes_query(args, upcoming_by_default=False)
    rows, headers = paginate(statement, args, scalars=False)
    return [scheduling.showtime_body(*row) for row in rows], headers


@showtimes_blp.route("/showtimes/<int:showtime_id>", methods=["GET"])
@login_required
@showtimes_blp.response(200, s.ShowtimeSchema)
@showtimes_blp.alt_response(
    404, description="Unknown or deleted showtime", example=apidoc.ERROR_EXAMPLES["showtime_not_found"]
)
@showtimes_blp.alt_response(304, description="Not modified (If-None-Match)")
def get_showtime(showtime_id):
    """One showtime with its seat counts; carries an ETag."""
    tag = scheduling.showtime_tag(showtime_id)
    return not_modified(tag) or (scheduling.showtime_with_counts(showtime_id), etag_header(tag))


@showtimes_blp.route("/showtimes/<int:showtime_id>", methods=["PUT"])
@admin_required
@showtimes_blp.arguments(s.ShowtimeUpdateSchema)
@showtimes_blp.response(200, s.ShowtimeSchema)
@showtimes_blp.alt_response(
    404, description="Unknown showtime or movie", example=apidoc.ERROR_EXAMPLES["showtime_not_found"]
)
@showtimes_blp.alt_response(
    409,
    description="Booked, or the hall is taken",
    example=apidoc.ERROR_EXAMPLES["showtime_booked_unchangeable"],
)
def update_showtime(data, showtime_id):
    """Move a showtime, change its hall, movie or price; refused once it is booked."""
    json_body_required(data)
    showtime = scheduling.update_showtime(showtime_id, data)
    return scheduling.showtime_with_counts(showtime.id)


@showtimes_blp.route("/showtimes/<int:showtime_id>", methods=["DELETE"])
@admin_required
@showtimes_blp.response(200, s.MessageSchema)
@showtimes_blp.alt_response(
    404, description="Unknown or deleted showtime", example=apidoc.ERROR_EXAMPLES["showtime_not_found"]
)
@showtimes_blp.alt_response(
    409, description="The showtime has bookings", example=apidoc.ERROR_EXAMPLES["showtime_booked"]
)
def delete_showtime(showtime_id):
    """Archive a showtime; refused while it is upcoming and booked."""
    scheduling.archive_showtime(showtime_id)
    return {"message": f"Showtime {showtime_id} deleted"}


SEAT_MAP_HEADER = s.SeatMapSchema(exclude=("rows",))


@showtimes_blp.route("/showtimes/<int:showtime_id>/seats", methods=["GET"])
@login_required
@showtimes_blp.response(200, s.SeatMapSchema, example=apidoc.EXAMPLES["seat_map"])
@showtimes_blp.alt_response(
    404, description="Unknown or deleted showtime", example=apidoc.ERROR_EXAMPLES["showtime_not_found"]
)
@showtimes_blp.alt_response(304, description="Not modified (If-None-Match)")
def seat_map(showtime_id):
    """Every seat of a showtime, row by row in natural order, with its status.

    Carries an ETag that changes with any seat's status; pollers send it back in
    If-None-Match and get a bodiless 304 while nothing changed.
    """
    base_tag, tag, cached = seat_map_state(showtime_id)
    if cached:
        return cached
    kept = current_app.extensions["seat_map_bodies"].get(base_tag)
    if kept is not None and kept.body is not None and current_user.id not in kept.holders:
        response = current_app.response_class(kept.body, mimetype="application/json")
    else:
        kept = kept or keep_seat_map(base_tag, *scheduling.showtime_and_title(showtime_id))
        body, holders = seat_map_body(kept.showtime, kept.title, current_user.id)
        response = jsonify(body)
        if current_user.id not in holders:  # nothing "yours" in it: the same body for every such user
            kept.body, kept.holders = response.get_data(), holders
    response.set_etag(tag)
    return response


@showtimes_blp.route("/showtimes/<int:showtime_id>/seatmap.svg", methods=["GET"])
@login_required
@showtimes_blp.doc(
    responses={200: {"description": "The seat map as a picture", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}}
)
@showtimes_blp.alt_response(
    404, description="Unknown or deleted showtime", example=apidoc.ERROR_EXAMPLES["showtime_not_found"]
)
@showtimes_blp.alt_response(304, description="Not modified (If-None-Match)")
def seat_map_picture(showtime_id):
    """The seat map as an SVG picture: screen, rows, aisles, each seat by status and type, a legend.

    Each seat has an accessible name ("Row F seat 7, premium, available, $14");
    carries the same ETag as the seat map.
    """
    _, tag, cached = seat_map_state(showtime_id)
    if cached:
        return cached
    showtime, movie_title = scheduling.showtime_and_title(showtime_id)
    body, _ = seat_map_body(showtime, movie_title, current_user.id)
    local_start = showtime.start_time.astimezone(current_app.config["CINEMA_TZ"]).strftime("%Y-%m-%d %H:%M")
    response = current_app.response_class(
        seatmap_svg.render(body, local_start=local_start), content_type="image/svg+xml; charset=utf-8"
    )
    response.set_etag(tag)
    return response


def seat_map_state(showtime_id: int):
    """(the showtime's tag, the caller's ETag, a 304 when they hold it already, else None)."""
    base_tag = scheduling.showtime_tag(showtime_id)
    # "yours" differs between users, so the user is part of the tag.
    tag = f"{base_tag}-user-{current_user.id}"
    return base_tag, tag, not_modified(tag)


# Each worker keeps the encoded seat maps it built, per showtime tag: the tag changes in
# the transaction of any change to what the map shows (and when a hold lapses), so a
# kept body is exact for that tag. Only a map with nothing "yours" in it is kept, with
# the users who have seats in it; they get theirs built (from the kept showtime).
SEAT_MAP_BODIES_KEPT = 64


class KeptSeatMap:
    __slots__ = ("showtime", "title", "body", "holders")

    def __init__(self, showtime, title):
        self.showtime, self.title, self.body, self.holders = showtime, title, None, set()


def keep_seat_map(tag: str, showtime, title: str) -> KeptSeatMap:
    bodies = current_app.extensions["seat_map_bodies"]
    if len(bodies) >= SEAT_MAP_BODIES_KEPT:
        bodies.clear()
    kept = bodies[tag] = KeptSeatMap(showtime, title)
    return kept


def seat_map_body(showtime, movie_title: str, user_id: int) -> tuple[dict, set[int]]:
    """The seat map as ``user_id`` sees it, and the users who have seats in it."""
    rows, seats_total, seats_available, holders = booking.seat_rows(showtime, user_id)
    # The seats are plain values already: only the header goes through the
    # schema, so a 300-seat map is not serialised field by field.
    header = SEAT_MAP_HEADER.dump(
        {
            "showtime_id": showtime.id,
            "movie_title": movie_title,
            "start_time": showtime.start_time,
            "hall": showtime.hall,
            "price": showtime.price_cents,
            "seats_total": seats_total,
            "seats_available": seats_available,
        }
    )
    return {**header, "rows": rows}, holders


@showtimes_blp.route("/showtimes/<int:showtime_id>/seats", methods=["PATCH"])
@admin_required
@showtimes_blp.arguments(s.SeatChangeSchema, example={"seats": ["E7", "E8"], "blocked": True})
@showtimes_blp.response(200, s.SeatChangedSchema)
@showtimes_blp.alt_response(404, description="Unknown or deleted showtime", example=apidoc.ERROR_EXAMPLES["showtime_not_found"])
@showtimes_blp.alt_response(
    409, description="Blocking a booked seat (it is named)", example=apidoc.ERROR_EXAMPLES["seat_booked_block"]
)
def change_seats(data, showtime_id):
    """Change seats' type, or block them (never sold) and unblock them."""
    scheduling.change_seats(showtime_id, data["seats"], data.get("type"), data.get("blocked"))
    return {"message": f"{len(data['seats'])} seats changed", "seats": data["seats"]}


@showtimes_blp.route("/showtimes/<int:showtime_id>/best-available", methods=["GET"])
@login_required
@showtimes_blp.arguments(s.BestAvailableQuerySchema, location="query")
@showtimes_blp.response(200, s.BestAvailableSchema)
@showtimes_blp.alt_response(
    404, description="Unknown or deleted showtime", example=apidoc.ERROR_EXAMPLES["showtime_not_found"]
)
@showtimes_blp.alt_response(409, description="No seats fit (the message says why)", example=apidoc.ERROR_EXAMPLES["no_seats_together"])
def best_available(args, showtime_id):
    """Which seats the cinema would offer for a party now, and why; holds nothing.

    Seats side by side in one row near the hall's preferred row (middle-back unless the
    plan names one) and the middle of the row, never leaving a single seat stranded when
    another choice avoids it; blocked seats never, wheelchair spaces and companion seats
    only when ``accessible`` asks for them. The same seat map gives the same answer.
    """
    pick = booking.best_available(
        scheduling.get_showtime(showtime_id),
        args["quantity"],
        seat_types=set(args["seat_types"]) if args.get("seat_types") else None,
        accessible=args["accessible"],
        allow_split=args["allow_split"],
    )
    return {"showtime_id": showtime_id, "seats": pick.labels, "together": pick.contiguous, "explanation": pick.explanation}


@showtimes_blp.route("/showtimes/<int:showtime_id>/prices", methods=["GET"])
@login_required
@showtimes_blp.response(200, s.PriceTableSchema)
@showtimes_blp.alt_response(
    404, description="Unknown or deleted showtime", example=apidoc.ERROR_EXAMPLES["showtime_not_found"]
)
def showtime_prices(showtime_id):
    """Every price of a showtime before booking: per seat type, and per seat type and ticket type."""
    return pricing.price_table(scheduling.get_showtime(showtime_id))


# ---- seats ------------------------------------------------------------------------


@seats_blp.route("/seats", methods=["POST"])
@admin_required
@seats_blp.arguments(s.SeatsCreateSchema, example=apidoc.EXAMPLES["seats"])
@seats_blp.response(
    201, s.SeatsCreatedSchema, headers=apidoc.CREATED_HEADERS, example=apidoc.EXAMPLES["seats_added"]
)
@seats_blp.alt_response(
    404, description="Unknown showtime", example=apidoc.ERROR_EXAMPLES["showtime_not_found"]
)
@seats_blp.alt_response(
    409, description="A label already exists (none added)", example=apidoc.ERROR_EXAMPLES["seats_exist"]
)
def add_seats(data):
    """Add seats to a showtime: a list of labels, or rows × seats per row."""
    labels = scheduling.seat_labels(data)
    showtime = scheduling.add_seats(data["showtime_id"], labels, data["type"])
    return created(
        {"message": "Seats added successfully", "seats": labels},
        "showtimes.seat_map",
        showtime_id=showtime.id,
    )


# ---- halls ------------------------------------------------------------------------


def hall_body(hall) -> dict:
    return {
        "id": hall.id,
        "name": hall.name,
        "plan": hall.plan,
        "seats_total": scheduling.seats_in_plan(hall.plan),
        "created_at": hall.created_at,
    }


@halls_blp.route("/halls", methods=["POST"])
@admin_required
@halls_blp.arguments(s.HallSchema, example={"name": "Studio 1", "plan": s.PLAN_EXAMPLE})
@halls_blp.response(201, s.HallSchema, headers=apidoc.CREATED_HEADERS)
@halls_blp.alt_response(
    409, description="A hall of that name (any case) exists", example=apidoc.ERROR_EXAMPLES["hall_name_taken"]
)
def create_hall(data):
    """Add a hall, with a seat plan or without one."""
    hall = scheduling.create_hall(data)
    return created(hall_body(hall), "halls.get_hall", hall_id=hall.id)


@halls_blp.route("/halls", methods=["GET"])
@login_required
@halls_blp.arguments(s.HallsQuerySchema, location="query")
@halls_blp.response(200, s.HallSchema(many=True), headers=apidoc.PAGE_HEADERS)
def list_halls(args):
    """Every hall, by name."""
    halls, headers = paginate(scheduling.halls_query(), args)
    return [hall_body(hall) for hall in halls], headers


@halls_blp.route("/halls/<int:hall_id>", methods=["GET"])
@login_required
@halls_blp.response(200, s.HallSchema)
@halls_blp.alt_response(404, description="Unknown hall", example=apidoc.ERROR_EXAMPLES["hall_not_found"])
def get_hall(hall_id):
    """One hall and its seat plan."""
    return hall_body(scheduling.get_hall(hall_id))


@halls_blp.route("/halls/<int:hall_id>", methods=["PUT"])
@admin_required
@halls_blp.arguments(s.HallSchema(partial=True), example={"plan": {"rows": [{"rows": "A-J", "seats": 12}]}})
@halls_blp.response(200, s.HallUpdatedSchema)
@halls_blp.alt_response(404, description="Unknown hall", example=apidoc.ERROR_EXAMPLES["hall_not_found"])
@halls_blp.alt_response(409, description="The new name is taken", example=apidoc.ERROR_EXAMPLES["hall_name_taken"])
def update_hall(data, hall_id):
    """Rename a hall or change its plan; showtimes that were never booked take the new plan."""
    json_body_required(data)
    hall, updated, kept = scheduling.update_hall(hall_id, data)
    return {**hall_body(hall), "showtimes_updated": updated, "showtimes_kept": kept}


# ---- ticket types -----------------------------------------------------------------


@pricing_blp.route("/ticket-types", methods=["GET"])
@login_required
@pricing_blp.arguments(s.TicketTypesQuerySchema, location="query")
@pricing_blp.response(200, s.TicketTypeSchema(many=True), headers=apidoc.PAGE_HEADERS)
def list_ticket_types(args):
    """The ticket types a guest can book (adult, child, ...) and their price rules."""
    return paginate(pricing.ticket_types_query(), args)


@pricing_blp.route("/ticket-types", methods=["POST"])
@admin_required
@pricing_blp.arguments(
    s.TicketTypeSchema, example={"code": "family", "name": "Family", "price_rule": "amount_off", "amount": 1}
)
@pricing_blp.response(201, s.TicketTypeSchema, headers=apidoc.CREATED_HEADERS)
@pricing_blp.alt_response(409, description="The code exists", example=apidoc.ERROR_EXAMPLES["ticket_type_exists"])
def create_ticket_type(data):
    """Add a ticket type."""
    ticket_type = pricing.create_ticket_type(data)
    return created(ticket_type, "pricing.list_ticket_types")


@pricing_blp.route("/ticket-types/<code>", methods=["PUT"])
@admin_required
@pricing_blp.arguments(s.TicketTypeUpdateSchema(partial=True), example={"price_rule": "percent", "percent": 50})
@pricing_blp.response(200, s.TicketTypeSchema)
@pricing_blp.alt_response(404, description="Unknown ticket type", example=apidoc.ERROR_EXAMPLES["ticket_type_not_found"])
@pricing_blp.alt_response(
    409, description="Deactivating the default type (adult)", example=apidoc.ERROR_EXAMPLES["default_ticket_type"]
)
def update_ticket_type(data, code):
    """Rename a ticket type, change its price rule, or (de)activate it."""
    json_body_required(data)
    return pricing.update_ticket_type(code, data)


# ---- holds -------------------------------------------------------------------------


def hold_created(hold):
    return created({"message": "Seats held", "hold": hold}, "holds.get_hold", hold_id=hold.id)


@holds_blp.route("/holds", methods=["POST"])
@login_required
@holds_blp.arguments(s.HoldCreateSchema, example=apidoc.EXAMPLES["hold"])
@holds_blp.response(201, s.HoldCreatedSchema, headers=apidoc.CREATED_HEADERS, example=apidoc.EXAMPLES["held"])
@holds_blp.alt_response(404, description="Unknown showtime", example=apidoc.ERROR_EXAMPLES["showtime_not_found"])
@holds_blp.alt_response(
    409,
    description="A seat is taken, no seats fit the quantity, the showtime started, or the seat limit is reached",
    example=apidoc.ERROR_EXAMPLES["seat_limit"],
)
@idempotency.idempotent(rebuild=lambda key_row: hold_created(booking.get_hold(key_row.resource_id, current_user)))
def create_hold(data):
    """Hold seats for HOLD_SECONDS while the guest confirms (POST /reservations with hold_id).

    Name the seats (``seats`` or ``tickets``, as for a booking) or ask for the best
    ``quantity`` seats (as GET /showtimes/{id}/best-available picks them, with the same
    wishes). Held seats are taken for everyone else until the hold expires, is
    released or is confirmed; the price is quoted now and kept. Nothing needs to
    clean up an abandoned hold: at ``expires_at`` its seats are free again.
    """
    common = {
        "may_override": current_user.is_admin,
        "seat_limit": seat_limit(),
        "hold_seconds": current_app.config["HOLD_SECONDS"],
        "on_booked": idempotency.remember_resource,
    }
    if "quantity" in data:
        wishes = {
            "seat_types": set(data["seat_types"]) if data.get("seat_types") else None,
            "accessible": data.get("accessible", 0),
            "allow_split": data.get("allow_split", False),
        }
        hold = booking.hold_best_available(
            current_user.id,
            data["showtime_id"],
            data["quantity"],
            data.get("ticket_type", DEFAULT_TICKET_TYPE),
            wishes,
            **common,
        )
    else:
        hold = booking.book(current_user.id, data["showtime_id"], requested_tickets(data), **common)
    return hold_created(hold)


@holds_blp.route("/holds/<int:hold_id>", methods=["GET"])
@login_required
@holds_blp.response(200, s.HoldSchema, example=apidoc.EXAMPLES["hold_detail"])
@holds_blp.alt_response(404, description="Unknown, or someone else's", example=apidoc.ERROR_EXAMPLES["hold_not_found"])
def get_hold(hold_id):
    """A hold with the seconds it has left; its status says whether it is still active."""
    return booking.get_hold(hold_id, current_user)


@holds_blp.route("/holds/<int:hold_id>/extend", methods=["POST"])
@login_required
@holds_blp.response(200, s.HoldSchema, example=apidoc.EXAMPLES["hold_detail"])
@holds_blp.alt_response(404, description="Unknown, or someone else's", example=apidoc.ERROR_EXAMPLES["hold_not_found"])
@holds_blp.alt_response(
    409,
    description="At HOLD_MAX_SECONDS from its creation already, or no longer active",
    example=apidoc.ERROR_EXAMPLES["hold_expired"],
)
def extend_hold(hold_id):
    """Give a hold HOLD_SECONDS from now, but never more than HOLD_MAX_SECONDS from when it was made."""
    config = current_app.config
    return booking.extend_hold(hold_id, current_user, config["HOLD_SECONDS"], config["HOLD_MAX_SECONDS"])


@holds_blp.route("/holds/<int:hold_id>", methods=["DELETE"])
@login_required
@holds_blp.response(200, s.MessageSchema, example={"message": "Hold released"})
@holds_blp.alt_response(404, description="Unknown, or someone else's", example=apidoc.ERROR_EXAMPLES["hold_not_found"])
@holds_blp.alt_response(
    409, description="Expired, released or confirmed already", example=apidoc.ERROR_EXAMPLES["hold_expired"]
)
def release_hold(hold_id):
    """Give the held seats back now (a guest who leaves the checkout)."""
    booking.release_hold(hold_id, current_user)
    return {"message": "Hold released"}


# ---- reservations -----------------------------------------------------------------

RESERVATION_DUMPER = s.LeanDumper(s.ReservationSchema())


def reservation_created(reservation):
    return created(
        {"message": "Reservation confirmed", "reservation": reservation},
        "reservations.get_reservation",
        reservation_id=reservation.id,
    )


def booked_before(key_row):
    """The answer to a booking whose retry finds it committed but its answer unrecorded."""
    return reservation_created(booking.get_reservation(key_row.resource_id, current_user))


@reservations_blp.route("/reservations", methods=["POST"])
@login_required
@reservations_blp.arguments(s.ReservationCreateSchema, example=apidoc.EXAMPLES["reservation"])
@reservations_blp.response(
    201, s.ReservationCreatedSchema, headers=apidoc.CREATED_HEADERS, example=apidoc.EXAMPLES["reserved"]
)
@reservations_blp.alt_response(
    404, description="Unknown showtime, or a hold that is not yours", example=apidoc.ERROR_EXAMPLES["showtime_not_found"]
)
@reservations_blp.alt_response(
    409,
    description="A seat is taken, the showtime started, the seat limit is reached, "
    "or the hold expired, was released or is confirmed already",
    example=apidoc.ERROR_EXAMPLES["hold_expired"],
)
@idempotency.idempotent(rebuild=booked_before)
def create_reservation(data):
    """Book one or more seats in one step, all of them or none; or confirm a hold.

    ``seats`` books adult tickets; ``tickets`` gives each seat a ticket type; ``hold_id``
    confirms a hold (POST /holds) at the prices it quoted, and the reservation keeps
    the hold's id. A companion seat is sold with an accessible seat only (admins may
    book it alone). A guest may have at most MAX_SEATS_PER_USER_PER_SHOWTIME seats of
    one showtime held or booked. With an ``Idempotency-Key``, a retry gets the first
    answer back (see README, Retries).
    """
    if "hold_id" in data:
        reservation = booking.confirm_hold(data["hold_id"], current_user, on_booked=idempotency.remember_resource)
    else:
        reservation = booking.book(
            current_user.id,
            data["showtime_id"],
            requested_tickets(data),
            may_override=current_user.is_admin,
            on_booked=idempotency.remember_resource,
            seat_limit=seat_limit(),
        )
    send_booking_confirmation(reservation)
    return reservation_created(reservation)


def requested_tickets(data) -> dict[str, str]:
    """Seat label -> ticket type, from a body's ``tickets`` or its ``seats`` (adult)."""
    if "tickets" in data:
        return {ticket["seat"]: ticket["ticket_type"] for ticket in data["tickets"]}
    return booking.adult_tickets(data["seats"])


def seat_limit() -> int | None:
    """The seats of one showtime the caller may have held or booked at once; admins: None."""
    return None if current_user.is_admin else current_app.config["MAX_SEATS_PER_USER_PER_SHOWTIME"]


@reservations_blp.route("/reservations", methods=["GET"])
@login_required
@reservations_blp.arguments(s.ReservationsQuerySchema, location="query")
@reservations_blp.response(200, s.ReservationSchema(many=True), headers=apidoc.PAGE_HEADERS)
@reservations_blp.alt_response(
    403,
    description="?all=true from someone who is not an admin",
    example=apidoc.ERROR_EXAMPLES["not_admin_all"],
)
def list_reservations(args):
    """Your reservations, newest first; admins may pass ?all=true. ``?reference=`` finds one booking."""
    if args["all"] and not current_user.is_admin:
        abort(403, message="Only admins may list every reservation.")
    statement = booking.reservations_query(None if args["all"] or "reference" in args else current_user.id)
    if "reference" in args:
        statement = booking.with_reference(statement, tickets.normalize_reference(args["reference"]), current_user)
    reservations, headers = paginate(statement, args)
    return lean_response([RESERVATION_DUMPER.dump(reservation) for reservation in reservations], headers)


@reservations_blp.route("/reservations/<int:reservation_id>", methods=["GET"])
@login_required
@reservations_blp.response(200, s.ReservationSchema, example=apidoc.EXAMPLES["reservation_detail"])
@reservations_blp.alt_response(
    404, description="Unknown, or someone else's", example=apidoc.ERROR_EXAMPLES["reservation_not_found"]
)
def get_reservation(reservation_id):
    """One of your reservations."""
    return booking.get_reservation(reservation_id, current_user)


CANCELLED_ANSWER = {"message": "Reservation cancelled successfully"}


@reservations_blp.route("/reservations/<int:reservation_id>", methods=["DELETE"])
@login_required
@reservations_blp.response(200, s.MessageSchema, example=apidoc.EXAMPLES["cancelled"])
@reservations_blp.alt_response(
    404, description="Unknown, or someone else's", example=apidoc.ERROR_EXAMPLES["reservation_not_found"]
)
@reservations_blp.alt_response(
    409,
    description="Already cancelled, or the showtime started",
    example=apidoc.ERROR_EXAMPLES["already_cancelled"],
)
@idempotency.idempotent(rebuild=lambda key_row: CANCELLED_ANSWER)
def cancel_reservation(reservation_id):
    """Cancel your reservation; its seats are free again at once."""
    reservation = booking.cancel(reservation_id, current_user)
    send_cancellation(reservation)
    return CANCELLED_ANSWER


# ---- tickets, changes to bookings, check-in ---------------------------------------


@tickets_blp.route("/users/<int:user_id>/role", methods=["POST"])
@admin_required
@tickets_blp.arguments(s.RoleSchema, example={"role": "staff"})
@tickets_blp.response(200, s.PromoteResponseSchema)
@tickets_blp.alt_response(404, description="Unknown user", example=apidoc.ERROR_EXAMPLES["user_not_found"])
@tickets_blp.alt_response(409, description="An admin changing their own role", example=apidoc.ERROR_EXAMPLES["own_role"])
def set_user_role(data, user_id):
    """Make a user an admin, door staff (check-in only) or a plain user (admins; idempotent)."""
    user = auth.set_role(user_id, data["role"], current_user)
    return {"message": f"User {user.id} is now {user.role}", "user": user}


def seats_cancelled_answer(reservation, labels):
    return {"message": f"Cancelled seats {', '.join(labels)}", "cancelled_seats": labels, "reservation": reservation}


def cancelled_before(key_row):
    """The answer to a cancel whose retry finds it committed but its answer unrecorded.

    The retry has the first request's body (the key's fingerprint says so): the seats
    it named, or, without seats, those the reservation held when it was cancelled.
    """
    reservation = booking.get_reservation(request.view_args["reservation_id"], current_user)
    asked = {s.seat_label(label) for label in (request.get_json(silent=True) or {}).get("seats") or []}
    labels = [line.seat.label for line in reservation.sorted_lines if line.seat.label in asked]
    return seats_cancelled_answer(reservation, labels if asked else reservation.seat_labels)


@tickets_blp.route("/reservations/<int:reservation_id>/cancel", methods=["POST"])
@login_required
@tickets_blp.arguments(s.CancelSeatsSchema, example={"seats": ["A3"]})
@tickets_blp.response(200, s.CancelledSeatsSchema)
@tickets_blp.alt_response(
    400, description="A seat the reservation does not have", example=apidoc.ERROR_EXAMPLES["not_a_seat_of_it"]
)
@tickets_blp.alt_response(
    404, description="Unknown, or someone else's", example=apidoc.ERROR_EXAMPLES["reservation_not_found"]
)
@tickets_blp.alt_response(
    409,
    description="A seat already cancelled or checked in, the reservation cancelled, the showtime started, "
    "or (guests) past CANCELLATION_CUTOFF_MINUTES before the start",
    example=apidoc.ERROR_EXAMPLES["already_cancelled"],
)
@idempotency.idempotent(rebuild=cancelled_before)
def cancel_seats(data, reservation_id):
    """Give back some seats of a booking (``seats``), or all of them (no ``seats``).

    The seats are free at once and their tickets void; the total drops by their
    frozen prices; the guest gets an email. Giving back the last seats cancels the
    reservation. Guests may do it until CANCELLATION_CUTOFF_MINUTES before the
    start, admins until the start; checked-in seats cannot be given back.
    """
    reservation, labels = booking.cancel_seats(reservation_id, current_user, data.get("seats"))
    if reservation.status == "cancelled":
        send_cancellation(reservation)
    else:
        send_change(reservation, labels)
    return seats_cancelled_answer(reservation, labels)


@tickets_blp.route("/reservations/<int:reservation_id>/tickets", methods=["GET"])
@login_required
@tickets_blp.response(200, s.TicketsSchema)
@tickets_blp.alt_response(
    404, description="Unknown, or someone else's", example=apidoc.ERROR_EXAMPLES["reservation_not_found"]
)
def list_tickets(reservation_id):
    """The live tickets of your booking: seat, ticket type, secret and QR code (SVG) each.

    A cancelled booking or seat has none; admins see anyone's.
    """
    reservation = booking.get_reservation(reservation_id, current_user)
    found = tickets.with_qr_codes(tickets.live_tickets(reservation))
    return {"reservation_id": reservation.id, "reference": reservation.reference, "tickets": found}


@tickets_blp.route("/reservations/<int:reservation_id>/tickets/<seat>/reissue", methods=["POST"])
@login_required
@tickets_blp.response(200, s.ReissuedSchema)
@tickets_blp.alt_response(
    404,
    description="Unknown reservation, someone else's, or not one of its seats",
    example=apidoc.ERROR_EXAMPLES["reservation_not_found"],
)
@tickets_blp.alt_response(
    409,
    description="The seat or booking was cancelled, the ticket is checked in, or the film is over",
    example=apidoc.ERROR_EXAMPLES["reissue_cancelled"],
)
def reissue_ticket(reservation_id, seat):
    """A new secret (and QR code) for one seat; the old one is void from now on."""
    reservation = booking.get_reservation(reservation_id, current_user)
    ticket = tickets.reissue(reservation, seat)
    return {"message": f"New ticket for seat {ticket['seat']}", "ticket": tickets.with_qr_codes([ticket])[0]}


def check_in_limit():
    return current_app.config["CHECK_IN_RATE_LIMIT"]


@tickets_blp.route("/check-ins", methods=["POST"])
@limiter.limit(check_in_limit, deduct_when=lambda response: response.status_code == 404)
@staff_required
@tickets_blp.arguments(s.CheckInSchema, example={"secret": "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"})
@tickets_blp.response(200, s.CheckedInSchema)
@tickets_blp.alt_response(404, description="No ticket has this secret", example=apidoc.ERROR_EXAMPLES["unknown_ticket"])
@tickets_blp.alt_response(
    409,
    description="Checked in before (says when), cancelled, voided by a reissue, the film is over, "
    "or earlier than CHECK_IN_OPENS_MINUTES before the start",
    example=apidoc.ERROR_EXAMPLES["check_in_not_open"],
)
@tickets_blp.alt_response(403, description="Not door staff or an admin", example=apidoc.ERROR_EXAMPLES["not_staff"])
@tickets_blp.alt_response(
    429, description="Past CHECK_IN_RATE_LIMIT unknown secrets", headers=apidoc.RETRY_HEADERS
)
def check_in(data):
    """Admit a ticket at the door, once (door staff and admins).

    Safe to retry and to scan on two devices at once: exactly one scan admits.
    """
    ticket = tickets.check_in(data["secret"], current_user.id)
    return {"message": f"Welcome: seat {ticket['seat']}", "ticket": ticket}


# ---- admin report -----------------------------------------------------------------


@admin_blp.route("/admin/report", methods=["GET"])
@admin_required
@admin_blp.arguments(s.ReportQuerySchema, location="query")
@admin_blp.response(200, s.ReportSchema, example=apidoc.EXAMPLES["report"])
@admin_blp.doc(responses={200: {"content": {reports.CSV_MEDIA_TYPE: apidoc.REPORT_CSV_CONTENT}}})
@admin_blp.alt_response(304, description="Not modified (If-None-Match)")
def admin_report(args):
    """Bookings, tickets, revenue, occupancy and cancellations: per showtime, movie, day, seat and ticket type.

    Money is in dollars, summed exactly from cents; a day is a showtime's local date in
    CINEMA_TIMEZONE. `?format=csv` (or `Accept: text/csv` without `format`) answers the
    per-showtime rows as a CSV file for spreadsheets. Carries an ETag (one per format).
    """
    output = args.pop("output", None) or report_format_accepted()
    tag = reports.report_tag(output)
    response = not_modified(tag)
    if response is None:
        body = reports.report_body(tag, args, output, current_app.extensions["report_bodies"])
        if output == reports.CSV:
            response = current_app.response_class(
                body, content_type=f"{reports.CSV_MEDIA_TYPE}; charset=utf-8; header=present", headers=etag_header(tag)
            )
            response.headers["Content-Disposition"] = 'attachment; filename="report.csv"'
        else:
            response = current_app.response_class(body, mimetype="application/json", headers=etag_header(tag))
    # The same URL answers JSON or CSV by Accept: caches must keep them apart.
    response.vary.add("Accept")
    return response


def report_format_accepted() -> str:
    """CSV when the client's Accept prefers text/csv to JSON; JSON otherwise (also for */*)."""
    best = request.accept_mimetypes.best_match(("application/json", reports.CSV_MEDIA_TYPE))
    return reports.CSV if best == reports.CSV_MEDIA_TYPE else reports.JSON


@health_blp.route("/health", methods=["GET"])
@limiter.exempt  # polled by load balancers
@health_blp.response(200, s.HealthSchema, example=apidoc.EXAMPLES["health"])
@health_blp.alt_response(
    503,
    description="The database is unreachable, read-only or out of disk space (errors.database says which)",
    example=apidoc.ERROR_EXAMPLES["database_unreachable"],
)
def health():
    """Is the API up, and can its database take writes?"""
    state = database_health()
    if state != "ok":
        return error_response(503, DATABASE_PROBLEMS[state], errors={"database": [state]})
    return {"status": "ok", "database": "ok"}


# ---- response helpers -------------------------------------------------------------


def page_links(page: int, per_page: int, total: int) -> str:
    """An RFC 8288 Link header with first, prev, next and last."""
    last = max(1, -(-total // per_page))
    targets = {"first": 1, "last": last}
    if page > 1:
        targets["prev"] = min(page - 1, last)
    if page < last:
        targets["next"] = page + 1
    base = request.base_url
    links = []
    for rel, number in targets.items():
        query = {**request.args.to_dict(), "page": number, "per_page": per_page}
        links.append(f'<{base}?{urlencode(query)}>; rel="{rel}"')
    return ", ".join(links)


# Larger offsets are past the end of any table; they never reach the database.
MAX_OFFSET = 2**62


def paginate(statement, args, scalars=True):
    """Run one page of ``statement``; return (rows, headers) with X-Total-Count and Link.

    Two statements: the page (LIMIT/OFFSET, so an index in the sort order serves it
    without sorting the rest) and the count. A count riding along as COUNT(*) OVER ()
    made every page sort every matching row first: 18 ms of CPU a page at 20,000
    movies. A page past the end costs the count only.
    """
    page, per_page = args["page"], args["per_page"]
    offset = (page - 1) * per_page
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = []
    if offset < min(total, MAX_OFFSET):
        result = db.session.execute(statement.limit(per_page).offset(offset))
        rows = result.scalars().all() if scalars else [tuple(row) for row in result]
    headers = {"X-Total-Count": str(total), "Link": page_links(page, per_page, total)}
    return rows, headers


def lean_response(body, headers=None):
    """A JSON response built outside flask-smorest (its schema still documents it)."""
    response = jsonify(body)
    if headers:
        response.headers.update(headers)
    return response


def created(body, endpoint, **values):
    return body, 201, {"Location": url_for(endpoint, **values)}


def not_modified(tag: str):
    """A bodiless 304 when the client already holds ``tag`` (If-None-Match), else None."""
    if request.if_none_match.contains_weak(tag):
        response = Response(status=304)
        response.set_etag(tag)
        return response
    return None


# Answers with tokens or a user's profile, which no browser or proxy cache may keep.
NO_STORE_ENDPOINTS = frozenset(
    {"auth.register", "auth.login", "auth.refresh", "users.get_me", "users.list_users", "users.promote_user"}
)
# Only these answers ask the client to wait (the 503s, and the 409 of an Idempotency-Key
# still in use, set their own Retry-After).
RETRY_STATUSES = frozenset({409, 429, 503})


def security_headers(response):
    """On every answer: nosniff, Retry-After only where waiting helps, no-store on tokens and profiles."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    limiter_wait = response.headers.pop(LIMITER_RETRY_AFTER, None)
    if response.status_code == 429 and limiter_wait is not None:
        response.headers["Retry-After"] = limiter_wait
    elif response.status_code not in RETRY_STATUSES:
        response.headers.pop("Retry-After", None)
    if request.endpoint in NO_STORE_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


def etag_header(tag: str) -> dict:
    return {"ETag": f'"{tag}"'}


def json_body_required(data):
    if not data:
        abort(400, message="The request body must be a JSON object with at least one field.")


if __name__ == "__main__":
    os.environ.setdefault("AUTO_MIGRATE", "1")  # a fresh SQLite file needs no extra step
    application = create_app()
    application.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "5500")),
        debug=os.environ.get("FLASK_DEBUG") == "1",
    )
