"""The Dead letters page's pure parts: the dead-letter queue and the retried deliveries."""

from __future__ import annotations

import pandas as pd

from dashboard.formats import clock, format_ms


def dead_letters_frame(dead: dict) -> pd.DataFrame:
    """The dead-letter queue, newest first."""
    columns = ["at (UTC)", "group", "channel", "reason", "attempts", "event_id", "trace_id"]
    items = sorted(dead["dead_letters"], key=lambda d: d.get("t_ns") or 0, reverse=True)
    rows = [{**{c: d.get(c) for c in columns[1:]}, "at (UTC)": clock(d.get("t_ns"))} for d in items]
    return pd.DataFrame(rows, columns=columns)


def retried_frame(answer: dict) -> pd.DataFrame:
    """Retried deliveries, newest first, with the backoff slept before each next attempt."""
    columns = ["at (UTC)", "kind", "group", "channel", "outcome", "attempts", "failed attempts", "backoff",
               "event_id", "trace_id"]  # fmt: skip
    rows = []
    for d in sorted(answer["retried"], key=lambda d: d.get("t_ns") or 0, reverse=True):
        delays = [r.get("delay_ms") for r in d.get("retries", []) if r.get("delay_ms")]
        rows.append(
            {
                "at (UTC)": clock(d.get("t_ns")),
                "kind": "redelivery" if d.get("kind") == "redelivery" else "retry in one delivery",
                "group": d.get("group"),
                "channel": d.get("channel"),
                "outcome": d.get("outcome"),
                "attempts": d.get("attempts"),
                "failed attempts": d.get("failed_attempts"),
                "backoff": " → ".join(format_ms(ms) for ms in delays),
                "event_id": d.get("event_id"),
                "trace_id": d.get("trace_id"),
            }
        )
    return pd.DataFrame(rows, columns=columns)
