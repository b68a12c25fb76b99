"""The Ordering and loss page's pure parts: stream choices, each stream's arrivals and its timeline, the lost
events and where they were lost."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard import colors
from dashboard.charts import empty_figure, layout, plain, plain_columns
from dashboard.formats import timestamp

ARRIVAL_COLORS = {"in order": colors.OK, "late": colors.WARNING, "duplicate": colors.PROBLEM}
WHERE_LOST = {
    "before_broker": "before the broker (the bus never saw it)",
    "at_delivery": "at delivery (the bus saw it, the group never processed it)",
    "in_processing": "in processing (the delivery failed or was dead-lettered)",
}


def stream_choices(report: dict) -> list[dict]:
    """Each stream once (channel, source, partitionkey) with the vantage points that saw it, bus first.

    Streams with missing numbers come first, then out-of-order ones, then duplicated ones: a gap is the
    rarest and most serious finding.
    """
    streams: dict[tuple, dict] = {}
    for s in report["streams"]:
        key = (s["channel"], s["source"], s["partitionkey"])
        entry = streams.setdefault(
            key,
            {"channel": s["channel"], "source": s["source"], "partitionkey": s["partitionkey"], "vantages": [],
             "missing": 0, "out_of_order": 0, "duplicates": 0},
        )  # fmt: skip
        entry["vantages"].append(s["vantage"])
        for problem in ("missing", "out_of_order", "duplicates"):
            entry[problem] += s[problem]
    for entry in streams.values():
        entry["vantages"].sort(key=lambda v: (v != "bus", v))
    return sorted(
        streams.values(),
        key=lambda e: (-e["missing"], -e["out_of_order"], -e["duplicates"], e["channel"], e["source"] or "",
                       e["partitionkey"] or ""),
    )  # fmt: skip


def stream_label(stream: dict) -> str:
    """``shop.orders · /sample/orders/3f2a · p1  (2 missing, 1 duplicate)``."""
    parts = [stream["channel"], stream["source"] or "(no source)"]
    if stream.get("partitionkey"):
        parts.append(stream["partitionkey"])
    problems = [
        f"{stream[key]:,} {word}"
        for key, word in (("missing", "missing"), ("out_of_order", "out of order"), ("duplicates", "duplicated"))
        if stream.get(key)
    ]
    return " · ".join(parts) + (f"  ({', '.join(problems)})" if problems else "")


def stream_key(stream: dict) -> dict[str, str]:
    """The /sequences parameters naming a stream."""
    return {
        "channel": stream["channel"],
        "source": stream["source"] or "",
        "partitionkey": stream["partitionkey"] or "",
    }


def arrivals_frame(sequences: dict) -> pd.DataFrame:
    """Arrivals with what each one was: in order, late (out of order) or a duplicate."""
    rows = [
        {
            "time": timestamp(a["t_ns"]),
            "sequence": a["sequence"],
            "event_id": a["event_id"],
            "arrival": "duplicate" if a["duplicate"] else "late" if a["late"] else "in order",
        }
        for a in sequences["arrivals"]
    ]
    return pd.DataFrame(rows, columns=["time", "sequence", "event_id", "arrival"])


def loss_frame(loss: dict) -> pd.DataFrame:
    """Lost events with where they were lost, in words."""
    columns = ["where", "vantage", "channel", "source", "partitionkey", "sequence", "event_id"]
    rows = [
        {**{c: item.get(c) for c in columns}, "where": WHERE_LOST.get(item["where"], item["where"])}
        for item in loss["lost"]
    ]
    return pd.DataFrame(rows, columns=columns)


def sequence_timeline(
    arrivals: pd.DataFrame, gaps: list[list[int]], lost_gaps: list[list[int]], vantage: str
) -> go.Figure:
    """Sequence number against arrival time: a clean staircase; late arrivals and duplicates stand out.

    Open gaps are shaded orange, gaps past the grace window (lost) red.
    """
    if arrivals.empty:
        return empty_figure(f"No arrivals of this stream at {plain(vantage)} in this window.")
    arrivals = plain_columns(arrivals, "event_id")
    fig = px.scatter(
        arrivals, x="time", y="sequence", color="arrival", color_discrete_map=ARRIVAL_COLORS,
        category_orders={"arrival": list(ARRIVAL_COLORS)}, hover_data={"event_id": True},
        labels={"time": "arrival time (UTC)", "sequence": "sequence number", "arrival": ""},
    )  # fmt: skip
    lost = {tuple(g) for g in lost_gaps}
    for first, last in gaps:
        is_lost = (first, last) in lost
        fig.add_hrect(
            y0=first - 0.5, y1=last + 0.5, line_width=0, opacity=0.25,
            fillcolor=colors.PROBLEM if is_lost else colors.WARNING,
            annotation_text=f"{'lost' if is_lost else 'gap'} {first}" + (f"–{last}" if last != first else ""),
            annotation_position="right",
        )  # fmt: skip
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"})
    where = "the bus (Redis tap)" if vantage == "bus" else f"consumer group {plain(vantage)}"
    return layout(fig, f"At {where}", height=340)
