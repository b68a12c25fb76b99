"""Plotly chart builders: plain functions from API answers or DataFrames to figures.

Every axis names its unit; services and channels keep their colour from colors.py on every chart.
Plotly reads a few HTML tags in labels (``<b>``, ``<br>``, ``<a href>``), so names from the data pass
through ``plain`` first and show as their own characters.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard import colors, transforms

FONT = {"family": "Source Sans Pro, sans-serif", "size": 13}
ARRIVAL_COLORS = {"in order": colors.OK, "late": colors.WARNING, "duplicate": colors.PROBLEM}
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def plain(value: object) -> str:
    """A data value as Plotly label text: ``&``, ``<`` and ``>`` as entities, so no tag or link is made of it."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain_columns(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A copy of ``frame`` with these name columns as Plotly label text (see ``plain``)."""
    return frame.assign(**{column: frame[column].map(plain) for column in columns if column in frame})


def _layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0}, height=height, margin=_MARGIN, font=FONT, legend_title_text="")
    return fig


def empty_figure(message: str, height: int = 240) -> go.Figure:
    """A blank chart saying why it is blank."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 15, "color": colors.NEUTRAL})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "", height)


# --- flow graph -------------------------------------------------------------------------------


def _curve(start: tuple[float, float], end: tuple[float, float], bend: float, points: int = 24) -> tuple[list, list]:
    (x0, y0), (x1, y1) = start, end
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + bend
    ts = [i / (points - 1) for i in range(points)]
    xs = [(1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t**2 * x1 for t in ts]
    ys = [(1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t**2 * y1 for t in ts]
    return xs, ys


def _edge_hover(edge: dict) -> str:
    source, target = (plain(transforms.node_name(edge[end])[1]) for end in ("source", "target"))
    return (
        f"<b>{source} → {target}</b> ({edge['kind']})<br>{edge['count']:,} spans · "
        f"{edge.get('rate_per_s') or 0:,.1f}/s<br>p95 {transforms.format_ms(edge.get('p95_ms'))}<br>"
        f"gaps {edge.get('gaps', 0):,} · duplicates {edge.get('duplicates', 0):,} · errors {edge.get('errors', 0):,}"
    )


def _add_edge(fig: go.Figure, edge: dict, positions: dict) -> None:
    start, end = positions[edge["source"]], positions[edge["target"]]
    is_link = edge["kind"] == "link"
    span = abs(end[0] - start[0])
    # Edges that skip layers bow out, so they do not run through the nodes in between.
    bend = 0.45 if is_link else 0.3 * (span - 1) * (1 if end[1] >= start[1] else -1) if span > 1 else 0.0
    xs, ys = _curve(start, end, bend)
    trouble = edge.get("gaps") or edge.get("duplicates") or edge.get("errors")
    color = colors.PROBLEM if trouble else colors.color_for(transforms.node_name(edge["source"])[1])
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
            text=[plain(transforms.edge_label(edge)) if not is_link else ""], textposition="top center",
            textfont={"size": 10, "color": colors.PROBLEM if trouble else "#444"},
            hovertext=[_edge_hover(edge)], hoverinfo="text", customdata=[edge["target"]],
        )
    )  # fmt: skip


def flow_figure(flow: dict, show_links: bool = False) -> go.Figure:
    """Services (circles) and channels (squares) left to right; edges carry rate, p95 and problem badges.

    Link edges (producer service to consumer service, from span links) are drawn dotted when asked for.
    Each node's and edge midpoint's customdata is the node id that clicking it should filter on (an
    edge filters on its target).
    """
    if not flow["nodes"]:
        return empty_figure("No flow yet: no producer or consumer spans in this window.")
    positions = transforms.flow_positions(flow)
    fig = go.Figure()
    for edge in flow["edges"]:
        if edge["kind"] == "link" and not show_links:
            continue
        if edge["source"] in positions and edge["target"] in positions:
            _add_edge(fig, edge, positions)
    for kind, symbol in (("service", "circle"), ("channel", "square")):
        nodes = [n for n in flow["nodes"] if transforms.node_name(n["id"])[0] == kind]
        if not nodes:
            continue
        fig.add_trace(
            go.Scatter(
                x=[positions[n["id"]][0] for n in nodes], y=[positions[n["id"]][1] for n in nodes],
                mode="markers+text", name="services" if kind == "service" else "channels",
                marker={
                    "size": 34 if kind == "service" else 28, "symbol": symbol,
                    "color": [colors.color_for(transforms.node_name(n["id"])[1]) for n in nodes],
                    "line": {"width": 2, "color": "white"},
                },
                text=[plain(n.get("label") or transforms.node_name(n["id"])[1]) for n in nodes],
                textposition="bottom center",
                hovertext=[f"{kind}: {plain(transforms.node_name(n['id'])[1])}<br>click to filter every page"
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
    return _layout(
        fig, "Flow: services ● and channels ■ (click one to filter)", height=max(320, 130 * (max(ys) - min(ys) + 2))
    )


# --- latency ----------------------------------------------------------------------------------


def latency_over_time(frame: pd.DataFrame, percentile: str, measure: str) -> go.Figure:
    """One line per key (channel, group or type) of one percentile over time, in ms."""
    if frame.empty:
        return empty_figure(f"No {measure.replace('_', ' ')} measurements in this window.")
    column = f"{percentile}_ms"
    frame = _plain_columns(frame, "key")
    fig = px.line(
        frame, x="time", y=column, color="key", markers=True,
        color_discrete_map=colors.color_map(frame["key"].unique()),
        labels={"time": "time (UTC)", column: f"{percentile} {measure.replace('_', ' ')} (ms)", "key": ""},
        hover_data={"count": ":,"},
    )  # fmt: skip
    return _layout(fig, f"{percentile} {measure.replace('_', ' ')} latency over time")


def latency_histogram(samples: pd.DataFrame, measure: str) -> go.Figure:
    """Distribution of one measure's samples, one colour per key, in ms; the x axis stops at the 99th
    percentile so one outlier cannot squash the rest (the outliers are counted in the title)."""
    chosen = samples[samples["measure"] == measure] if not samples.empty else samples
    if chosen.empty:
        return empty_figure(f"No {measure.replace('_', ' ')} samples in this window.")
    cut = float(chosen["ms"].quantile(0.99))
    shown = _plain_columns(chosen[chosen["ms"] <= cut], "key")
    fig = px.histogram(
        shown, x="ms", color="key", barmode="stack", nbins=50,
        color_discrete_map=colors.color_map(shown["key"].unique()),
        labels={"ms": f"{measure.replace('_', ' ')} latency (ms)", "key": ""},
    )  # fmt: skip
    fig.update_yaxes(title_text="events")
    if (chosen["ms"] < 0).any():
        fig.add_vline(x=0, line_dash="dot", line_color=colors.PROBLEM, annotation_text="0 ms: left of it, clock skew")
    hidden = len(chosen) - len(shown)
    title = f"Distribution of {measure.replace('_', ' ')} latency" + (
        f" ({hidden:,} above p99 not drawn)" if hidden else ""
    )
    return _layout(fig, title)


# --- ordering ---------------------------------------------------------------------------------


def sequence_timeline(
    arrivals: pd.DataFrame, gaps: list[list[int]], lost_gaps: list[list[int]], vantage: str
) -> go.Figure:
    """Sequence number against arrival time: a clean staircase; late arrivals and duplicates stand out.

    Open gaps are shaded orange, gaps past the grace window (lost) red.
    """
    if arrivals.empty:
        return empty_figure(f"No arrivals of this stream at {plain(vantage)} in this window.")
    arrivals = _plain_columns(arrivals, "event_id")
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
    return _layout(fig, f"At {where}", height=340)


# --- duplicates -------------------------------------------------------------------------------


def duplicates_by_group(frame: pd.DataFrame) -> go.Figure:
    """Handled vs processed-twice duplicates per vantage point."""
    if frame.empty:
        return empty_figure("No duplicates in this window.")
    fig = px.bar(
        _plain_columns(frame, "vantage"), x="vantage", y="count", color="kind", barmode="group",
        color_discrete_map={"handled (guard skipped it)": colors.OK, "processed twice (bug)": colors.PROBLEM,
                            "redelivered (not a duplicate)": colors.NEUTRAL},
        labels={"vantage": "vantage point (bus or consumer group)", "count": "duplicate deliveries", "kind": ""},
    )  # fmt: skip
    return _layout(fig, "Duplicates per consumer group: handled vs processed twice")


# --- traces -----------------------------------------------------------------------------------


def _outline(error: bool, critical: bool) -> str:
    return colors.PROBLEM if error else "black" if critical else "rgba(0,0,0,0)"


def waterfall(frame: pd.DataFrame) -> go.Figure:
    """Spans as bars from their start offset, coloured by service; critical path outlined in black, errors in red.

    Link counts appear in the bar text: ``⇠1`` a link to a producer, ``⇢2`` consumers linking here.
    """
    if frame.empty:
        return empty_figure("This trace has no spans.")
    fig = go.Figure()
    for service, spans in frame.groupby("service", sort=True):
        text = [
            ("⇠" + str(r.links_out) + " " if r.links_out else "") + ("⇢" + str(r.links_in) + " " if r.links_in else "")
            + transforms.format_ms(r.duration_ms) + (" ✖" if r.error else "")
            for r in spans.itertuples()
        ]  # fmt: skip
        fig.add_trace(
            go.Bar(
                y=spans["label"].map(plain), x=spans["duration_ms"].clip(lower=0.001), base=spans["start_ms"],
                orientation="h", name=plain(service), marker={
                    "color": colors.color_for(service),
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
    return _layout(fig, "Waterfall (black outline = critical path, red = error)", height=120 + 28 * len(frame))


# --- broker -----------------------------------------------------------------------------------


def subscribers_per_channel(frame: pd.DataFrame) -> go.Figure:
    """Subscribers of each channel, one colour per channel."""
    if frame.empty:
        return empty_figure("No channel has subscribers right now.")
    frame = _plain_columns(frame, "channel")
    fig = px.bar(
        frame, x="channel", y="subscribers", color="channel", color_discrete_map=colors.color_map(frame["channel"]),
        labels={"channel": "channel", "subscribers": "subscribers (SUBSCRIBE)"},
    )  # fmt: skip
    fig.update_layout(showlegend=False)
    return _layout(fig, "Subscribers per channel", height=320)


def output_buffers(frame: pd.DataFrame) -> go.Figure:
    """Each subscriber's output buffer as a share of its limit: near 100 % Redis disconnects it."""
    known = frame.dropna(subset=["of limit"]) if not frame.empty else frame
    if known.empty:
        return empty_figure("No subscriber output buffer limits known.")
    fig = px.bar(
        _plain_columns(known, "name"), x="of limit", y="name", orientation="h", range_x=[0, 1],
        color="of limit", color_continuous_scale=[colors.OK, colors.WARNING, colors.PROBLEM], range_color=[0, 1],
        labels={"of limit": "output buffer / client-output-buffer-limit", "name": "subscriber"},
        hover_data={"output buffer (bytes)": ":,", "limit (bytes)": ":,"},
    )  # fmt: skip
    fig.update_xaxes(tickformat=".0%")
    fig.update_layout(coloraxis_showscale=False)
    return _layout(fig, "Output buffer of each subscriber, share of its limit", height=max(320, 60 + 26 * len(known)))


def broker_series(frame: pd.DataFrame) -> go.Figure:
    """Messages per second through the broker over time."""
    if frame.empty:
        return empty_figure("No broker samples in this window.")
    fig = px.line(frame, x="time", y="messages_per_s", labels={"time": "time (UTC)", "messages_per_s": "messages/s"})
    return _layout(fig, "Messages per second through Redis", height=300)
