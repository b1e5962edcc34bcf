"""A showtime's seat map as a standalone SVG picture: the screen, the rows of seats, a legend.

``render(seat_map, local_start=...)`` takes the body of GET /showtimes/<id>/seats and
returns the document as text. Each seat's status is told by its shape or pattern and
its type by a mark, colour only repeating them, so the picture reads the same without
colour vision; every seat is an image with a spoken name ("Row F seat 7, premium,
available, $14"). No fonts, scripts or images are fetched: the marks are drawn paths.
"""

import re
from xml.sax.saxutils import escape, quoteattr

STATUSES = ("available", "booked", "yours", "blocked", "held")
SEAT_TYPES = ("standard", "premium", "accessible", "companion")

STATUS_NAMES = {
    "available": "Available",
    "booked": "Booked",
    "yours": "Your seats",
    "blocked": "Not for sale",
    "held": "On hold",
}
TYPE_NAMES = {
    "standard": "Standard",
    "premium": "Premium",
    "accessible": "Wheelchair space",
    "companion": "Companion seat",
}

CELL = 30  # one grid column (and row) in user units; the seat is drawn 26 wide inside it
SEAT_OFFSET = 2
MARGIN = 24
ROW_LABEL_WIDTH = 36
MIN_CONTENT_WIDTH = 720  # room for the legend however small the hall
MAX_DISPLAY_WIDTH = 1280  # the natural width a browser window is given
MIN_SCALE = 14 / CELL  # no seat cell smaller than 14 px at the natural size
NUMBERS_MIN_SCALE = 0.7  # below this the seat numbers would be too small to read
READABLE_SCALE = 0.8  # below this the words grow (up to twice) to stay readable as the seats shrink
LEGEND_LINE = 34

# Characters XML 1.0 forbids even when escaped; a title containing one would break the document.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

SEAT_STYLE = (
    ".n{font-size:10px;font-weight:600;fill:currentColor;text-anchor:middle}"
    ".n3{font-size:8px}"
    ".available{color:#0b4f8a}"
    ".held{color:#7a4b00}"
    ".heading{font-size:13px;font-weight:700;fill:#1b1f24}"
    ".key{font-size:13px;fill:#2d333b}"
)

# One drawing per status and per type mark, defined once and placed with <use>: the
# status is the seat's body (outline, fill, glyph, pattern), the type a mark on top.
DEFS = (
    "<defs>"
    '<pattern id="seatmap-hatch" width="5" height="5" patternUnits="userSpaceOnUse"'
    ' patternTransform="rotate(45)">'
    '<rect width="5" height="5" fill="#eef0f2"/>'
    '<rect width="2" height="5" fill="#8a949e"/>'
    "</pattern>"
    '<pattern id="seatmap-dots" width="5" height="5" patternUnits="userSpaceOnUse">'
    '<rect width="5" height="5" fill="#fff6e3"/>'
    '<circle cx="2.5" cy="2.5" r="0.9" fill="#e2a93a"/>'
    "</pattern>"
    '<linearGradient id="seatmap-light" x1="0" y1="0" x2="0" y2="1">'
    '<stop offset="0" stop-color="#cfd8e3" stop-opacity="0.55"/>'
    '<stop offset="1" stop-color="#cfd8e3" stop-opacity="0"/>'
    "</linearGradient>"
    '<g id="seatmap-available">'
    '<rect x="1" y="1" width="24" height="24" rx="6" fill="#ffffff" stroke="#1f6fb5" stroke-width="2"/>'
    "</g>"
    '<g id="seatmap-booked">'
    '<rect x="1" y="1" width="24" height="24" rx="6" fill="#c9d0d6" stroke="#8e98a2" stroke-width="1.5"/>'
    '<path d="M8.5 9.5 17.5 18.5M17.5 9.5 8.5 18.5" stroke="#4d5661" stroke-width="2.6"'
    ' stroke-linecap="round"/>'
    "</g>"
    '<g id="seatmap-yours">'
    '<rect x="1" y="1" width="24" height="24" rx="6" fill="#00845f" stroke="#005a40" stroke-width="1.5"/>'
    '<path d="M7.5 14 11.5 18 19 9.5" fill="none" stroke="#ffffff" stroke-width="3"'
    ' stroke-linecap="round" stroke-linejoin="round"/>'
    "</g>"
    '<g id="seatmap-blocked">'
    '<rect x="1" y="1" width="24" height="24" rx="6" fill="url(#seatmap-hatch)" stroke="#6b7580"'
    ' stroke-width="1.5"/>'
    "</g>"
    '<g id="seatmap-held">'
    '<rect x="1" y="1" width="24" height="24" rx="6" fill="url(#seatmap-dots)" stroke="#c77800"'
    ' stroke-width="2" stroke-dasharray="4 2.5"/>'
    "</g>"
    # Premium: a band with a crown across the seat's top edge.
    '<g id="seatmap-premium">'
    '<path d="M1 8V7A6 6 0 0 1 7 1H19A6 6 0 0 1 25 7V8Z" fill="#9b3f8f"/>'
    '<path d="M9.6 7 9 2.6 11.3 4.5 13 2 14.7 4.5 17 2.6 16.4 7Z" fill="#ffffff"/>'
    "</g>"
    # Accessible and companion: the wheelchair symbol or a letter C, drawn in the colour of
    # the <use> that places them: big in a free seat's middle, else on a corner badge.
    '<g id="seatmap-wheelchair" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"'
    ' stroke-linejoin="round">'
    '<circle cx="11" cy="5.2" r="2" fill="currentColor" stroke="none"/>'
    '<path d="M11 8.5V14H16.5L18.5 19.5M11 11H15.5M8.6 12.4A4.9 4.9 0 1 0 15.8 19"/>'
    "</g>"
    '<g id="seatmap-letter-c" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round">'
    '<path d="M16.3 9.5A5.2 5.2 0 1 0 16.3 17.5"/>'
    "</g>"
    '<g id="seatmap-accessible-badge">'
    '<circle cx="22" cy="4" r="7.5" fill="#1d4f91" stroke="#ffffff" stroke-width="1.2"/>'
    '<use href="#seatmap-wheelchair" color="#ffffff" transform="translate(22 4) scale(0.52) translate(-12.5 -12.5)"/>'
    "</g>"
    '<g id="seatmap-companion-badge">'
    '<circle cx="22" cy="4" r="7.5" fill="#6b4f12" stroke="#ffffff" stroke-width="1.2"/>'
    '<use href="#seatmap-letter-c" color="#ffffff" transform="translate(22 4) scale(0.62) translate(-12.5 -13.5)"/>'
    "</g>"
    "</defs>"
)

BODY = {status: f'<use href="#seatmap-{status}"/>' for status in STATUSES}
# A free seat (available or on hold) shows its number, or its type's symbol, in the middle;
# the others have a cross, a tick or hatching there, so their symbol moves to a badge.
FREE = ("available", "held")
MARK_FREE = {
    "standard": "",
    "premium": '<use href="#seatmap-premium"/>',
    "accessible": '<use href="#seatmap-wheelchair"/>',
    "companion": '<use href="#seatmap-letter-c"/>',
}
MARK_TAKEN = {
    "standard": "",
    "premium": '<use href="#seatmap-premium"/>',
    "accessible": '<use href="#seatmap-accessible-badge"/>',
    "companion": '<use href="#seatmap-companion-badge"/>',
}
NUMBERED_TYPES = ("standard", "premium")


def render(seat_map: dict, *, local_start: str) -> str:
    """The seat map as a standalone SVG document (UTF-8 text)."""
    rows = seat_map["rows"]
    columns = max((_row_extent(row) for row in rows), default=1)
    grid_width = columns * CELL
    row_width = grid_width + 2 * ROW_LABEL_WIDTH
    content_width = max(row_width, MIN_CONTENT_WIDTH)
    natural_width = content_width + 2 * MARGIN
    scale = max(MIN_SCALE, min(1.0, MAX_DISPLAY_WIDTH / natural_width))

    zoom = max(1.0, min(2.0, READABLE_SCALE / scale))

    title = _clean(seat_map["movie_title"])
    hall = _clean(seat_map["hall"])
    local_start = _clean(local_start)
    counts = f"{seat_map['seats_available']} of {seat_map['seats_total']} seats available"
    heading = f"{title} · {local_start} · {hall}"

    center = MARGIN + content_width // 2
    grid_left = MARGIN + (content_width - row_width) // 2 + ROW_LABEL_WIDTH
    screen_top = MARGIN + round(66 * zoom)
    grid_top = screen_top + round(58 * zoom)
    grid_bottom = grid_top + len(rows) * CELL
    legend = _legend_lines(rows, content_width / zoom)
    legend_top = grid_bottom + round(30 * zoom)
    height = legend_top + round(len(legend) * LEGEND_LINE * zoom) + MARGIN

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" xml:lang="en" width="{round(natural_width * scale)}"'
        f' height="{round(height * scale)}" viewBox="0 0 {natural_width} {height}"'
        ' aria-labelledby="seatmap-title seatmap-desc">',
        f'<title id="seatmap-title">{escape(heading)}</title>',
        f'<desc id="seatmap-desc">{escape(counts)}</desc>',
        f"<style>{_style(zoom)}{SEAT_STYLE}</style>",
        DEFS,
        f'<rect width="{natural_width}" height="{height}" fill="#ffffff"/>',
        f'<text class="title" x="{center}" y="{MARGIN + round(22 * zoom)}" text-anchor="middle">'
        f"{escape(_fit(title, content_width, 22 * zoom))}</text>",
        f'<text class="sub" x="{center}" y="{MARGIN + round(46 * zoom)}" text-anchor="middle">'
        f"{escape(_fit(f'{local_start} · {hall} · {counts}', content_width, 14 * zoom))}</text>",
    ]
    _screen(parts, grid_left, grid_left + grid_width, screen_top, grid_top, zoom)
    _rows(parts, rows, grid_left, grid_top, grid_width, show_numbers=scale >= NUMBERS_MIN_SCALE)
    _legend(parts, legend, center, legend_top, zoom)
    parts.append("</svg>\n")
    return "".join(parts)


def _style(zoom: float) -> str:
    """The words' styles, their sizes grown by zoom."""
    return (
        "text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif}"
        f".title{{font-size:{22 * zoom:.1f}px;font-weight:700;fill:#1b1f24}}"
        f".sub{{font-size:{14 * zoom:.1f}px;fill:#4a5360}}"
        f".screen{{font-size:{12 * zoom:.1f}px;font-weight:700;letter-spacing:{6 * zoom:.1f}px;fill:#ffffff}}"
        # Row labels only grow as far as their column has room for two letters.
        f".row{{font-size:{min(13 * zoom, 18):.1f}px;font-weight:700;fill:#59626e}}"
    )


def _row_extent(row: dict) -> int:
    """The last grid column a row uses, seat or gap."""
    return max([seat["column"] for seat in row["seats"]] + list(row.get("gaps", ())), default=1)


def _screen(parts: list, left: int, right: int, top: int, grid_top: int, zoom: float) -> None:
    """The screen: a band curved round the audience, and its light falling on the seats."""
    middle = (left + right) // 2
    bend, edge, bottom = round(8 * zoom), round(30 * zoom), round(14 * zoom)
    inset = min(24, (right - left) // 4)
    parts.append(
        f'<path d="M{left} {top + edge}L{left + inset} {grid_top - 6}H{right - inset}L{right} {top + edge}Z"'
        ' fill="url(#seatmap-light)"/>'
        f'<path d="M{left} {top + bend}Q{middle} {top - bend} {right} {top + bend}V{top + edge}'
        f'Q{middle} {top + bottom} {left} {top + edge}Z" fill="#3c4753"/>'
        f'<text class="screen" x="{middle}" y="{top + round(16 * zoom)}" text-anchor="middle">SCREEN</text>'
    )


def _rows(parts: list, rows: list, grid_left: int, grid_top: int, grid_width: int, show_numbers: bool) -> None:
    """Every row: its label at both ends and each seat at its grid column."""
    label_left = grid_left - ROW_LABEL_WIDTH // 2
    label_right = grid_left + grid_width + ROW_LABEL_WIDTH // 2
    for index, row in enumerate(rows):
        top = grid_top + index * CELL
        row_name = _clean(row["row"])
        row_text = escape(row_name)
        parts.append(
            f'<text class="row" x="{label_left}" y="{top + 20}" text-anchor="middle" aria-hidden="true">'
            f'{row_text}</text><text class="row" x="{label_right}" y="{top + 20}" text-anchor="middle"'
            f' aria-hidden="true">{row_text}</text>'
        )
        gaps = set(row.get("gaps", ()))
        taken = set()
        for seat in row["seats"]:
            column, status, seat_type = seat["column"], seat["status"], seat["type"]
            if status not in STATUSES:
                raise ValueError(f"Seat {seat['label']}: unknown status {status!r}")
            if seat_type not in SEAT_TYPES:
                raise ValueError(f"Seat {seat['label']}: unknown type {seat_type!r}")
            if not isinstance(column, int) or column < 1 or column in gaps or column in taken:
                raise ValueError(f"Seat {seat['label']}: column {column!r} is not a free column of row {row_name}")
            taken.add(column)
            label = _clean(seat["label"])
            number = label[len(row_name) :] if label.startswith(row_name) and label != row_name else label
            name = f"Row {row_name} seat {number}, {seat_type}, {status}, {_dollars(seat['price'])}"
            # Status and type were checked against the known names, so they go in as they are.
            parts.append(
                f'<g class="seat {status}" role="img" aria-label={quoteattr(name)} data-label={quoteattr(label)}'
                f' data-status="{status}" data-type="{seat_type}"'
                f' transform="translate({grid_left + (column - 1) * CELL + SEAT_OFFSET} {top + SEAT_OFFSET})">'
                f"<title>{escape(name)}</title>{BODY[status]}"
                f"{(MARK_FREE if status in FREE else MARK_TAKEN)[seat_type]}"
            )
            if show_numbers and status in FREE and seat_type in NUMBERED_TYPES and len(number) <= 3:
                size = " n3" if len(number) == 3 else ""
                # Below a premium band the seat's free middle is lower.
                baseline = 20.5 if seat_type == "premium" else 17
                parts.append(f'<text class="n{size}" x="13" y="{baseline}">{escape(number)}</text>')
            parts.append("</g>")


def _legend_lines(rows: list, width: float) -> list:
    """The legend's lines: each group's heading, then its items, wrapped to the width.

    A line is a list of items (drawing, text, width); a heading's drawing is None.
    """
    prices = {}
    for row in rows:
        for seat in row["seats"]:
            prices.setdefault(seat["type"], set()).add(round(seat["price"] * 100))
    groups = [
        ("Status", [(BODY[status], STATUS_NAMES[status]) for status in STATUSES]),
        ("Type", [(BODY["available"] + MARK_FREE[kind], _type_key(kind, prices.get(kind))) for kind in SEAT_TYPES]),
    ]
    indent = max(_text_width(heading, 13) for heading, _ in groups) + 16
    lines = []
    for heading, items in groups:
        line, used = [(None, heading, indent)], indent
        for drawing, text in items:
            item_width = 34 + _text_width(text, 13) + 22
            if used + item_width > width and used > indent:
                lines.append(line)
                line, used = [(None, "", indent)], indent
            line.append((drawing, text, item_width))
            used += item_width
        lines.append(line)
    return lines


def _legend(parts: list, lines: list, center: int, top: int, zoom: float) -> None:
    """The legend as a block centred under the seats; its drawings are hidden from screen readers."""
    block_width = max(sum(item[2] for item in line) for line in lines)
    left = center - round(block_width * zoom / 2)
    zoomed = f" scale({zoom:.3f})" if zoom != 1 else ""
    parts.append(f'<g class="legend" transform="translate({left} {top}){zoomed}">')
    for index, line in enumerate(lines):
        x, y = 0, index * LEGEND_LINE
        for drawing, text, item_width in line:
            if drawing is None:
                if text:
                    parts.append(f'<text class="heading" x="{x}" y="{y + 18}">{escape(text)}</text>')
            else:
                # Drawn as an available seat is: its wheelchair and C take that seat's colour.
                parts.append(
                    f'<g class="available" transform="translate({x} {y})" aria-hidden="true">{drawing}</g>'
                    f'<text class="key" x="{x + 34}" y="{y + 18}">{escape(text)}</text>'
                )
            x += item_width
    parts.append("</g>")


def _type_key(seat_type: str, cents: set | None) -> str:
    """A seat type's legend text, with its price or price range when the hall has such seats."""
    name = TYPE_NAMES[seat_type]
    if not cents:
        return name
    low, high = min(cents), max(cents)
    if low == high:
        return f"{name} {_dollars(low / 100)}"
    return f"{name} {_dollars(low / 100)}–{_dollars(high / 100)}"


def _dollars(price: float) -> str:
    """$14 for whole dollars, $12.50 otherwise."""
    cents = round(price * 100)
    if cents % 100 == 0:
        return f"${cents // 100}"
    return f"${cents // 100}.{cents % 100:02d}"


def _clean(value) -> str:
    """The value as text XML can hold: characters it forbids outright are dropped."""
    return NOT_XML.sub("", str(value))


def _text_width(text: str, size: float) -> float:
    """A generous estimate of a text's width: there are no font metrics to measure with."""
    return round(len(text) * size * 0.55)


def _fit(text: str, width: float, size: float) -> str:
    """The text, cut with an ellipsis when it would not fit the width (the <title> keeps it whole)."""
    # Wider per character than _text_width: a bold title in capitals runs wide.
    room = int(width / (size * 0.62))
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"
