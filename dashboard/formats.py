"""How numbers, durations and times read on every page: plain functions, no Streamlit."""

from __future__ import annotations

import datetime

import pandas as pd


def clock(ns: int | None) -> str:
    """A UTC wall-clock time with milliseconds, for tables."""
    if ns is None:
        return ""
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC).strftime("%H:%M:%S.%f")[:-3]


def timestamp(ns: int) -> pd.Timestamp:
    """A pandas UTC timestamp for chart axes."""
    return pd.Timestamp(ns, unit="ns", tz="UTC")


def format_ms(ms: float | None) -> str:
    """A duration for people: µs below 1 ms, ms below 10 s, seconds above."""
    if ms is None:
        return "–"
    if abs(ms) < 1:
        return f"{ms * 1000:,.0f} µs"
    if abs(ms) < 10_000:
        return f"{ms:,.1f} ms"
    return f"{ms / 1000:,.1f} s"


def format_count(value: float | int | None) -> str:
    """A count with thousands separators; rates keep one decimal."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def format_gaps(gaps: list[list[int]], most: int = 5) -> str:
    """Gaps as ``3–4, 9`` with a count of the rest."""
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in gaps[:most])
    return text + (f" (+{len(gaps) - most} more)" if len(gaps) > most else "")
