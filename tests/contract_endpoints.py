"""Every endpoint of the HTTP contract, with who may call it: the one list the docs tests check.

Auth: "none" (public), "user" (access token), "admin" (access token of an admin),
"staff" (access token of door staff or an admin),
"refresh" (refresh token), "token" (access or refresh token).
"""

CONTRACT_ENDPOINTS = [
    ("POST", "/register", "none"),
    ("POST", "/login", "none"),
    ("POST", "/refresh", "refresh"),
    ("POST", "/logout", "token"),
    ("GET", "/me", "user"),
    ("GET", "/users", "admin"),
    ("POST", "/users/promote/{user_id}", "admin"),
    ("POST", "/users/{user_id}/role", "admin"),
    ("POST", "/movies", "admin"),
    ("GET", "/movies", "user"),
    ("GET", "/movies/search", "user"),
    ("GET", "/movies/{movie_id}", "user"),
    ("PUT", "/movies/{movie_id}", "admin"),
    ("DELETE", "/movies/{movie_id}", "admin"),
    ("POST", "/movies/{movie_id}/poster", "admin"),
    ("POST", "/upload-poster", "admin"),
    ("GET", "/posters/{name}", "none"),
    ("POST", "/showtimes", "admin"),
    ("GET", "/showtimes", "user"),
    ("GET", "/showtimes/search", "user"),
    ("GET", "/showtimes/{showtime_id}", "user"),
    ("PUT", "/showtimes/{showtime_id}", "admin"),
    ("DELETE", "/showtimes/{showtime_id}", "admin"),
    ("GET", "/showtimes/{showtime_id}/seats", "user"),
    ("PATCH", "/showtimes/{showtime_id}/seats", "admin"),
    ("GET", "/showtimes/{showtime_id}/seatmap.svg", "user"),
    ("GET", "/showtimes/{showtime_id}/prices", "user"),
    ("GET", "/showtimes/{showtime_id}/best-available", "user"),
    ("POST", "/seats", "admin"),
    ("POST", "/halls", "admin"),
    ("GET", "/halls", "user"),
    ("GET", "/halls/{hall_id}", "user"),
    ("PUT", "/halls/{hall_id}", "admin"),
    ("GET", "/ticket-types", "user"),
    ("POST", "/ticket-types", "admin"),
    ("PUT", "/ticket-types/{code}", "admin"),
    ("POST", "/holds", "user"),
    ("GET", "/holds/{hold_id}", "user"),
    ("POST", "/holds/{hold_id}/extend", "user"),
    ("DELETE", "/holds/{hold_id}", "user"),
    ("POST", "/reservations", "user"),
    ("GET", "/reservations", "user"),
    ("GET", "/reservations/{reservation_id}", "user"),
    ("DELETE", "/reservations/{reservation_id}", "user"),
    ("POST", "/reservations/{reservation_id}/cancel", "user"),
    ("GET", "/reservations/{reservation_id}/tickets", "user"),
    ("POST", "/reservations/{reservation_id}/tickets/{seat}/reissue", "user"),
    ("POST", "/check-ins", "staff"),
    ("GET", "/admin/report", "admin"),
    ("GET", "/health", "none"),
]

# Lists answer a bare array with X-Total-Count and Link headers.
PAGINATED = {
    ("GET", "/users"),
    ("GET", "/movies"),
    ("GET", "/movies/search"),
    ("GET", "/showtimes"),
    ("GET", "/showtimes/search"),
    ("GET", "/reservations"),
    ("GET", "/halls"),
    ("GET", "/ticket-types"),
}

# Rate-limited endpoints (429 past their limit).
RATE_LIMITED = {("POST", "/register"), ("POST", "/login"), ("POST", "/check-ins")}
