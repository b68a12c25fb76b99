"""Stream bookkeeping: every case states the observations in arrival order and the exact counts."""

from __future__ import annotations

import pytest

from collectors.analyses.streams import count_stream, open_gaps


def obs(*sequences):
    """Observations with ids derived from the sequence; 'd' suffix marks a re-sent copy of that id."""
    return [(f"e{str(s).rstrip('d')}", int(str(s).rstrip("d"))) for s in sequences]


CASES = [
    # name, observations, received, duplicates, out_of_order, missing, gaps
    ("empty", [], 0, 0, 0, 0, []),
    ("in order", obs(1, 2, 3), 3, 0, 0, 0, []),
    ("one gap", obs(1, 2, 5), 3, 0, 0, 2, [[3, 4]]),
    ("two gaps", obs(1, 3, 6), 3, 0, 0, 3, [[2, 2], [4, 5]]),
    ("late arrival fills its gap", obs(1, 3, 2), 3, 0, 1, 0, []),
    ("late arrival, gap stays partly open", obs(1, 4, 2), 3, 0, 1, 1, [[3, 3]]),
    ("duplicate is not out of order", obs(1, 2, "1d", 3), 4, 1, 0, 0, []),
    ("duplicate then gap", obs(1, 2, "2d", 4), 4, 1, 0, 1, [[3, 3]]),
    ("starts late: no gap before the lowest seen", obs(5, 6, 7), 3, 0, 0, 0, []),
    ("gap, duplicate and reorder together", obs(1, 2, 4, 3, 5, "5d", 7), 7, 1, 1, 1, [[6, 6]]),
    ("no sequence: only received and duplicates", [("a", None), ("b", None), ("a", None)], 3, 1, 0, 0, []),
]


@pytest.mark.parametrize(
    "observations,received,duplicates,out_of_order,missing,gaps", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_count_stream(observations, received, duplicates, out_of_order, missing, gaps):
    counts = count_stream(observations)
    assert (counts.received, counts.duplicates, counts.out_of_order, counts.missing, counts.gaps) == (
        received,
        duplicates,
        out_of_order,
        missing,
        gaps,
    )


def test_open_gaps_ignores_order_and_repeats():
    assert open_gaps([9, 1, 1, 3]) == [[2, 2], [4, 8]]
