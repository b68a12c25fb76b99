"""The Traces page's pure parts: search results, the waterfall (spans under their parents, links both ways,
the critical path) and the linked traces."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from dashboard import colors
from dashboard.charts import empty_figure, layout, plain
from dashboard.formats import clock, format_ms


def traces_frame(traces: dict) -> pd.DataFrame:
    """Search results: one row per trace."""
    columns = ["start (UTC)", "root", "duration", "spans", "errors", "services", "trace_id"]
    rows = [
        {
            "start (UTC)": clock(t["start_ns"]),
            "root": t.get("root_name"),
            "duration": format_ms(t["duration_ms"]),
            "spans": t["spans"],
            "errors": t["errors"],
            "services": ", ".join(t.get("services", [])),
            "trace_id": t["trace_id"],
        }
        for t in traces["traces"]
    ]
    return pd.DataFrame(rows, columns=columns)


def _span_order(spans: list[dict]) -> list[tuple[dict, int]]:
    """Spans depth first under their parents (children by start), with their depth; orphans are roots."""
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[dict]] = defaultdict(list)
    roots = []
    for span in sorted(spans, key=lambda s: (s["start_ns"], s["span_id"])):
        parent = span["parent_span_id"]
        (children[parent] if parent in ids and parent != span["span_id"] else roots).append(span)
    ordered: list[tuple[dict, int]] = []
    seen: set[str] = set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span["span_id"] in seen:
            continue
        seen.add(span["span_id"])
        ordered.append((span, depth))
        stack.extend((child, depth + 1) for child in reversed(children[span["span_id"]]))
    return ordered


def waterfall_frame(trace: dict) -> pd.DataFrame:
    """One row per span for the waterfall: offset and duration in ms, depth, errors, links, critical path."""
    spans = trace["spans"]
    columns = [
        "span_id", "label", "service", "name", "kind", "start_ms", "duration_ms", "depth",
        "error", "critical", "links_out", "links_in", "outcome",
    ]  # fmt: skip
    if not spans:
        return pd.DataFrame(columns=columns)
    start = min(s["start_ns"] for s in spans)
    critical = set(trace.get("critical_path", []))
    links_in = Counter(link["linked_span_id"] for link in trace.get("links_in", []))
    rows = []
    for span, depth in _span_order(spans):
        attrs = span["attributes"]
        rows.append(
            {
                "span_id": span["span_id"],
                "label": f"{'· ' * depth}{span['service']}: {span['name']}",
                "service": span["service"],
                "name": span["name"],
                "kind": span["kind"],
                "start_ms": (span["start_ns"] - start) / 1e6,
                "duration_ms": span["duration_ns"] / 1e6,
                "depth": depth,
                "error": span["status"] == "Error",
                "critical": span["span_id"] in critical,
                "links_out": len(span["links"]),
                "links_in": links_in.get(span["span_id"], 0),
                "outcome": attrs.get("eventscope.outcome", ""),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def links_out_frame(trace: dict) -> pd.DataFrame:
    """Links from this trace's spans to other spans (consumer → its producer)."""
    names = {s["span_id"]: f"{s['service']}: {s['name']}" for s in trace["spans"]}
    rows = [
        {
            "from span": names.get(link["span_id"], link["span_id"]),
            "linked trace": link["trace_id"],
            "linked span": link["linked_span_id"],
            "same trace": link["trace_id"] == trace["trace_id"],
        }
        for link in trace["links_out"]
    ]
    return pd.DataFrame(rows, columns=["from span", "linked trace", "linked span", "same trace"])


def links_in_frame(trace: dict) -> pd.DataFrame:
    """Spans elsewhere that link to this trace (producer → its consumers)."""
    names = {s["span_id"]: f"{s['service']}: {s['name']}" for s in trace["spans"]}
    rows = [
        {
            "to span": names.get(link["linked_span_id"], link["linked_span_id"]),
            "from": f"{link.get('service', '')}: {link.get('name', '')}",
            "linking trace": link["linked_trace_id"],
            "linking span": link["span_id"],
        }
        for link in trace.get("links_in", [])
    ]
    return pd.DataFrame(rows, columns=["to span", "from", "linking trace", "linking span"])


def linked_traces(trace: dict) -> list[str]:
    """Other traces this one links to or is linked from, in first-seen order."""
    found = [link["trace_id"] for link in trace["links_out"]]
    found += [link["linked_trace_id"] for link in trace.get("links_in", [])]
    return [t for t in dict.fromkeys(found) if t != trace["trace_id"]]


def _outline(error: bool, critical: bool) -> str:
    return colors.PROBLEM if error else "black" if critical else "rgba(0,0,0,0)"


def waterfall(frame: pd.DataFrame, palette: Mapping[str, str] | None = None) -> go.Figure:
    """Spans as bars from their start offset, coloured by service; critical path outlined in black, errors in red.

    Link counts appear in the bar text: ``⇠1`` a link to a producer, ``⇢2`` consumers linking here.
    """
    if frame.empty:
        return empty_figure("This trace has no spans.")
    fig = go.Figure()
    for service, spans in frame.groupby("service", sort=True):
        text = [
            ("⇠" + str(r.links_out) + " " if r.links_out else "") + ("⇢" + str(r.links_in) + " " if r.links_in else "")
            + format_ms(r.duration_ms) + (" ✖" if r.error else "")
            for r in spans.itertuples()
        ]  # fmt: skip
        fig.add_trace(
            go.Bar(
                y=spans["label"].map(plain), x=spans["duration_ms"].clip(lower=0.001), base=spans["start_ms"],
                orientation="h", name=plain(service), marker={
                    "color": colors.color_for(service, palette),
                    "line": {
                        "color": [_outline(e, c) for e, c in zip(spans["error"], spans["critical"])],
                        "width": [3 if e or c else 0 for e, c in zip(spans["error"], spans["critical"])],
                    },
                },
                text=text, textposition="outside", cliponaxis=False, customdata=spans["span_id"],
                hovertemplate="%{y}<br>start +%{base:.2f} ms, %{x:.2f} ms<extra></extra>",
            )
        )  # fmt: skip
    fig.update_yaxes(categoryorder="array", categoryarray=list(frame["label"].map(plain))[::-1], title_text="")
    fig.update_xaxes(title_text="time since trace start (ms)")
    fig.update_layout(barmode="overlay", bargap=0.35)
    return layout(fig, "Waterfall (black outline = critical path, red = error)", height=120 + 28 * len(frame))
