"""Broker: channels and their subscribers, pattern subscriptions, output buffers against their limit, messages/s."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, formats, notices
from dashboard.views import broker_transforms as page
from dashboard.views import latency_transforms

st.title("Broker")
st.caption(
    "What Redis itself says (PUBSUB, CLIENT LIST, INFO). Pub/Sub keeps nothing: a subscriber that reads too "
    "slowly fills its output buffer, and at the limit Redis disconnects it, losing every message in between."
)
view = filters.controls(data.known_names())


def slow_consumers(params: dict) -> None:
    st.subheader("Slow consumers")
    with notices.guard("slow consumers"):
        answer = data.slow_consumers(params)
        if not answer["slow"]:
            st.caption("No consumer group fell behind its peers in this window (definition: docs/analyses.md).")
            return
        st.caption(
            "Groups whose deliveries started far later after publication than the other groups' did, bucket after "
            "bucket: while they lag, their messages wait in their output buffer above."
        )
        st.dataframe(latency_transforms.slow_consumers_frame(answer), hide_index=True, width="stretch")


@st.fragment(run_every=notices.refresh_every(view))
def live() -> None:
    with notices.guard("the broker"):
        broker = data.broker(filters.api_params(view))
        latest = broker.get("latest")
        if not latest:
            notices.empty("No broker samples yet: the collectors sample Redis when started with `--redis-url`.")
            return
        clients = page.broker_clients_frame(broker)
        series = page.broker_series_frame(broker)
        rate = series["messages_per_s"].iloc[-1] if not series.empty else None
        cols = st.columns(4)
        cols[0].metric("Messages/s", formats.format_count(rate))
        cols[1].metric("Channels with subscribers", f"{len(latest.get('channels', [])):,}")
        cols[2].metric("Pattern subscriptions", f"{latest.get('numpat', 0):,}")
        fullest = clients["of limit"].max() if not clients.empty else None
        cols[3].metric("Fullest output buffer", "–" if fullest is None or fullest != fullest else f"{fullest:.0%}")
        left, right = st.columns(2)
        left.plotly_chart(
            page.subscribers_per_channel(page.broker_channels_frame(broker), data.palette()), width="stretch"
        )
        right.plotly_chart(page.output_buffers(clients), width="stretch")
        st.plotly_chart(page.broker_series(series), width="stretch")
        tapped = page.tapped_channels_frame(data.flow(filters.api_params(view)))
        if not tapped.empty:
            st.subheader("Messages the tap saw, per channel")
            st.caption("Every message counts, CloudEvent or not; unenveloped ones have no id to find copies or gaps.")
            st.dataframe(tapped, hide_index=True, width="stretch")
        nodes = page.cluster_nodes_frame(broker)
        if not nodes.empty:
            st.subheader("Cluster nodes")
            st.caption(
                "Each node of the Redis Cluster as the last poll saw it; the figures above add them up. A classic "
                "PUBLISH reaches every node, a sharded SPUBLISH only its shard (docs/scale.md)."
            )
            st.dataframe(nodes, hide_index=True, width="stretch")
        st.subheader("Subscribers")
        st.dataframe(
            clients,
            hide_index=True,
            width="stretch",
            column_config={
                "of limit": st.column_config.ProgressColumn("of limit", min_value=0, max_value=1, format="percent")
            },
        )
    slow_consumers(filters.api_params(view))


live()
