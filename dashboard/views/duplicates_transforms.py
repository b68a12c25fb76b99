"""The Duplicates page's pure parts: duplicated events with their verdict, and handled vs processed per group."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard import colors
from dashboard.charts import empty_figure, layout, plain_columns

HANDLED = "handled (guard skipped it)"
PROCESSED_TWICE = "processed twice (bug)"
REDELIVERED = "redelivered (not a duplicate)"
KIND_COLORS = {HANDLED: colors.OK, PROCESSED_TWICE: colors.PROBLEM, REDELIVERED: colors.NEUTRAL}
"""The bars of the per-group chart, one colour each: the bug stands out in red."""


def duplicates_frame(duplicates: dict) -> pd.DataFrame:
    """Each event seen more than once at a vantage point, the bug (processed twice) first.

    Copies handed over again after a failed attempt are redeliveries, not duplicates, and say so.
    """
    columns = ["vantage", "channel", "event_id", "copies", "handled", "processed", "redeliveries", "verdict",
               "trace_ids"]  # fmt: skip
    rows = []
    for d in duplicates["duplicates"]:
        processed = d.get("processed") or 0
        redeliveries = d.get("redeliveries") or 0
        if d["vantage"] == "bus":
            verdict = "published twice"
        elif processed > 1:
            verdict = "processed twice (bug)"
        elif redeliveries and (d.get("copies") or 0) - 1 <= redeliveries:
            verdict = "redelivered after a failed attempt (not a duplicate)"
        else:
            verdict = "handled by the idempotency guard"
        rows.append({**{c: d.get(c) for c in columns if c != "verdict"}, "verdict": verdict})
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["processed", "copies"], ascending=False, kind="stable") if rows else frame


def by_group_frame(duplicates: dict) -> pd.DataFrame:
    """Handled vs processed duplicates per vantage point, long format for a grouped bar chart."""
    rows = []
    for g in duplicates["by_group"]:
        rows.append({"vantage": g["vantage"], "kind": HANDLED, "count": g["handled"]})
        rows.append({"vantage": g["vantage"], "kind": PROCESSED_TWICE, "count": g["processed"]})
        if g.get("redeliveries"):
            rows.append({"vantage": g["vantage"], "kind": REDELIVERED, "count": g["redeliveries"]})
    return pd.DataFrame(rows, columns=["vantage", "kind", "count"])


def duplicates_by_group(frame: pd.DataFrame) -> go.Figure:
    """Handled vs processed-twice duplicates per vantage point."""
    if frame.empty:
        return empty_figure("No duplicates in this window.")
    fig = px.bar(
        plain_columns(frame, "vantage"), x="vantage", y="count", color="kind", barmode="group",
        color_discrete_map=KIND_COLORS,
        labels={"vantage": "vantage point (bus or consumer group)", "count": "duplicate deliveries", "kind": ""},
    )  # fmt: skip
    return layout(fig, "Duplicates per consumer group: handled vs processed twice")
