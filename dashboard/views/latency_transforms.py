"""The Latency page's pure parts: percentile tables and series, histograms, clock skew and slow consumers
(the Broker page shows the slow consumers too)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard import colors
from dashboard.charts import empty_figure, label_colors, layout, plain_columns
from dashboard.formats import clock, format_ms, timestamp


def latency_summary_frame(latency: dict) -> pd.DataFrame:
    """p50/p95/p99 per key and measure, durations formatted."""
    columns = ["measure", "key", "count", "p50", "p95", "p99"]
    rows = [
        {
            "measure": s["measure"],
            "key": s["key"],
            "count": s["count"],
            "p50": format_ms(s["p50_ms"]),
            "p95": format_ms(s["p95_ms"]),
            "p99": format_ms(s["p99_ms"]),
        }
        for s in sorted(latency["summary"], key=lambda s: (s["key"] or "", s["measure"]))
    ]
    return pd.DataFrame(rows, columns=columns)


def latency_buckets_frame(latency: dict, measure: str) -> pd.DataFrame:
    """One row per time bucket and key for one measure, with a chart-ready time column."""
    rows = [
        {"time": timestamp(b["t_ns"]), **{k: b[k] for k in ("key", "count", "p50_ms", "p95_ms", "p99_ms")}}
        for b in latency["buckets"]
        if b["measure"] == measure
    ]
    return pd.DataFrame(rows, columns=["time", "key", "count", "p50_ms", "p95_ms", "p99_ms"])


def samples_frame(latency: dict) -> pd.DataFrame:
    """The raw samples (measure, key, ms) for histograms."""
    return pd.DataFrame(latency.get("samples", []), columns=["measure", "key", "ms"])


def clock_skew_frame(answer: dict) -> pd.DataFrame:
    """Per pair of services, the deliveries that started before their publication, most negative first."""
    columns = ["producer service", "consumer service", "deliveries", "most negative", "median"]
    rows = [
        {
            "producer service": p.get("producer_service") or "?",
            "consumer service": p.get("consumer_service"),
            "deliveries": p.get("count"),
            "most negative": format_ms(p.get("min_ms")),
            "median": format_ms(p.get("p50_ms")),
        }
        for p in answer["pairs"]
    ]
    return pd.DataFrame(rows, columns=columns)


def slow_consumers_frame(answer: dict) -> pd.DataFrame:
    """The slow-consumer episodes, newest first: which group, when (publish time), how far behind its peers."""
    columns = ["group", "from", "to", "deliveries", "median at first", "worst median", "peers' median", "slowest"]
    rows = [
        {
            "group": e["group"],
            "from": clock(e["start_ns"]),
            "to": clock(e["end_ns"]),
            "deliveries": e["deliveries"],
            "median at first": format_ms(e["first_p50_ms"]),
            "worst median": format_ms(e["peak_p50_ms"]),
            "peers' median": format_ms(e["peers_p50_ms"]),
            "slowest": format_ms(e["max_ms"]),
        }
        for e in reversed(answer.get("slow", []))
    ]
    return pd.DataFrame(rows, columns=columns)


def latency_over_time(
    frame: pd.DataFrame, percentile: str, measure: str, palette: Mapping[str, str] | None = None
) -> go.Figure:
    """One line per key (channel, group or type) of one percentile over time, in ms."""
    if frame.empty:
        return empty_figure(f"No {measure.replace('_', ' ')} measurements in this window.")
    column = f"{percentile}_ms"
    shades = label_colors(frame["key"].unique(), palette)
    frame = plain_columns(frame, "key")
    fig = px.line(
        frame, x="time", y=column, color="key", markers=True, color_discrete_map=shades,
        labels={"time": "time (UTC)", column: f"{percentile} {measure.replace('_', ' ')} (ms)", "key": ""},
        hover_data={"count": ":,"},
    )  # fmt: skip
    return layout(fig, f"{percentile} {measure.replace('_', ' ')} latency over time")


def latency_histogram(samples: pd.DataFrame, measure: str, palette: Mapping[str, str] | None = None) -> go.Figure:
    """Distribution of one measure's samples, one colour per key, in ms; the x axis stops at the 99th
    percentile so one outlier cannot squash the rest (the outliers are counted in the title)."""
    chosen = samples[samples["measure"] == measure] if not samples.empty else samples
    if chosen.empty:
        return empty_figure(f"No {measure.replace('_', ' ')} samples in this window.")
    cut = float(chosen["ms"].quantile(0.99))
    kept = chosen[chosen["ms"] <= cut]
    shades = label_colors(kept["key"].unique(), palette)
    shown = plain_columns(kept, "key")
    fig = px.histogram(
        shown, x="ms", color="key", barmode="stack", nbins=50, color_discrete_map=shades,
        labels={"ms": f"{measure.replace('_', ' ')} latency (ms)", "key": ""},
    )  # fmt: skip
    fig.update_yaxes(title_text="events")
    if (chosen["ms"] < 0).any():
        fig.add_vline(x=0, line_dash="dot", line_color=colors.PROBLEM, annotation_text="0 ms: left of it, clock skew")
    hidden = len(chosen) - len(shown)
    title = f"Distribution of {measure.replace('_', ' ')} latency" + (
        f" ({hidden:,} above p99 not drawn)" if hidden else ""
    )
    return layout(fig, title)
