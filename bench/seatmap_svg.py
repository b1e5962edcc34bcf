"""How long seatmap_svg.render takes for a 150-seat and a 1,000-seat hall (goal: 1,000 in well under 50 ms).

    python bench/seatmap_svg.py

Prints the best and the median of 200 renders of each sample seat map, and the
document's size.
"""

import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts")]

import seatmap_svg  # noqa: E402
from render_seatmap import sample_seat_map  # noqa: E402

RUNS = 200


def main() -> int:
    halls = {"150 seats": sample_seat_map(), "1,000 seats": sample_seat_map(25, (4, 32, 4))}
    for name, seat_map in halls.items():
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            svg = seatmap_svg.render(seat_map, local_start="2026-12-10 19:00")
            times.append((time.perf_counter() - start) * 1000)
        print(
            f"{name}: best {min(times):.2f} ms, median {statistics.median(times):.2f} ms,"
            f" {len(svg.encode()):,} bytes"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
