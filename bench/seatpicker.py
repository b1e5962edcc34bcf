"""How long seatpicker.best_available takes in a 1,000-seat hall (goal: well under 20 ms).

    python bench/seatpicker.py

The hall has 25 rows of 40 seats with two aisles, premium back rows and wheelchair
spaces with companion seats at the front. For each fill (a fixed random share of seats
booked) it picks 1 to 10 seats, each request repeated, and prints the median and the
slowest median over those quantities, and which quantities got seats apart or NoSeats.
Two fills are the search for seats apart at its hardest: a checkerboard (every other
seat booked), where every row holds many equally tight choices, and a hall whose only
wheelchair spaces are at the row ends with a booked seat beside each, so that a party
with two wheelchair users spans whole rows and has the most ways to seat the others.
"""

import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import seatpicker  # noqa: E402
from seatplans import row_name  # noqa: E402

ROWS = [row_name(index) for index in range(1, 26)]
SEATS_PER_ROW = 40
AISLES_AFTER = (10, 30)
RUNS = 30


def hall_seats(booked_share: float | str, seed: int = 7) -> list[seatpicker.SeatSpot]:
    """The 1,000 seats with ``booked_share`` of them booked (the same ones every run),
    or the "checkerboard" or "wheelchairs at the ends" fill."""
    chance = random.Random(seed)
    seats = []
    for index, row in enumerate(ROWS):
        for number in range(1, SEATS_PER_ROW + 1):
            column = number + sum(1 for after in AISLES_AFTER if after < number)
            if booked_share == "wheelchairs at the ends":
                seat_type = "accessible" if number in (1, SEATS_PER_ROW) else "standard"
                free = number not in (2, SEATS_PER_ROW - 1)
            else:
                if index >= len(ROWS) - 2:
                    seat_type = "premium"
                elif index == 0 and number in (1, 4, 37, 40):
                    seat_type = "accessible"
                elif index == 0 and number in (2, 3, 38, 39):
                    seat_type = "companion"
                else:
                    seat_type = "standard"
                if booked_share == "checkerboard":
                    free = (index + number) % 2 == 0
                else:
                    free = chance.random() >= booked_share
            seats.append(seatpicker.SeatSpot(f"{row}{number}", row, number, column, seat_type, free))
    return seats


def timed(seats, quantity: int, **options) -> tuple[float, str]:
    """Median milliseconds of RUNS picks, and the answer: "together", "apart" or "none"."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        try:
            pick = seatpicker.best_available(seats, quantity, rows_front_to_back=ROWS, **options)
            answer = "together" if pick.contiguous else "apart"
        except seatpicker.NoSeats:
            answer = "none"
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), answer


def spans(quantities: list[int]) -> str:
    """[2, 3, 4, 7] -> "2-4, 7"; [] -> "-"."""
    parts = []
    for quantity in quantities:
        if parts and parts[-1][1] == quantity - 1:
            parts[-1][1] = quantity
        else:
            parts.append([quantity, quantity])
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in parts) or "-"


def main() -> int:
    cases = [
        ("empty hall", 0.0, {}),
        ("half booked", 0.5, {}),
        ("half booked, seats apart", 0.5, {"allow_split": True}),
        ("80% booked", 0.8, {"allow_split": True}),
        ("95% booked", 0.95, {"allow_split": True}),
        ("half booked, 1 accessible", 0.5, {"accessible": 1, "allow_split": True}),
        ("half booked, premium only", 0.5, {"seat_types": {"premium"}, "allow_split": True}),
        ("checkerboard, seats apart", "checkerboard", {"allow_split": True}),
        ("checkerboard, 1 accessible", "checkerboard", {"accessible": 1, "allow_split": True}),
        ("row-end wheelchairs, 2 of them", "wheelchairs at the ends", {"accessible": 2, "allow_split": True}),
    ]
    print(f"{len(ROWS) * SEATS_PER_ROW} seats, quantities 1-10, median of {RUNS} picks each")
    for name, booked_share, options in cases:
        seats = hall_seats(booked_share)
        # A party of one has at most one wheelchair user.
        results = [
            timed(seats, quantity, **{**options, "accessible": min(options.get("accessible", 0), quantity)})
            for quantity in range(1, 11)
        ]
        medians = [median for median, _ in results]
        answers = {
            answer: [quantity for quantity, (_, given) in enumerate(results, start=1) if given == answer]
            for answer in ("apart", "none")
        }
        print(
            f"{name:30} median {statistics.median(medians):5.2f} ms, slowest {max(medians):5.2f} ms"
            f" (quantity {medians.index(max(medians)) + 1}); apart: {spans(answers['apart'])},"
            f" NoSeats: {spans(answers['none'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
