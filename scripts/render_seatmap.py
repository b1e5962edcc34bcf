"""Render a seat map SVG to PNG in a real headless Chromium, to see what a browser shows.

    python scripts/render_seatmap.py [--large] [--scale N] [input.svg] output.png

Without input.svg it renders a built-in sample: a 150-seat hall with two aisles,
premium back rows and two wheelchair spaces with their companion seats; --large makes
it a 1,000-seat hall (25 rows of 40) instead. Needs Debian's chromium at CHROMIUM
(default /usr/bin/chromium). docs/seatmap.png is the sample at --scale 2.
"""

import argparse
import os
import random
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import seatmap_svg  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def sample_seat_map(rows: int = 10, blocks: tuple = (3, 9, 3)) -> dict:
    """A hall of `rows` rows split by aisles into blocks of seats, with every status and type."""
    rng = random.Random(7)  # the same picture every run
    letters = [chr(ord("A") + index) if index < 26 else "A" + chr(ord("A") + index - 26) for index in range(rows)]
    seats_per_row = sum(blocks)
    columns, gaps, column = [], [], 1
    for block in blocks:
        columns += range(column, column + block)
        gaps.append(column + block)
        column += block + 1
    gaps.pop()
    body_rows = []
    for index, letter in enumerate(letters):
        seats = []
        for number, column in enumerate(columns, start=1):
            label = f"{letter}{number}"
            seat_type, price = "standard", 10.0
            if rows - 3 <= index < rows - 1:
                seat_type, price = "premium", 14.0
            if index == rows - 1 and number in (1, seats_per_row):
                seat_type = "accessible"
            if index == rows - 1 and number in (2, seats_per_row - 1):
                seat_type = "companion"
            status = "booked" if rng.random() < 0.3 else "available"
            seats.append({"label": label, "status": status, "type": seat_type, "price": price, "column": column})
        body_rows.append({"row": letter, "gaps": list(gaps), "seats": seats})
    middle = body_rows[rows // 2]["seats"]
    for seat in middle[seats_per_row // 2 - 1 : seats_per_row // 2 + 1]:
        seat["status"] = "yours"
    for seat in body_rows[2]["seats"][-5:-2]:
        seat["status"] = "held"
    for seat in body_rows[0]["seats"][:3]:
        seat["status"] = "blocked"  # kept free for the camera crew
    back_row = body_rows[rows - 1]["seats"]
    back_row[0]["status"] = back_row[1]["status"] = "booked"
    back_row[-1]["status"] = back_row[-2]["status"] = "available"
    every_seat = [seat for row in body_rows for seat in row["seats"]]
    return {
        "showtime_id": 7,
        "movie_title": "Inception",
        "start_time": "2026-12-10T19:00:00+01:00",
        "hall": "Main",
        "price": 10.0,
        "seats_total": len(every_seat),
        "seats_available": sum(seat["status"] == "available" for seat in every_seat),
        "rows": body_rows,
    }


def screenshot(svg: str, output: str, scale: float = 1) -> None:
    """Open the SVG as its own document in Chromium and save the page as a PNG."""
    # Imported here so that bench/seatmap_svg.py can borrow the sample without a browser.
    from playwright.sync_api import sync_playwright

    root = ET.fromstring(svg)
    width, height = (int(float(root.get(name))) for name in ("width", "height"))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "seatmap.svg")
        with open(path, "w", encoding="utf-8") as file:
            file.write(svg)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale)
            page.goto(f"file://{path}")
            page.screenshot(path=output, clip={"x": 0, "y": 0, "width": width, "height": height})
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="[input.svg] output.png")
    parser.add_argument("--large", action="store_true", help="the built-in 1,000-seat hall")
    parser.add_argument("--scale", type=float, default=1, help="device pixels per CSS pixel (2 for a sharper PNG)")
    arguments = parser.parse_args()
    if len(arguments.paths) > 2:
        parser.error("give at most an input SVG and an output PNG")
    *source, output = arguments.paths
    if source:
        with open(source[0], encoding="utf-8") as file:
            svg = file.read()
    else:
        seat_map = sample_seat_map(25, (4, 32, 4)) if arguments.large else sample_seat_map()
        svg = seatmap_svg.render(seat_map, local_start="2026-12-10 19:00")
    screenshot(svg, output, arguments.scale)
    print(f"{output}: {os.path.getsize(output):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
