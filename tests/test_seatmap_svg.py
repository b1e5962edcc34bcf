"""The seat map SVG: well-formed, one named image per seat, aisles, escaping, a legend, no colour needed."""

import itertools
import re
import xml.etree.ElementTree as ET

import pytest

import seatmap_svg
from seatmap_svg import CELL, SEAT_TYPES, STATUSES

SVG = "{http://www.w3.org/2000/svg}"
PRICES = (10.0, 12.5, 14.0)


def seat_map(rows: int, seats_per_row: int, gaps=(), title="Inception") -> dict:
    """A hall of rows × seats; statuses, types and prices cycle so every one appears; gaps are aisles."""
    # Cycles of 5, 4 and 3: any 60 seats in a row have every combination.
    kinds = zip(itertools.cycle(STATUSES), itertools.cycle(SEAT_TYPES), itertools.cycle(PRICES))
    columns = [column for column in range(1, seats_per_row + len(gaps) + 1) if column not in gaps]
    body_rows = []
    for index in range(rows):
        letter = chr(ord("A") + index) if index < 26 else "A" + chr(ord("A") + index - 26)
        seats = []
        for number, column in enumerate(columns, start=1):
            status, seat_type, price = next(kinds)
            seats.append(
                {"label": f"{letter}{number}", "status": status, "type": seat_type, "price": price, "column": column}
            )
        body_rows.append({"row": letter, "gaps": list(gaps), "seats": seats})
    every_seat = [seat for row in body_rows for seat in row["seats"]]
    return {
        "showtime_id": 7,
        "movie_title": title,
        "start_time": "2026-12-10T19:00:00+01:00",
        "hall": "Main",
        "price": 10.0,
        "seats_total": len(every_seat),
        "seats_available": sum(seat["status"] == "available" for seat in every_seat),
        "rows": body_rows,
    }


SMALL = seat_map(2, 5, gaps=(3,))  # 10 seats: A1 A2 | A3 A4 A5
LARGE = seat_map(25, 40, gaps=(11, 32))  # 1,000 seats, two aisles


def render(body: dict) -> ET.Element:
    return ET.fromstring(seatmap_svg.render(body, local_start="2026-12-10 19:00"))


def seat_groups(root: ET.Element) -> list:
    return [group for group in root.iter(f"{SVG}g") if "data-label" in group.attrib]


def x_of(group: ET.Element) -> float:
    return float(re.fullmatch(r"translate\(([\d.]+) ([\d.]+)\)", group.get("transform")).group(1))


def seats_of(body: dict) -> list:
    return [(row["row"], seat) for row in body["rows"] for seat in row["seats"]]


@pytest.mark.parametrize("body", [SMALL, LARGE], ids=["10 seats", "1000 seats"])
def test_one_named_image_per_seat(body):
    root = render(body)
    groups = seat_groups(root)
    assert len(groups) == body["seats_total"]
    for group, (row, seat) in zip(groups, seats_of(body)):
        price = {10.0: "$10", 12.5: "$12.50", 14.0: "$14"}[seat["price"]]
        name = f"Row {row} seat {seat['label'][len(row):]}, {seat['type']}, {seat['status']}, {price}"
        assert group.get("role") == "img"
        assert group.get("aria-label") == name
        assert group.find(f"{SVG}title").text == name
        assert group.get("data-label") == seat["label"]
        assert group.get("data-status") == seat["status"]
        assert group.get("data-type") == seat["type"]


def test_every_status_and_type_is_drawn_and_named():
    groups = seat_groups(render(LARGE))
    assert {group.get("data-status") for group in groups} == set(STATUSES)
    assert {group.get("data-type") for group in groups} == set(SEAT_TYPES)
    assert [group.get("aria-label") for group in groups[:3]] == [
        "Row A seat 1, standard, available, $10",
        "Row A seat 2, premium, booked, $12.50",
        "Row A seat 3, accessible, yours, $14",
    ]


def test_title_time_and_hall_are_the_documents_title_and_its_heading():
    root = render(SMALL)
    assert root.find(f"{SVG}title").text == "Inception · 2026-12-10 19:00 · Main"
    texts = [text.text for text in root.iter(f"{SVG}text")]
    assert "Inception" in texts
    assert "2026-12-10 19:00 · Main · 2 of 10 seats available" in texts
    assert "SCREEN" in texts


def test_rows_are_labelled_at_both_ends():
    root = render(SMALL)
    labels = [text.text for text in root.iter(f"{SVG}text") if text.get("class") == "row"]
    assert labels == ["A", "A", "B", "B"]


@pytest.mark.parametrize("body, aisles", [(SMALL, (3,)), (LARGE, (11, 32))], ids=["10 seats", "1000 seats"])
def test_gaps_leave_empty_columns(body, aisles):
    groups = iter(seat_groups(render(body)))
    for row in body["rows"]:
        xs = [x_of(next(groups)) for _ in row["seats"]]
        steps = [round(later - earlier) for earlier, later in zip(xs, xs[1:])]
        # Within a block seats are a cell apart; across an aisle, two cells.
        assert sorted(set(steps)) == [CELL, 2 * CELL]
        assert steps.count(2 * CELL) == len(aisles)
        occupied = {round((x - xs[0]) / CELL) + 1 for x in xs}
        assert occupied.isdisjoint(aisles)


def test_seat_positions_follow_their_columns():
    body = seat_map(1, 4)
    body["rows"][0]["gaps"] = [2, 3, 4]
    for seat, column in zip(body["rows"][0]["seats"], (1, 5, 6, 9)):
        seat["column"] = column
    xs = [x_of(group) for group in seat_groups(render(body))]
    assert [round(x - xs[0]) for x in xs] == [0, 4 * CELL, 5 * CELL, 8 * CELL]


def test_text_is_escaped():
    body = seat_map(2, 3, title='<Tom & "Jerry">')
    body["hall"] = "Hall <2> & 'Annex'"
    body["rows"][0]["row"] = 'A"'
    body["rows"][0]["seats"][0]["label"] = 'A"1'
    svg = seatmap_svg.render(body, local_start="2026-12-10 <19:00>")
    assert "<Tom" not in svg and "<2>" not in svg and "<19:00>" not in svg
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == "<Tom & \"Jerry\"> · 2026-12-10 <19:00> · Hall <2> & 'Annex'"
    assert '<Tom & "Jerry">' in [text.text for text in root.iter(f"{SVG}text")]
    first = seat_groups(root)[0]
    assert first.get("data-label") == 'A"1'
    assert first.get("aria-label") == 'Row A" seat 1, standard, available, $10'


def test_characters_xml_forbids_are_dropped():
    root = render(seat_map(1, 2, title="Bad\x00\x1bTitle"))
    assert root.find(f"{SVG}title").text == "BadTitle · 2026-12-10 19:00 · Main"


def test_legend_lists_every_status_and_type():
    root = render(SMALL)
    legend = next(group for group in root.iter(f"{SVG}g") if group.get("class") == "legend")
    texts = [text.text for text in legend.iter(f"{SVG}text")]
    for status in STATUSES:
        assert seatmap_svg.STATUS_NAMES[status] in texts
    # A1..B5 have types standard, premium, accessible, companion, standard, ... at $10, $12.50, $14, $10, ...
    assert [text for text in texts if text.startswith(tuple(seatmap_svg.TYPE_NAMES.values()))] == [
        "Standard $10–$14",
        "Premium $10–$14",
        "Wheelchair space $10–$14",
        "Companion seat $10–$12.50",
    ]


def test_legend_names_a_missing_type_without_a_price():
    body = seat_map(1, 2)
    for seat in body["rows"][0]["seats"]:
        seat["type"], seat["price"] = "standard", 10.0
    texts = [text.text for text in render(body).iter(f"{SVG}text")]
    assert "Standard $10" in texts and "Premium" in texts and "Companion seat" in texts


def uses(group: ET.Element) -> list:
    return [use.get("href") for use in group.iter(f"{SVG}use")]


def without_colour(element: ET.Element) -> str:
    """The drawing's markup with every colour taken out: what is left is shape and pattern."""
    copy = ET.fromstring(ET.tostring(element))
    for node in copy.iter():
        for name in ("fill", "stroke", "color", "stop-color"):
            if node.get(name, "").startswith("#"):
                del node.attrib[name]
        node.attrib.pop("id", None)
    return ET.tostring(copy, encoding="unicode")


def test_statuses_differ_without_colour():
    root = render(LARGE)
    by_status = {}
    for group in seat_groups(root):
        by_status.setdefault(group.get("data-status"), set()).add(uses(group)[0])
    # One drawing per status, each one its own.
    assert all(len(drawings) == 1 for drawings in by_status.values())
    drawings = [drawings.pop() for drawings in by_status.values()]
    assert len(set(drawings)) == len(STATUSES)
    definitions = {element.get("id"): element for element in root.find(f"{SVG}defs")}
    shapes = {without_colour(definitions[href[1:]]) for href in drawings}
    assert len(shapes) == len(STATUSES)


def test_types_have_a_mark_of_their_own():
    root = render(LARGE)
    marks = {}
    for group in seat_groups(root):
        marks.setdefault(group.get("data-type"), set()).add(tuple(uses(group)[1:]))
    assert marks["standard"] == {()}
    free, taken = ("#seatmap-wheelchair",), ("#seatmap-accessible-badge",)
    assert marks["accessible"] == {free, taken}
    assert marks["companion"] == {("#seatmap-letter-c",), ("#seatmap-companion-badge",)}
    assert marks["premium"] == {("#seatmap-premium",)}


def test_free_seats_show_their_number():
    numbers = {
        group.get("data-label"): group.find(f"{SVG}text").text
        for group in seat_groups(render(SMALL))
        if group.find(f"{SVG}text") is not None
    }
    free_numbered = [
        seat["label"]
        for _, seat in seats_of(SMALL)
        if seat["status"] in ("available", "held") and seat["type"] in ("standard", "premium")
    ]
    assert sorted(numbers) == sorted(free_numbered)
    assert all(numbers[label] == label[1:] for label in numbers)


@pytest.mark.parametrize("columns", [5, 42, 120])
def test_fits_a_window_and_seats_stay_legible(columns):
    root = render(seat_map(3, columns))
    width, height = float(root.get("width")), float(root.get("height"))
    _, _, view_width, view_height = (float(number) for number in root.get("viewBox").split())
    cell_pixels = CELL * width / view_width
    # Shrunk to fit 1,280 px, but never below 14 px a seat cell.
    assert width <= 1280 or cell_pixels == pytest.approx(14, abs=0.05)
    assert cell_pixels >= 13.95
    assert height / width == pytest.approx(view_height / view_width, rel=0.01)


def test_the_same_input_gives_the_same_document():
    assert seatmap_svg.render(LARGE, local_start="x") == seatmap_svg.render(LARGE, local_start="x")


def test_prices_are_dollars_without_trailing_zeros():
    body = seat_map(1, 3)
    for seat, price in zip(body["rows"][0]["seats"], (14, 12.5, 0.05)):
        seat["price"] = price
    names = [group.get("aria-label").rsplit(", ", 1)[1] for group in seat_groups(render(body))]
    assert names == ["$14", "$12.50", "$0.05"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"status": "sold"}, "unknown status 'sold'"),
        ({"type": "sofa"}, "unknown type 'sofa'"),
        ({"column": 3}, "column 3 is not a free column of row A"),
        ({"column": 2}, "column 2 is not a free column of row A"),
        ({"column": 0}, "column 0 is not a free column of row A"),
    ],
)
def test_a_seat_the_picture_cannot_show_is_refused(change, message):
    body = seat_map(1, 3, gaps=(3,))  # A1 at 1, A2 at 2, A3 at 4
    body["rows"][0]["seats"][0].update(change)
    with pytest.raises(ValueError, match=re.escape(message)):
        seatmap_svg.render(body, local_start="2026-12-10 19:00")


def test_an_empty_hall_still_draws_the_screen_and_legend():
    body = seat_map(0, 0)
    root = render(body)
    assert seat_groups(root) == []
    assert "SCREEN" in [text.text for text in root.iter(f"{SVG}text")]
