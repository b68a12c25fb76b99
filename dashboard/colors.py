"""One colour per service and channel, the same on every page and in every session.

The colour comes from a hash of the name, not from the order names happen to appear in, so
`inventory` is the same colour on the flow graph, the latency chart and the waterfall. Two names can
hash to one colour; ``assign`` gives the names a system has (read from the API, data.palette) distinct
colours, each name keeping its own hashed colour unless a name before it took that one already.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
    "#bd9e39",
)
"""Colours distinguishable on white (D3 category10 and category20b/c picks); no pure red, which means trouble."""
NEUTRAL = "#7f7f7f"
"""For things without a name (an unknown service) and for the broker itself."""
PROBLEM = "#d62728"
OK = "#2ca02c"
WARNING = "#ff7f0e"
MEASURE_COLORS = {"delivery": "#1f77b4", "processing": "#ff7f0e", "end_to_end": "#9467bd"}
"""Latency measures are compared side by side on one chart, so each keeps one colour."""


def _slot(name: str) -> int:
    return zlib.crc32(name.encode()) % len(PALETTE)


def assign(names: Iterable[str]) -> dict[str, str]:
    """Distinct colours for up to ``len(PALETTE)`` names (beyond that, hashed ones), whatever order they come in.

    In name order, each name takes its hashed colour, or the next one free after it when an earlier name took
    that; so a new name moves only names that collide with it and sort after it.
    """
    taken: set[int] = set()
    chosen: dict[str, str] = {}
    for name in sorted({n for n in names if n}):
        slot = _slot(name)
        if len(taken) < len(PALETTE):
            while slot in taken:
                slot = (slot + 1) % len(PALETTE)
            taken.add(slot)
        chosen[name] = PALETTE[slot]
    return chosen


def color_for(name: str | None, palette: Mapping[str, str] | None = None) -> str:
    """The colour of a service, channel or consumer group name: from ``palette`` (see ``assign``), else hashed."""
    if not name:
        return NEUTRAL
    return (palette or {}).get(name) or PALETTE[_slot(name)]


def color_map(names: Iterable[str], palette: Mapping[str, str] | None = None) -> dict[str, str]:
    """Colours for many names, as plotly's ``color_discrete_map`` wants them."""
    return {name: color_for(name, palette) for name in names}
