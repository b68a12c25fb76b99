"""One colour per service and channel, the same on every page and in every session.

The colour comes from a hash of the name, not from the order names happen to appear in, so
`inventory` is the same colour on the flow graph, the latency chart and the waterfall.
"""

from __future__ import annotations

import zlib

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
PINNED = {
    name: PALETTE[i]
    for i, name in enumerate(
        ("orders", "inventory", "payments", "shipping", "notifications", "order-view", "accounts", "storefront")
    )
} | {
    name: PALETTE[-1 - i]
    for i, name in enumerate(
        ("shop.orders", "shop.stock", "shop.payments", "shop.shipping", "shop.users", "shop.accounts")
    )
}
"""The sample shop's services and channels get distinct colours (a hash alone could give two the same one)."""
NEUTRAL = "#7f7f7f"
"""For things without a name (an unknown service) and for the broker itself."""
PROBLEM = "#d62728"
OK = "#2ca02c"
WARNING = "#ff7f0e"
MEASURE_COLORS = {"delivery": "#1f77b4", "processing": "#ff7f0e", "end_to_end": "#9467bd"}
"""Latency measures are compared side by side on one chart, so each keeps one colour."""


def color_for(name: str | None) -> str:
    """The colour of a service, channel or consumer group name."""
    if not name:
        return NEUTRAL
    if name in PINNED:
        return PINNED[name]
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def color_map(names) -> dict[str, str]:
    """Colours for many names, as plotly's ``color_discrete_map`` wants them."""
    return {name: color_for(name) for name in names}
