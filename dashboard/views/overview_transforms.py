"""The Overview page's pure parts: its headline numbers, its tables, and the flow graph's layout and figure.

Plain data in, plain data (or a Plotly figure) out: no Streamlit, no I/O; views/overview.py draws them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from dashboard import colors
from dashboard.charts import empty_figure, layout, plain
from dashboard.flow_nodes import node_name
from dashboard.formats import clock, format_count, format_gaps, format_ms

OVERVIEW_NUMBERS = (
    ("Events/s", "events_per_s", "Events per second in the window (every message without an envelope counts as one)."),
    ("Bus messages", "messages", "Every message the Redis tap saw on a tapped channel, of any kind."),
    ("CloudEvents", "bus_messages", "Bus messages that are valid CloudEvents."),
    ("Unenveloped", "unenveloped", "Bus messages that are not CloudEvents: counted, but without an id or a "
     "sequence their duplicates and gaps cannot be seen (Instrumentation health says how to see them)."),
    ("Deliveries", "deliveries", "Event deliveries handled by consumer groups (one per event and group)."),
    ("p95 delivery", "p95_delivery_ms", "95th percentile of publish to process start."),
    ("Malformed", "malformed", "Bus messages that claim to be CloudEvents and are not valid ones."),
    ("Missing", "missing", "Sequence numbers in open gaps: late or lost, at the bus or at a consumer group."),
    ("Lost", "lost", "Missing numbers whose gap has stayed open past the grace window."),
    ("Duplicates", "duplicates", "Copies of an event id seen again at one vantage point (redeliveries excluded)."),
    ("Done twice", "duplicates_processed", "Duplicates a consumer processed again (processed twice): the bug."),
    ("Redeliveries", "redeliveries", "Messages handed to a consumer group again after a failed attempt: "
     "not duplicates (the Dead letters page lists them with the retries)."),
    ("Out of order", "out_of_order", "Events that arrived after a later one of their stream."),
    ("Dead letters", "dead_letters", "Deliveries given up after their last attempt."),
)  # fmt: skip
"""The Overview's headline: label, /overview field, help text. The first six are the traffic, the rest trouble."""
TRAFFIC_NUMBERS = 6


def overview_numbers(overview: dict) -> list[tuple[str, str, str]]:
    """(label, formatted value, help) for each headline number of /overview."""
    numbers = []
    for label, key, help_text in OVERVIEW_NUMBERS:
        value = overview.get(key)
        numbers.append((label, format_ms(value) if key.endswith("_ms") else format_count(value), help_text))
    return numbers


def streams_frame(report: dict) -> pd.DataFrame:
    """One row per stream and vantage point, gaps written as readable ranges."""
    columns = ["vantage", "channel", "source", "partitionkey", "received", "duplicates", "out_of_order", "missing"]
    extra = [c for c in ("lost",) if any(c in s for s in report["streams"])]
    rows = [{**{c: s.get(c) for c in columns + extra}, "gaps": format_gaps(s["gaps"])} for s in report["streams"]]
    return pd.DataFrame(rows, columns=columns + extra + ["gaps"])


def messages_frame(messages: list[dict]) -> pd.DataFrame:
    """Recent bus messages, newest first, with arrival time as UTC clock time."""
    columns = ["arrived (UTC)", "channel", "type", "source", "partitionkey", "sequence", "event id", "status"]
    rows = [
        {
            "arrived (UTC)": clock(m["arrival_ns"]),
            "channel": m["channel"],
            "type": m["type"],
            "source": m["source"],
            "partitionkey": m["partitionkey"],
            "sequence": m["sequence"],
            "event id": m["event_id"],
            "status": "ok" if m["valid"] else f"malformed: {m['error']}" if m["kind"] == "malformed" else "no envelope",
        }
        for m in messages
    ]
    return pd.DataFrame(rows, columns=columns)


def flow_layers(flow: dict) -> dict[str, int]:
    """A column per node, left to right along publish and deliver edges (producers first).

    A node's column is one more than the furthest of its upstream neighbours. A cycle (a compensation
    path back to an earlier service) is cut where it closes, so it draws as one edge running back.
    """
    nodes = [n["id"] for n in flow["nodes"]]
    layer = dict.fromkeys(nodes, 0)
    edges = [(e["source"], e["target"]) for e in flow["edges"] if e["kind"] in ("publish", "deliver")]
    forward = _without_back_edges(nodes, [(s, t) for s, t in edges if s in layer and t in layer])
    for _ in range(len(nodes)):
        changed = False
        for source, target in forward:
            if layer[target] < layer[source] + 1:
                layer[target] = layer[source] + 1
                changed = True
        if not changed:
            break
    return layer


def _without_back_edges(nodes: list[str], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The edges less those closing a cycle, found depth first from the nodes nothing points to."""
    downstream: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        downstream[source].append(target)
    targets = {t for _, t in edges}
    starts = [n for n in nodes if n not in targets] + [n for n in nodes if n in targets]
    on_path: set[str] = set()
    done: set[str] = set()
    back: set[tuple[str, str]] = set()
    for start in starts:
        if start in done:
            continue
        stack = [(start, iter(downstream[start]))]
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                back.add((node, child))
            elif child not in done:
                on_path.add(child)
                stack.append((child, iter(downstream[child])))
    return [edge for edge in edges if edge not in back]


def flow_positions(flow: dict) -> dict[str, tuple[float, float]]:
    """(x, y) per node: x is the layer; within a layer, nodes sit near the mean height of their neighbours
    (two barycentre sweeps, left to right then right to left), which keeps edge crossings few."""
    layers = flow_layers(flow)
    by_layer: dict[int, list[str]] = defaultdict(list)
    for node in sorted(layers, key=lambda n: node_name(n)[1]):
        by_layer[layers[node]].append(node)
    neighbours: dict[str, set[str]] = defaultdict(set)
    for e in flow["edges"]:
        if e["kind"] in ("publish", "deliver"):
            neighbours[e["source"]].add(e["target"])
            neighbours[e["target"]].add(e["source"])
    y = {node: _spread(i, len(members)) for members in by_layer.values() for i, node in enumerate(members)}
    order = sorted(by_layer)
    for sweep in (order, order[::-1]):
        for x in sweep:
            members = by_layer[x]

            def centre(node: str, placed: dict = y) -> float:
                near = [placed[n] for n in neighbours[node] if n in placed]
                return sum(near) / len(near) if near else placed[node]

            members.sort(key=lambda n: (-centre(n), node_name(n)[1]))
            y.update({node: _spread(i, len(members)) for i, node in enumerate(members)})
    return {node: (float(layers[node]), y[node]) for node in layers}


def _spread(index: int, count: int) -> float:
    return -(index - (count - 1) / 2)


def edge_badges(edge: dict) -> str:
    """The warning badges of an edge: gaps, duplicates, errors."""
    badges = []
    for key, word in (("gaps", "gap"), ("duplicates", "dup"), ("errors", "err")):
        if edge.get(key):
            badges.append(f"⚠ {edge[key]:,} {word}{'s' if edge[key] != 1 else ''}")
    return " ".join(badges)


def edge_label(edge: dict) -> str:
    """The short text on an edge: rate, p95 and badges (numbers and fixed words only, so its ``<br>`` stays a line
    break on the chart)."""
    parts = [f"{edge.get('rate_per_s') or 0:,.1f}/s"]
    if edge.get("p95_ms") is not None:
        parts.append(f"p95 {format_ms(edge['p95_ms'])}")
    badges = edge_badges(edge)
    return " · ".join(parts) + (f"<br>{badges}" if badges else "")


def flow_edges_frame(flow: dict) -> pd.DataFrame:
    """The flow's edges as a table, problems first."""
    columns = ["from", "to", "kind", "count", "rate/s", "p95", "gaps", "duplicates", "errors"]
    rows = [
        {
            "from": node_name(e["source"])[1],
            "to": node_name(e["target"])[1],
            "kind": e["kind"],
            "count": e["count"],
            "rate/s": round(e.get("rate_per_s") or 0.0, 2),
            "p95": format_ms(e.get("p95_ms")),
            "gaps": e.get("gaps", 0),
            "duplicates": e.get("duplicates", 0),
            "errors": e.get("errors", 0),
        }
        for e in flow["edges"]
    ]
    frame = pd.DataFrame(rows, columns=columns)
    trouble = frame[["gaps", "duplicates", "errors"]].sum(axis=1) if rows else []
    return frame.assign(_trouble=trouble).sort_values(["_trouble", "count"], ascending=False).drop(columns="_trouble")


def selection_filter(node_id: str) -> tuple[str, str] | None:
    """The filter that clicking a flow node sets: ``("channel", name)`` or ``("service", name)``."""
    kind, name = node_name(node_id)
    if kind in ("service", "channel") and name:
        return kind, name
    return None


def _curve(start: tuple[float, float], end: tuple[float, float], bend: float, points: int = 24) -> tuple[list, list]:
    (x0, y0), (x1, y1) = start, end
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + bend
    ts = [i / (points - 1) for i in range(points)]
    xs = [(1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t**2 * x1 for t in ts]
    ys = [(1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t**2 * y1 for t in ts]
    return xs, ys


def _edge_hover(edge: dict) -> str:
    source, target = (plain(node_name(edge[end])[1]) for end in ("source", "target"))
    return (
        f"<b>{source} → {target}</b> ({edge['kind']})<br>{edge['count']:,} spans · "
        f"{edge.get('rate_per_s') or 0:,.1f}/s<br>p95 {format_ms(edge.get('p95_ms'))}<br>"
        f"gaps {edge.get('gaps', 0):,} · duplicates {edge.get('duplicates', 0):,} · errors {edge.get('errors', 0):,}"
    )


def _add_edge(fig: go.Figure, edge: dict, positions: dict, palette: Mapping[str, str] | None) -> None:
    start, end = positions[edge["source"]], positions[edge["target"]]
    is_link = edge["kind"] == "link"
    span = abs(end[0] - start[0])
    # Edges that skip layers bow out, so they do not run through the nodes in between.
    bend = 0.45 if is_link else 0.3 * (span - 1) * (1 if end[1] >= start[1] else -1) if span > 1 else 0.0
    xs, ys = _curve(start, end, bend)
    trouble = edge.get("gaps") or edge.get("duplicates") or edge.get("errors")
    color = colors.PROBLEM if trouble else colors.color_for(node_name(edge["source"])[1], palette)
    fig.add_trace(
        go.Scatter(
            x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
            line={"color": color, "width": 1.5 if is_link else 2.5, "dash": "dot" if is_link else "solid"},
        )
    )  # fmt: skip
    fig.add_annotation(
        x=xs[-1], y=ys[-1], ax=xs[-3], ay=ys[-3], xref="x", yref="y", axref="x", ayref="y",
        showarrow=True, arrowhead=3, arrowsize=1.4, arrowcolor=color, standoff=16, text="",
    )  # fmt: skip
    middle = len(xs) // 2
    fig.add_trace(
        go.Scatter(
            x=[xs[middle]], y=[ys[middle]], mode="markers+text", showlegend=False,
            marker={"size": 12, "color": color, "symbol": "diamond"},
            text=[edge_label(edge) if not is_link else ""], textposition="top center",
            textfont={"size": 10, "color": colors.PROBLEM if trouble else "#444"},
            hovertext=[_edge_hover(edge)], hoverinfo="text", customdata=[edge["target"]],
        )
    )  # fmt: skip


def flow_figure(flow: dict, show_links: bool = False, palette: Mapping[str, str] | None = None) -> go.Figure:
    """Services (circles) and channels (squares) left to right; edges carry rate, p95 and problem badges.

    Link edges (producer service to consumer service, from span links) are drawn dotted when asked for.
    Each node's and edge midpoint's customdata is the node id that clicking it should filter on (an
    edge filters on its target).
    """
    if not flow["nodes"]:
        return empty_figure("No flow yet: no producer or consumer spans in this window.")
    positions = flow_positions(flow)
    fig = go.Figure()
    for edge in flow["edges"]:
        if edge["kind"] == "link" and not show_links:
            continue
        if edge["source"] in positions and edge["target"] in positions:
            _add_edge(fig, edge, positions, palette)
    for kind, symbol in (("service", "circle"), ("channel", "square")):
        nodes = [n for n in flow["nodes"] if node_name(n["id"])[0] == kind]
        if not nodes:
            continue
        fig.add_trace(
            go.Scatter(
                x=[positions[n["id"]][0] for n in nodes], y=[positions[n["id"]][1] for n in nodes],
                mode="markers+text", name="services" if kind == "service" else "channels",
                marker={
                    "size": 34 if kind == "service" else 28, "symbol": symbol,
                    "color": [colors.color_for(node_name(n["id"])[1], palette) for n in nodes],
                    "line": {"width": 2, "color": "white"},
                },
                text=[plain(n.get("label") or node_name(n["id"])[1]) for n in nodes],
                textposition="bottom center",
                hovertext=[f"{kind}: {plain(node_name(n['id'])[1])}<br>click to filter every page"
                           for n in nodes],
                hoverinfo="text", customdata=[n["id"] for n in nodes],
            )
        )  # fmt: skip
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    fig.update_xaxes(visible=False, range=[min(xs) - 0.4, max(xs) + 0.4])
    fig.update_yaxes(visible=False, range=[min(ys) - 0.9, max(ys) + 0.9])
    fig.update_layout(
        clickmode="event+select",
        dragmode=False,
        plot_bgcolor="white",
        legend={"orientation": "h", "yanchor": "bottom", "y": -0.08, "x": 0},
    )
    return layout(
        fig, "Flow: services ● and channels ■ (click one to filter)", height=max(320, 130 * (max(ys) - min(ys) + 2))
    )
