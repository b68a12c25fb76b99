"""The Event page's pure parts: one event's deliveries, retries and timeline."""

from __future__ import annotations

import pandas as pd

from dashboard.formats import clock, format_ms


def deliveries_frame(event: dict) -> pd.DataFrame:
    """Every delivery of one event: group, outcome, attempts, duration."""
    rows = [
        {
            "group": d["group"],
            "outcome": d.get("outcome") or "",
            "attempts": d.get("attempts"),
            "started (UTC)": clock(d.get("start_ns")),
            "duration": format_ms(d.get("duration_ms")),
            "retries": len(d.get("retries") or []),
            "redelivery": "redelivered after a failed attempt" if d.get("redelivery") else "",
            "dead letter reason": d.get("dead_letter_reason") or "",
            "trace_id": d.get("trace_id"),
        }
        for d in event["deliveries"]
    ]
    columns = ["group", "outcome", "attempts", "started (UTC)", "duration", "retries", "redelivery",
               "dead letter reason", "trace_id"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def retries_frame(event: dict) -> pd.DataFrame:
    """Each retry of each delivery, in time order."""
    rows = [
        {
            "group": d["group"],
            "attempt": r["attempt"],
            "at (UTC)": clock(r.get("t_ns")),
            "backoff": format_ms(r.get("delay_ms")),
        }
        for d in event["deliveries"]
        for r in d.get("retries") or []
    ]
    return pd.DataFrame(rows, columns=["group", "attempt", "at (UTC)", "backoff"])


def event_timeline(event: dict) -> list[tuple[int, str]]:
    """(time ns, what happened) for one event's publish, bus arrival and deliveries, in time order."""
    steps = [(span["start_ns"], f"published by {span['service']}") for span in event["published"]]
    steps += [(message["arrival_ns"], f"seen on the bus ({message['channel']})") for message in event["bus"]]
    steps += [
        (d["start_ns"], f"{d['group']}: {d['outcome'] or 'delivered'} after {d['attempts'] or 1} attempt(s)")
        for d in event["deliveries"]
    ]
    return sorted(((ns, text) for ns, text in steps if ns is not None), key=lambda step: step[0])
