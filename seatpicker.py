"""Best available seats: which free seats to offer a party, decided from the seat map alone.

``best_available(seats, quantity, rows_front_to_back=...)`` returns a ``Pick`` or raises
``NoSeats``. It is pure: the caller loads the seats, the picker only chooses, so the same
input always gives the same seats.

Which seats may be chosen
    Only free seats (not booked, held or blocked) of the hall. With ``accessible == 0``
    they are standard or premium seats; accessible and companion seats are kept for
    parties that need them. With ``accessible > 0`` exactly that many of the seats are
    accessible (a wheelchair space more would be taken from someone else) and the others
    may also be companion seats. ``seat_types`` narrows the others further; the accessible
    seats asked for are accessible whatever it says, and companion seats only come with an
    accessible request.

Contiguous
    Seats in one row at consecutive columns. Columns count aisles and missing seats, so a
    gap in the columns breaks a group.

Stranded seat
    A free seat that had a free neighbour before the pick and has none after it: both
    sides are a taken, blocked, missing or chosen seat, an aisle, or the end of the row.
    A seat that was already alone does not count.

The order of importance, each one deciding only between choices the ones above rank equal:

1. Contiguous groups beat everything else. Without one the answer is NoSeats, unless
   ``allow_split``; then seats apart are ranked by
   a. the fewest rows spanned (first to last row of the pick, front to back),
   b. the fewest columns spanned (leftmost to rightmost chosen seat, over all its rows).
2. Fewest stranded seats (so none whenever any choice of equal rank above avoids it).
3. Nearest the preferred row: a group's distance in rows from it; for seats apart the sum
   of each seat's distance. The preferred row is ``preferred_row``, by default the
   middle-back row ``rows_front_to_back[round(0.6 * (len(rows) - 1))]``.
4. Nearest the middle of the row: the distance of the group's centre column from the
   row's centre (the midpoint of its first and last seat's column, whatever their
   status); for seats apart the sum of each seat's distance from its row's centre.
5. Front row first, then leftmost: for a group its row, then its first column; for seats
   apart the seats in (row, column) order compared one by one.

How
    Contiguous groups are every window of ``quantity`` consecutive columns of sellable
    seats, each scored in constant time: only the two seats just outside a window can be
    stranded by it. Seats apart are searched only when no group exists: the narrowest
    rectangles of rows and columns that hold enough sellable seats fix ranks 1a and 1b
    exactly (every choice inside one spans all of it), and within each a dynamic
    programme over its seats, tracking how many of each kind are still needed and the two
    places before, finds the best choice by ranks 2-5. Rectangles are tried nearest the
    preferred row first and the search stops at the first that cannot beat the best.
"""

from dataclasses import dataclass

from seatplans import SEAT_TYPES

MAX_QUANTITY = 50


@dataclass(frozen=True)
class SeatSpot:
    """One seat of the hall as the picker sees it."""

    label: str
    row: str
    number: int
    column: int
    seat_type: str
    free: bool  # sellable now: not booked, held or blocked


@dataclass(frozen=True)
class Pick:
    """The chosen seats in row then column order, whether they sit together, and why."""

    labels: list[str]
    contiguous: bool
    explanation: str


class NoSeats(Exception):
    """No choice of seats meets the request; the message says why."""


def best_available(
    seats: list[SeatSpot],
    quantity: int,
    *,
    rows_front_to_back: list[str],
    preferred_row: str | None = None,
    seat_types: set[str] | None = None,
    accessible: int = 0,
    allow_split: bool = False,
) -> Pick:
    """The best ``quantity`` free seats by the rules above, or NoSeats saying why not."""
    check_arguments(quantity, accessible, seat_types, rows_front_to_back, preferred_row)
    hall = Hall(seats, rows_front_to_back, preferred_row, seat_types, accessible)
    others = quantity - accessible
    if hall.free_count < quantity:
        raise NoSeats(only(hall.free_count, "seat", "is free", "are free"))
    if hall.accessible_count < accessible:
        raise NoSeats(only(hall.accessible_count, "accessible seat", "is free", "are free"))
    if hall.others_count < others:
        kinds = or_list(sorted(hall.other_types)) if hall.other_types else "of the types asked for"
        raise NoSeats(only(hall.others_count, "free seat", f"is {kinds}", f"are {kinds}"))
    group = together(hall, quantity, accessible)
    if group is not None:
        return group
    if not allow_split:
        raise NoSeats(
            f"No {described(quantity, accessible, seat_types, hall)} are free;"
            " send allow_split: true to accept seats apart."
        )
    return apart(hall, quantity, accessible)


def check_arguments(quantity, accessible, seat_types, rows, preferred_row):
    """ValueError for a request no hall could answer."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise ValueError(f"quantity must be a whole number from 1 to {MAX_QUANTITY}.")
    if isinstance(accessible, bool) or not isinstance(accessible, int) or not 0 <= accessible <= quantity:
        raise ValueError("accessible must be a whole number from 0 to quantity.")
    if seat_types is not None:
        unknown = set(seat_types) - set(SEAT_TYPES)
        if unknown or not seat_types:
            raise ValueError(f"seat_types names one or more of {', '.join(SEAT_TYPES)}.")
    if len(set(rows)) != len(rows):
        raise ValueError("rows_front_to_back names a row twice.")
    if preferred_row is not None and preferred_row not in rows:
        raise ValueError(f"The preferred row {preferred_row!r} is not one of the hall's rows.")


class Hall:
    """The seats by row position and column, and which of them this request may take."""

    def __init__(self, seats, rows, preferred_row, seat_types, accessible):
        self.rows = list(rows)
        position = {row: index for index, row in enumerate(self.rows)}
        if preferred_row is None:
            self.preferred = round(0.6 * (len(self.rows) - 1)) if self.rows else 0
            self.preferred_given = False
        else:
            self.preferred = position[preferred_row]
            self.preferred_given = True
        self.other_types = {"standard", "premium"} | ({"companion"} if accessible else set())
        if seat_types is not None:
            self.other_types &= set(seat_types)
        # Row position -> column -> seat; and the kind a sellable seat counts as:
        # "a" an accessible seat of this request, "o" one of the others.
        self.grid = [{} for _ in self.rows]
        self.kind = [{} for _ in self.rows]
        labels = set()
        self.free_count = self.accessible_count = self.others_count = 0
        for seat in seats:
            if seat.row not in position:
                raise ValueError(f"Seat {seat.label} is in row {seat.row!r}, not one of rows_front_to_back.")
            if isinstance(seat.column, bool) or not isinstance(seat.column, int) or seat.column < 1:
                raise ValueError(f"Seat {seat.label} needs a column from 1 (its number when the plan has none).")
            if seat.seat_type not in SEAT_TYPES:
                raise ValueError(f"Seat {seat.label} has an unknown type {seat.seat_type!r}.")
            index = position[seat.row]
            if seat.label in labels or seat.column in self.grid[index]:
                raise ValueError(f"Seat {seat.label} is given twice (by label or by place).")
            labels.add(seat.label)
            self.grid[index][seat.column] = seat
            if not seat.free:
                continue
            self.free_count += 1
            if seat.seat_type == "accessible":
                if accessible:
                    self.kind[index][seat.column] = "a"
                    self.accessible_count += 1
            elif seat.seat_type in self.other_types:
                self.kind[index][seat.column] = "o"
                self.others_count += 1
        # Twice the centre column of each row, so centre distances stay whole numbers.
        self.centre2 = [min(row) + max(row) if row else 0 for row in self.grid]
        # Weights that keep the ranks of seats apart lexicographic in one integer: a
        # row's weight exceeds any sum of centre distances, a strand's any sum of both.
        widest = max((max(row) for row in self.grid if row), default=0)
        self.row_weight = 2 * widest * MAX_QUANTITY + 1
        self.strand_weight = self.row_weight * (len(self.rows) * MAX_QUANTITY + 1)

    def free(self, index: int, column: int) -> bool:
        seat = self.grid[index].get(column)
        return seat is not None and seat.free

    def strands_beside(self, index: int, first: int, last: int) -> int:
        """How many seats a group over columns first..last leaves stranded (0-2)."""
        left = self.free(index, first - 1) and not self.free(index, first - 2)
        right = self.free(index, last + 1) and not self.free(index, last + 2)
        return left + right

    def labels(self, places) -> list[str]:
        return [self.grid[index][column].label for index, column in sorted(places)]


def together(hall: Hall, quantity: int, accessible: int) -> Pick | None:
    """The best contiguous group, or None when there is none."""
    best = None
    nearest = None  # the least row distance of any group, for the explanation
    for index, kinds in enumerate(hall.kind):
        distance = abs(index - hall.preferred)
        for run in runs(sorted(kinds)):
            if len(run) < quantity:
                continue
            # accessible_before[i]: accessible seats among run[:i]
            accessible_before = [0]
            for column in run:
                accessible_before.append(accessible_before[-1] + (kinds[column] == "a"))
            for start in range(len(run) - quantity + 1):
                if accessible_before[start + quantity] - accessible_before[start] != accessible:
                    continue
                first, last = run[start], run[start] + quantity - 1
                key = (
                    hall.strands_beside(index, first, last),
                    distance,
                    abs(first + last - hall.centre2[index]),
                    index,
                    first,
                )
                if best is None or key < best:
                    best = key
                if nearest is None or distance < nearest:
                    nearest = distance
    if best is None:
        return None
    *_, index, first = best
    places = [(index, column) for column in range(first, first + quantity)]
    return Pick(hall.labels(places), True, explain_together(hall, quantity, best, nearest))


def runs(columns: list[int]) -> list[list[int]]:
    """Sorted columns cut where a column is skipped: [1, 2, 4] -> [[1, 2], [4]]."""
    found = []
    for column in columns:
        if found and found[-1][-1] == column - 1:
            found[-1].append(column)
        else:
            found.append([column])
    return found


def apart(hall: Hall, quantity: int, accessible: int) -> Pick:
    """The best seats apart: the tightest rectangles first, then the DP within each."""
    others = quantity - accessible
    count_a = [sum(kind == "a" for kind in row.values()) for row in hall.kind]
    count_o = [len(row) - count_a[index] for index, row in enumerate(hall.kind)]
    rows = len(hall.rows)
    for height in range(1, rows + 1):
        tops = [
            top
            for top in range(rows - height + 1)
            if sum(count_a[top : top + height]) >= accessible and sum(count_o[top : top + height]) >= others
        ]
        if tops:
            break
    rectangles, narrowest = [], None
    for top in tops:
        for first, last in narrowest_columns(hall, top, height, accessible, others):
            width = last - first
            if narrowest is None or width < narrowest:
                rectangles, narrowest = [], width
            if width == narrowest:
                rectangles.append((top, first, last))

    def least_cost(top: int) -> int:
        """No choice in rows top..top+height-1 costs less: every seat as near as the nearest row."""
        nearest = min(abs(index - hall.preferred) for index in range(top, top + height))
        return quantity * nearest * hall.row_weight

    best = None
    # Nearest rows first, so that farther rectangles that cannot beat the best so far
    # are skipped without their search.
    for top, first, last in sorted(rectangles, key=lambda rectangle: least_cost(rectangle[0])):
        if best is not None and least_cost(top) > best[0]:
            break
        found = best_within(hall, top, height, first, last, accessible, others)
        if found is not None and (best is None or found < best):
            best = found
    cost, places = best
    strands = cost // hall.strand_weight
    return Pick(hall.labels(places), False, explain_apart(hall, quantity, places, strands))


def narrowest_columns(hall, top, height, accessible, others):
    """For each first column, the nearest last column whose rectangle holds enough seats."""
    per_column = {}
    for index in range(top, top + height):
        for column, kind in hall.kind[index].items():
            counts = per_column.setdefault(column, [0, 0])
            counts[kind == "o"] += 1
    columns = sorted(per_column)
    found = []
    have_a = have_o = 0
    right = 0  # columns[:right] are in the window
    for first in columns:
        while right < len(columns) and (have_a < accessible or have_o < others):
            have_a += per_column[columns[right]][0]
            have_o += per_column[columns[right]][1]
            right += 1
        if have_a < accessible or have_o < others:
            break
        found.append((first, columns[right - 1]))
        have_a -= per_column[first][0]
        have_o -= per_column[first][1]
    return found


def best_within(hall, top, height, first, last, accessible, others):
    """(cost, places) of the best choice inside one rectangle, or None if none fits.

    A forward pass over the rectangle's columns row by row, widened by two columns each
    side so the seats beside it are judged too. A state is what the future depends on:
    whether the two previous places are free after the pick, and how many accessible
    and other seats are still needed. Of two paths into one state the cheaper wins, and
    on a tie the one whose places sort first, which is what rank 5 asks.
    """
    cells = []  # (index, column, free before, kind or None, judges the previous place)
    for index in range(top, top + height):
        kinds = hall.kind[index]
        row_cost = abs(index - hall.preferred) * hall.row_weight
        for column in range(first - 2, last + 3):
            kind = kinds.get(column) if first <= column <= last else None
            cost = row_cost + abs(2 * column - hall.centre2[index])
            cells.append((index, column, hall.free(index, column), kind, column >= first, cost))
    # How many seats of each kind the cells from position i on offer, to drop states
    # that can no longer be completed.
    left_a, left_o = [0] * (len(cells) + 1), [0] * (len(cells) + 1)
    for position in range(len(cells) - 1, -1, -1):
        kind = cells[position][3]
        left_a[position] = left_a[position + 1] + (kind == "a")
        left_o[position] = left_o[position + 1] + (kind == "o")
    # state (free after: place before last, last place; still needed a, o) -> (cost, places).
    # A row's first two places are never judged, so the flags a row starts with are
    # its own by the time they count.
    states = {(False, False, accessible, others): (0, ())}
    for position, (index, column, free_before, kind, judges, seat_cost) in enumerate(cells):
        # Whether the place before the previous one was free before the pick: the
        # previous place is judged against both its neighbours' old state too.
        free_two_before = hall.free(index, column - 2)
        following = {}
        for (free_before_last, free_last, need_a, need_o), (cost, places) in states.items():
            choices = [(free_before, need_a, need_o, cost, places)]
            if kind == "a" and need_a:
                choices.append((False, need_a - 1, need_o, cost + seat_cost, places + ((index, column),)))
            elif kind == "o" and need_o:
                choices.append((False, need_a, need_o - 1, cost + seat_cost, places + ((index, column),)))
            for free_now, still_a, still_o, new_cost, new_places in choices:
                if still_a > left_a[position + 1] or still_o > left_o[position + 1]:
                    continue
                if (
                    judges
                    and free_last
                    and not free_before_last
                    and not free_now
                    and (free_two_before or free_before)
                ):
                    new_cost += hall.strand_weight
                key = (free_last, free_now, still_a, still_o)
                value = (new_cost, new_places)
                if key not in following or value < following[key]:
                    following[key] = value
        states = following
    done = [value for (_, _, need_a, need_o), value in states.items() if not need_a and not need_o]
    return min(done) if done else None


def explain_together(hall: Hall, quantity: int, best: tuple, nearest: int) -> str:
    """One sentence on why this group: its row, its place in the row, what it leaves."""
    strands, distance, off_centre, index, first = best
    row = hall.rows[index]
    what = f"{quantity} seats together" if quantity > 1 else "1 seat"
    if distance == 0:
        where = "the row asked for" if hall.preferred_given else "the hall's preferred row"
    else:
        preferred = hall.rows[hall.preferred]
        if distance == nearest:
            reason = f"with {quantity} seats together" if quantity > 1 else "with a free seat"
        else:
            reason = "where they leave no single seat stranded" if not strands else "where they strand fewest seats"
        where = f"the nearest to the preferred row {preferred} {reason}"
    centre = "centred in the row" if off_centre <= 1 else "as near the middle of the row as the free seats allow"
    if not strands:
        leaves = "no single seat left stranded"
    else:
        leaves = f"every choice leaves {'a single seat' if strands == 1 else 'two single seats'} on its own"
    return f"{what} in row {row}, {where}, {centre}; {leaves}"


def explain_apart(hall: Hall, quantity: int, places, strands: int) -> str:
    """One sentence on seats apart: which rows, and what they leave."""
    per_row = {}
    for index, _ in sorted(places):
        per_row[index] = per_row.get(index, 0) + 1
    parts = [f"{count} in row {hall.rows[index]}" for index, count in per_row.items()]
    columns = [column for _, column in places]
    span = max(columns) - min(columns) + 1
    leaves = "no single seat left stranded" if not strands else "no choice this close avoids stranding a single seat"
    return (
        f"No {quantity} seats together are free, so {quantity} seats as close as possible:"
        f" {and_list(parts)}, within {span} columns; {leaves}"
    )


def described(quantity: int, accessible: int, seat_types, hall: Hall) -> str:
    """ "4 seats together", "4 premium seats together", "2 seats together, 1 of them accessible,"."""
    kinds = ""
    if seat_types is not None and not accessible:
        kinds = or_list(sorted(hall.other_types)) + " "
    text = f"{quantity} {kinds}seats together"
    if accessible:
        text += f", {accessible} of them accessible,"
    return text


def only(count: int, noun: str, singular: str, plural: str) -> str:
    if count == 0:
        return f"No {noun}s {plural}."
    if count == 1:
        return f"Only 1 {noun} {singular}."
    return f"Only {count} {noun}s {plural}."


def or_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def and_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
