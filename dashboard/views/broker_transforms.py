"""The Broker page's pure parts: channels, subscribers and their output buffers, messages per second."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard import colors
from dashboard.charts import empty_figure, label_colors, layout, plain_columns
from dashboard.formats import timestamp


def broker_channels_frame(broker: dict) -> pd.DataFrame:
    """Subscribers per channel from the latest broker sample."""
    latest = broker.get("latest") or {}
    return pd.DataFrame(latest.get("channels", []), columns=["channel", "subscribers"])


def broker_clients_frame(broker: dict) -> pd.DataFrame:
    """Subscriber connections with their output buffer against its limit, the fullest first."""
    latest = broker.get("latest") or {}
    rows = [
        {
            "name": f"{c.get('name') or 'unnamed'} ({c.get('addr')})",
            "addr": c.get("addr"),
            "channels": c.get("sub"),
            "patterns": c.get("psub"),
            "output buffer (bytes)": c.get("omem"),
            "limit (bytes)": c.get("limit_bytes"),
            "of limit": c.get("fraction"),
        }
        for c in latest.get("clients", [])
    ]
    columns = ["name", "addr", "channels", "patterns", "output buffer (bytes)", "limit (bytes)", "of limit"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("output buffer (bytes)", ascending=False) if rows else frame


NODE_COLUMNS = ["node", "role", "clients", "subscribers", "patterns", "PUBLISH calls", "SPUBLISH calls"]
NODE_COLUMNS += ["memory (bytes)", "fullest output buffer (bytes)", "error"]
ROLES = {"master": "primary", "slave": "replica"}


def cluster_nodes_frame(broker: dict) -> pd.DataFrame:
    """A cluster's nodes as the latest sample saw each (empty off a cluster): silent ones first, then primaries."""
    nodes = ((broker.get("latest") or {}).get("info") or {}).get("nodes") or {}
    rows = [
        {
            "node": address,
            "role": ROLES.get(node.get("role"), node.get("role")) if node.get("up") else "not answering",
            "clients": node.get("connected_clients"),
            "subscribers": node.get("subscribers"),
            "patterns": node.get("numpat"),
            "PUBLISH calls": node.get("publish_calls"),
            "SPUBLISH calls": node.get("spublish_calls"),
            "memory (bytes)": node.get("used_memory"),
            "fullest output buffer (bytes)": node.get("omem_max"),
            "error": node.get("error"),
        }
        for address, node in nodes.items()
        if isinstance(node, Mapping)
    ]
    frame = pd.DataFrame(rows, columns=NODE_COLUMNS)
    return frame.sort_values(["role", "node"], kind="stable").reset_index(drop=True) if rows else frame


def broker_series_frame(broker: dict) -> pd.DataFrame:
    """Broker samples over time."""
    rows = [
        {"time": timestamp(s["t_ns"]), **{k: s[k] for k in ("messages_per_s", "clients", "omem_max")}}
        for s in broker.get("series", [])
    ]
    return pd.DataFrame(rows, columns=["time", "messages_per_s", "clients", "omem_max"])


def tapped_channels_frame(flow: dict) -> pd.DataFrame:
    """Channels the bus tap saw messages on (any kind), busiest first."""
    rows = [
        {"channel": n["label"], "messages": n["messages"], "messages/s": n.get("rate_per_s") or 0.0}
        for n in flow.get("nodes", [])
        if n.get("kind") == "channel" and n.get("messages")
    ]
    frame = pd.DataFrame(rows, columns=["channel", "messages", "messages/s"])
    return frame.sort_values("messages", ascending=False, kind="stable") if rows else frame


def subscribers_per_channel(frame: pd.DataFrame, palette: Mapping[str, str] | None = None) -> go.Figure:
    """Subscribers of each channel, one colour per channel."""
    if frame.empty:
        return empty_figure("No channel has subscribers right now.")
    shades = label_colors(frame["channel"], palette)
    frame = plain_columns(frame, "channel")
    fig = px.bar(
        frame, x="channel", y="subscribers", color="channel", color_discrete_map=shades,
        labels={"channel": "channel", "subscribers": "subscribers (SUBSCRIBE)"},
    )  # fmt: skip
    fig.update_layout(showlegend=False)
    return layout(fig, "Subscribers per channel", height=320)


def output_buffers(frame: pd.DataFrame) -> go.Figure:
    """Each subscriber's output buffer as a share of its limit: near 100 % Redis disconnects it."""
    known = frame.dropna(subset=["of limit"]) if not frame.empty else frame
    if known.empty:
        return empty_figure("No subscriber output buffer limits known.")
    fig = px.bar(
        plain_columns(known, "name"), x="of limit", y="name", orientation="h", range_x=[0, 1],
        color="of limit", color_continuous_scale=[colors.OK, colors.WARNING, colors.PROBLEM], range_color=[0, 1],
        labels={"of limit": "output buffer / client-output-buffer-limit", "name": "subscriber"},
        hover_data={"output buffer (bytes)": ":,", "limit (bytes)": ":,"},
    )  # fmt: skip
    fig.update_xaxes(tickformat=".0%")
    fig.update_layout(coloraxis_showscale=False)
    return layout(fig, "Output buffer of each subscriber, share of its limit", height=max(320, 60 + 26 * len(known)))


def broker_series(frame: pd.DataFrame) -> go.Figure:
    """Messages per second through the broker over time."""
    if frame.empty:
        return empty_figure("No broker samples in this window.")
    fig = px.line(frame, x="time", y="messages_per_s", labels={"time": "time (UTC)", "messages_per_s": "messages/s"})
    return layout(fig, "Messages per second through Redis", height=300)
