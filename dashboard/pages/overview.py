"""Overview: the report's headline numbers, every stream at every vantage point, the latest events."""

from __future__ import annotations

import streamlit as st

from dashboard import data, transforms
from dashboard.client import ApiUnavailable

REFRESH_S = 3
EMPTY_HINT = (
    "No events or spans yet. Point your services at the collector: "
    "`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318` for spans, and give the collectors "
    "`--redis-url` to tap your Redis Pub/Sub."
)

st.title("Overview")
live = st.sidebar.toggle("Live (refresh every 3 s)", value=True)


@st.fragment(run_every=REFRESH_S if live else None)
def live_numbers() -> None:
    try:
        report = data.report()
        messages = data.recent_messages()
    except ApiUnavailable as exc:
        st.error(f"The collectors are unreachable. {exc}")
        return
    numbers = transforms.headline(report)
    for column, (label, key) in zip(st.columns(len(transforms.HEADLINE)), transforms.HEADLINE, strict=False):
        column.metric(label, f"{numbers[key]:,}")
    if not report["streams"] and not report["spans"] and not messages:
        st.info(EMPTY_HINT)
        return
    st.subheader("Streams")
    st.caption(
        "A stream is (channel, source, partition key) seen at one vantage point: `bus` is the Redis tap, "
        "any other name is a consumer group. Missing counts sequence numbers in gaps that are open now."
    )
    st.dataframe(transforms.streams_frame(report), hide_index=True, width="stretch")
    st.subheader("Latest events on the bus")
    st.dataframe(transforms.messages_frame(messages), hide_index=True, width="stretch")


live_numbers()
