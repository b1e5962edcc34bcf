"""The report as CSV: how it is asked for, what a spreadsheet gets, and its own tag and cache."""

import csv
import io

import pytest

from conftest import assert_error, future

CSV_HEADER = [
    "showtime_id", "movie_id", "movie_title", "start_time", "day", "hall", "seats_total", "seats_booked",
    "utilization_percent", "reservations", "revenue", "cancelled_reservations", "cancelled_tickets",
    "cancelled_revenue",
    "partly_cancelled_reservations",
    "holds_created",
    "holds_confirmed",
    "hold_conversion_percent",
    "checked_in",
    "attendance_percent",
]


def get(cinema, query="", **headers):
    return cinema.client.get(f"/admin/report{query}", headers={**cinema.admin, **headers})


def csv_rows(response) -> list[list[str]]:
    """The cells as a spreadsheet reads them (after checking the bytes are what it expects)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf"), data[:10]  # UTF-8 with a byte order mark
    text = data.decode("utf-8-sig")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")  # CRLF, and only CRLF
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture
def booked(cinema):
    """Two showtimes, one with two bookings (one cancelled), priced to the cent."""
    first = cinema.showtime_with_seats(movie_id=cinema.movie(title="Amélie")["id"], price=10.05)
    second = cinema.showtime_with_seats(
        movie_id=cinema.movie(title="Heat")["id"], price=9.99, hall="Studio 2", start_time=future(days=31)
    )
    user = cinema.user()
    assert cinema.book(user, first["id"], ["A1", "A2", "A3"]).status_code == 201
    gone = cinema.book(user, first["id"], ["B1"]).json["reservation"]
    assert cinema.client.delete(f"/reservations/{gone['id']}", headers=user).status_code == 200
    return first, second


def test_format_csv_answers_the_per_showtime_rows(cinema, booked):
    first, second = booked
    response = get(cinema, "?format=csv")

    rows = csv_rows(response)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8; header=present"
    assert response.headers["Content-Disposition"] == 'attachment; filename="report.csv"'
    assert rows[0] == CSV_HEADER
    assert rows[1:] == [
        [str(first["id"]), str(first["movie_id"]), "Amélie", first["start_time"], first["start_time"][:10],
         "Main", "20", "3", "15.0", "1", "30.15", "1", "1", "10.05", "0", "0", "0", "0.0", "0", "0.0"],
        [str(second["id"]), str(second["movie_id"]), "Heat", second["start_time"], second["start_time"][:10],
         "Studio 2", "20", "0", "0.0", "0", "0.00", "0", "0", "0.00", "0", "0", "0", "0.0", "0", "0.0"],
    ]


def test_the_csv_rows_are_the_json_rows(cinema, booked):
    """Same columns and values; money as exact decimals with two places."""
    rows = csv_rows(get(cinema, "?format=csv"))
    showtimes = get(cinema).json["showtimes"]

    assert rows[0] == list(showtimes[0])
    for cells, row in zip(rows[1:], showtimes, strict=True):
        for key, cell in zip(rows[0], cells, strict=True):
            if key in ("revenue", "cancelled_revenue"):
                assert cell == f"{row[key]:.2f}"
            else:
                assert cell == str(row[key]), key


def test_accept_text_csv_asks_for_the_csv_and_format_wins(cinema, booked):
    assert csv_rows(get(cinema, Accept="text/csv"))[0] == CSV_HEADER
    assert csv_rows(get(cinema, Accept="application/json;q=0.5, text/csv"))[0] == CSV_HEADER
    assert csv_rows(get(cinema, "?format=csv", Accept="application/json"))[0] == CSV_HEADER
    for accept in ("application/json", "*/*", "text/csv;q=0.5, application/json", "text/html", None):
        headers = {"Accept": accept} if accept else {}
        response = get(cinema, **headers)
        assert response.mimetype == "application/json", accept
        assert response.json["tickets_sold"] == 3
    assert get(cinema, "?format=json", Accept="text/csv").mimetype == "application/json"


def test_the_csv_takes_the_same_filters(cinema, booked):
    first, second = booked
    assert [row[0] for row in csv_rows(get(cinema, "?format=csv&hall=studio 2"))[1:]] == [str(second["id"])]
    assert [row[0] for row in csv_rows(get(cinema, f"?format=csv&movie_id={first['movie_id']}"))[1:]] == [
        str(first["id"])
    ]
    assert csv_rows(get(cinema, "?format=csv&hall=Nowhere")) == [CSV_HEADER]  # the header alone


@pytest.mark.parametrize(
    "title, cell",
    [
        ("=HYPERLINK(\"http://evil.example\",\"click\")", "'=HYPERLINK(\"http://evil.example\",\"click\")"),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("  =1+1", "'  =1+1"),
        ("\uff1d1+1", "'\uff1d1+1"),  # full-width equals sign
        ("Heat, \"the\" film", "Heat, \"the\" film"),  # quoted by the CSV, read back whole
        ("Mission: Impossible - Fallout", "Mission: Impossible - Fallout"),
        ("'Round Midnight", "'Round Midnight"),
    ],
)
def test_titles_that_look_like_formulas_are_neutralised(cinema, title, cell):
    cinema.showtime_with_seats(movie_id=cinema.movie(title=title)["id"])
    rows = csv_rows(get(cinema, "?format=csv"))
    assert rows[1][CSV_HEADER.index("movie_title")] == cell
    assert get(cinema).json["showtimes"][0]["movie_title"] == title  # the JSON keeps the title as it is


def test_a_hall_name_that_looks_like_a_formula_is_neutralised(cinema):
    cinema.showtime_with_seats(hall="@Home")
    rows = csv_rows(get(cinema, "?format=csv"))
    assert rows[1][CSV_HEADER.index("hall")] == "'@Home"


def test_quotes_and_commas_are_quoted_in_the_bytes(cinema):
    cinema.showtime_with_seats(movie_id=cinema.movie(title='Heat, "the" film')["id"])
    data = get(cinema, "?format=csv").get_data().decode("utf-8-sig")
    assert ',"Heat, ""the"" film",' in data


def test_csv_and_json_have_their_own_tags_and_never_stand_in_for_each_other(cinema, booked):
    json_answer = get(cinema)
    csv_answer = get(cinema, "?format=csv")
    json_tag, csv_tag = json_answer.headers["ETag"], csv_answer.headers["ETag"]
    assert json_tag != csv_tag
    for answer in (json_answer, csv_answer):
        assert "Accept" in answer.headers["Vary"]
    # Both kept in the cache: each request still gets its own format, in any order.
    for _ in range(2):
        assert get(cinema, Accept="text/csv").mimetype == "text/csv"
        assert get(cinema).mimetype == "application/json"
        assert get(cinema, "?format=csv").headers["ETag"] == csv_tag
        assert get(cinema, Accept="text/csv").headers["ETag"] == csv_tag

    # A tag is a 304 only for its own format.
    assert get(cinema, "?format=csv", **{"If-None-Match": csv_tag}).status_code == 304
    assert get(cinema, Accept="text/csv", **{"If-None-Match": csv_tag}).status_code == 304
    other = get(cinema, "?format=csv", **{"If-None-Match": json_tag})
    assert other.status_code == 200 and other.mimetype == "text/csv"
    other = get(cinema, **{"If-None-Match": csv_tag})
    assert other.status_code == 200 and other.mimetype == "application/json"
    not_modified = get(cinema, **{"If-None-Match": json_tag})
    assert not_modified.status_code == 304 and "Accept" in not_modified.headers["Vary"]


def test_a_booking_changes_the_csv_and_its_tag(cinema, booked):
    first, _ = booked
    before = get(cinema, "?format=csv")
    user = cinema.user()
    assert cinema.book(user, first["id"], ["A4"]).status_code == 201
    after = get(cinema, "?format=csv")
    assert after.headers["ETag"] != before.headers["ETag"]
    assert csv_rows(after)[1][CSV_HEADER.index("seats_booked")] == "4"
    assert get(cinema, "?format=csv", **{"If-None-Match": before.headers["ETag"]}).status_code == 200


def test_the_csv_is_for_admins_only(cinema, booked):
    user = cinema.user()
    assert_error(cinema.client.get("/admin/report?format=csv", headers=user), 403)
    assert_error(cinema.client.get("/admin/report", headers={**user, "Accept": "text/csv"}), 403)
    assert_error(cinema.client.get("/admin/report?format=csv"), 401)


def test_the_documented_csv_has_the_real_header(cinema):
    spec = cinema.client.get("/openapi.json").json
    content = spec["paths"]["/admin/report"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    example = content["text/csv"]["example"]
    assert example.split("\r\n")[0].split(",") == CSV_HEADER
    assert [parameter["name"] for parameter in spec["paths"]["/admin/report"]["get"]["parameters"]] == [
        "from", "to", "movie_id", "hall", "format"
    ]


@pytest.mark.parametrize(
    "accept",
    ["text/csv;q=abc", "text/csv;q=NaN, application/json;q=0", "text/csv;q=2", ";;,,", "text/csv" + ";a=b" * 500,
     "\u00e9/\u00e9"],
)
def test_odd_accept_headers_get_an_answer_not_an_error(cinema, accept):
    response = get(cinema, Accept=accept)
    assert response.status_code == 200
    assert response.mimetype in ("application/json", "text/csv")


def test_a_hall_that_is_not_utf8_is_refused(cinema):
    assert_error(cinema.client.get("/admin/report?hall=%ED%A0%80", headers=cinema.admin), 400)
    assert_error(cinema.client.get("/admin/report?hall=%FF", headers=cinema.admin), 400)
