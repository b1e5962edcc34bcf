"""Seat plans: the JSON an admin types for a hall, checked and expanded into seats.

A plan is a list of row blocks, then exceptions::

    {
      "rows": [
        {"rows": "A-H", "seats": 14, "aisles": [4, 10]},
        {"rows": "J-K", "seats": 14, "aisles": [4, 10], "type": "premium"}
      ],
      "seat_types": {"A1-A2": "accessible", "A3-A4": "companion"},
      "no_seats": ["E7", "E8"],
      "preferred_row": "G"
    }

- ``rows``: blocks of rows that share a length. ``rows`` is a range of row letters in
  spreadsheet order (``"A-J"``, ``"Y-AB"``), one row (``"K"``) or a list; ``seats`` is
  1-100 seats per row, numbered from 1 left to right as seen from the screen; ``aisles``
  puts a gap after those seat numbers; ``type`` is the seat type of the whole block
  (``standard`` when left out). A row may be in one block only; rows are listed front
  (nearest the screen) to back in the order the blocks give them.
- ``seat_types``: a seat (``"A1"``) or a range within a row (``"A1-A4"``) and its type;
  a seat may be named once.
- ``no_seats``: seats that do not exist (a pillar, a wheelchair space without a seat
  goes in ``seat_types`` as ``accessible`` instead); their place stays empty and the
  numbers of the others do not move.
- ``preferred_row``: where best-available seats are sought first (by default a row
  three fifths of the way back).

``expand(plan)`` returns the seats ``(label, row, number, column, type)``, where column
counts the aisle gaps too, so a frontend can draw the real plan. It raises
``PlanError`` with every problem it finds.
"""

import re

SEAT_TYPES = ("standard", "premium", "accessible", "companion")
MAX_SEATS_PER_ROW = 100
MAX_SEATS_PER_HALL = 2000
MAX_BLOCKS = 100
# seat_types and no_seats entries: more than any hall needs, few enough to check fast.
MAX_ENTRIES = 2000

ROW_LETTERS_RE = re.compile(r"^[A-Z]{1,2}\Z")
ROW_SPAN_RE = re.compile(r"^([A-Z]{1,2})\s*-\s*([A-Z]{1,2})\Z")
SEAT_SPAN_RE = re.compile(r"^([A-Z]{1,2})([1-9][0-9]{0,2})(?:\s*-\s*(?:\1)?([1-9][0-9]{0,2}))?\Z")


class PlanError(ValueError):
    """A plan that cannot be built; ``problems`` lists each reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def row_index(row: str) -> int:
    """Spreadsheet order: A=1 ... Z=26, AA=27 ..."""
    index = 0
    for letter in row:
        index = index * 26 + ord(letter) - 64
    return index


def row_name(index: int) -> str:
    name = ""
    while index:
        index, remainder = divmod(index - 1, 26)
        name = chr(65 + remainder) + name
    return name


def rows_of(value) -> list[str]:
    """ "A-C" -> ["A", "B", "C"]; "K" -> ["K"]; ["a", "AA"] -> ["A", "AA"]."""
    if isinstance(value, str):
        text = value.strip().upper()
        if ROW_LETTERS_RE.match(text):
            return [text]
        match = ROW_SPAN_RE.match(text)
        if not match:
            raise PlanError([f'{value!r} is not a row or a range of rows like "A-J".'])
        first, last = row_index(match.group(1)), row_index(match.group(2))
        if first > last:
            raise PlanError([f"The row range {value!r} runs backwards."])
        return [row_name(index) for index in range(first, last + 1)]
    if isinstance(value, list) and value and all(isinstance(row, str) for row in value):
        rows = [row.strip().upper() for row in value]
        bad = [row for row in rows if not ROW_LETTERS_RE.match(row)]
        if bad:
            raise PlanError([f"Rows are one or two letters, not {', '.join(map(repr, bad))}."])
        return rows
    raise PlanError(['"rows" is a row, a range like "A-J", or a list of rows.'])


def seats_of(value: str) -> list[tuple[str, int]]:
    """ "A3" -> [("A", 3)]; "a1-a4" or "A1-4" -> [("A", 1) ... ("A", 4)]."""
    match = SEAT_SPAN_RE.match(value.strip().upper()) if isinstance(value, str) else None
    if not match:
        raise PlanError([f'{value!r} is not a seat like "A7" or a range like "A1-A4".'])
    row, first = match.group(1), int(match.group(2))
    last = int(match.group(3) or first)
    if first > last:
        raise PlanError([f"The seat range {value!r} runs backwards."])
    return [(row, number) for number in range(first, last + 1)]


def expand(plan) -> list[tuple[str, str, int, int, str]]:
    """The seats of ``plan``, front row first, left to right; PlanError when it is wrong."""
    if not isinstance(plan, dict) or not isinstance(plan.get("rows"), list) or not plan["rows"]:
        raise PlanError(['A plan needs "rows": a list of row blocks.'])
    unknown_keys = set(plan) - {"rows", "seat_types", "no_seats", "preferred_row"}
    if unknown_keys:
        raise PlanError([f"Unknown plan fields: {', '.join(sorted(unknown_keys))}."])
    if len(plan["rows"]) > MAX_BLOCKS:
        raise PlanError([f"At most {MAX_BLOCKS} row blocks."])
    for key in ("seat_types", "no_seats"):
        if len(plan.get(key) or ()) > MAX_ENTRIES:
            raise PlanError([f"At most {MAX_ENTRIES} entries in {key}."])
    problems = []
    layout = {}  # row -> (seats, aisles, type), in plan order
    for position, block in enumerate(plan["rows"], start=1):
        try:
            layout_block(block, position, layout)
        except PlanError as error:
            problems.extend(error.problems)
    if problems:
        raise PlanError(problems)
    if "preferred_row" in plan and plan["preferred_row"] not in layout:
        problems.append(f"preferred_row {plan['preferred_row']!r} is not a row of the plan.")
    types = {(row, number): spec[2] for row, spec in layout.items() for number in range(1, spec[0] + 1)}
    total = len(types)
    if total > MAX_SEATS_PER_HALL:
        raise PlanError([f"A hall has at most {MAX_SEATS_PER_HALL} seats; this plan has {total}."])
    missing = set()
    for entry in listed(plan, "no_seats", problems):
        for seat in seats_in_plan(entry, types, problems):
            if seat in missing:
                problems.append(f"{label(seat)} is in no_seats twice.")
            missing.add(seat)
    typed = set()
    overrides = plan.get("seat_types", {})
    if not isinstance(overrides, dict):
        problems.append('"seat_types" maps seats or ranges like "A1-A4" to a seat type.')
        overrides = {}
    for entry, seat_type in overrides.items():
        if seat_type not in SEAT_TYPES:
            problems.append(f"{entry}: unknown seat type {seat_type!r} (one of {', '.join(SEAT_TYPES)}).")
            continue
        for seat in seats_in_plan(entry, types, problems):
            if seat in typed:
                problems.append(f"{label(seat)} is given a type twice in seat_types.")
            elif seat in missing:
                problems.append(f"{label(seat)} is in no_seats and in seat_types.")
            typed.add(seat)
            types[seat] = seat_type
    if problems:
        raise PlanError(problems)
    seats = []
    for row, (count, aisles, _) in layout.items():
        for number in range(1, count + 1):
            if (row, number) not in missing:
                column = number + sum(1 for after in aisles if after < number)
                seats.append((f"{row}{number}", row, number, column, types[(row, number)]))
    if not seats:
        raise PlanError(["The plan leaves no seats."])
    return seats


def layout_block(block, position: int, layout: dict):
    """Add one row block to ``layout`` (row -> (seats, aisles, type))."""
    where = f"Row block {position}"
    if not isinstance(block, dict):
        raise PlanError([f'{where} must be an object like {{"rows": "A-J", "seats": 12}}.'])
    unknown_keys = set(block) - {"rows", "seats", "aisles", "type"}
    if unknown_keys:
        raise PlanError([f"{where}: unknown fields {', '.join(sorted(unknown_keys))}."])
    rows = rows_of(block.get("rows"))
    count = block.get("seats")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SEATS_PER_ROW:
        raise PlanError([f"{where}: seats must be a whole number from 1 to {MAX_SEATS_PER_ROW}."])
    aisles = block.get("aisles", [])
    if (
        not isinstance(aisles, list)
        or any(isinstance(after, bool) or not isinstance(after, int) for after in aisles)
        or any(not 1 <= after < count for after in aisles)
        or len(set(aisles)) != len(aisles)
    ):
        raise PlanError([f"{where}: aisles lists seat numbers (1 to {count - 1}) an aisle follows, once each."])
    seat_type = block.get("type", "standard")
    if seat_type not in SEAT_TYPES:
        raise PlanError([f"{where}: unknown seat type {seat_type!r} (one of {', '.join(SEAT_TYPES)})."])
    for row in rows:
        if row in layout:
            raise PlanError([f"Row {row} is in more than one row block."])
        layout[row] = (count, sorted(aisles), seat_type)


def listed(plan: dict, key: str, problems: list) -> list:
    value = plan.get(key, [])
    if not isinstance(value, list):
        problems.append(f'"{key}" is a list of seats or ranges like "A1-A4".')
        return []
    return value


def seats_in_plan(entry, types: dict, problems: list) -> list[tuple[str, int]]:
    """The seats an entry names, all of which must be in the plan's rows."""
    try:
        seats = seats_of(entry)
    except PlanError as error:
        problems.extend(error.problems)
        return []
    outside = [seat for seat in seats if seat not in types]
    if outside:
        problems.append(f"{entry}: {label(outside[0])} is not a seat of the plan's rows.")
        return []
    return seats


def label(seat: tuple[str, int]) -> str:
    return f"{seat[0]}{seat[1]}"
