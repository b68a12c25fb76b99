"""Pure transforms from API answers to what the pages show. No Streamlit, no I/O."""

from __future__ import annotations

import datetime

import pandas as pd

HEADLINE = (
    ("Bus messages", "bus_received"),
    ("Deliveries", "deliveries"),
    ("Missing", "missing"),
    ("Duplicates", "duplicates"),
    ("Out of order", "out_of_order"),
    ("Malformed", "malformed"),
)


def headline(report: dict) -> dict[str, int]:
    """The Overview's headline numbers from the report."""
    bus = [s for s in report["streams"] if s["vantage"] == "bus"]
    consumers = [s for s in report["streams"] if s["vantage"] != "bus"]
    return {
        "bus_received": sum(s["received"] for s in bus),
        "deliveries": sum(s["received"] for s in consumers),
        "missing": sum(s["missing"] for s in report["streams"]),
        "duplicates": sum(s["duplicates"] for s in report["streams"]),
        "out_of_order": sum(s["out_of_order"] for s in report["streams"]),
        "malformed": report["malformed"],
    }


def streams_frame(report: dict) -> pd.DataFrame:
    """One row per stream and vantage point, gaps written as readable ranges."""
    columns = ["vantage", "channel", "source", "partitionkey", "received", "duplicates", "out_of_order", "missing"]
    rows = [{**{c: s[c] for c in columns}, "gaps": format_gaps(s["gaps"])} for s in report["streams"]]
    return pd.DataFrame(rows, columns=columns + ["gaps"])


def format_gaps(gaps: list[list[int]], most: int = 5) -> str:
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in gaps[:most])
    return text + (f" (+{len(gaps) - most} more)" if len(gaps) > most else "")


def _clock(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC).strftime("%H:%M:%S.%f")[:-3]


def messages_frame(messages: list[dict]) -> pd.DataFrame:
    """Recent bus messages, newest first, with arrival time as UTC clock time."""
    columns = ["arrived (UTC)", "channel", "type", "source", "partitionkey", "sequence", "event id", "status"]
    rows = [
        {
            "arrived (UTC)": _clock(m["ArrivalNs"]),
            "channel": m["Channel"],
            "type": m["Type"],
            "source": m["Source"],
            "partitionkey": m["PartitionKey"],
            "sequence": m["Sequence"],
            "event id": m["EventId"],
            "status": "ok" if m["Valid"] else f"malformed: {m['Error']}",
        }
        for m in messages
    ]
    return pd.DataFrame(rows, columns=columns)
