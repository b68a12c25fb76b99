"""Instrumentation health: what the telemetry lacks for the analyses to be exact."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, markdown, notices
from dashboard.views import instrumentation_transforms as page

st.title("Instrumentation health")
st.caption(
    "The analyses key on the OpenTelemetry messaging conventions (docs/events.md). Spans that lack them, "
    "consumers that do not link to their producer, and bus events without a producer span make flows invisible."
)
view = filters.controls(data.known_names())


def refused() -> int:
    """Requests the collectors turned away (a sender that was refused must never be silent); their number."""
    with notices.guard("the refused requests"):
        frame = page.refusals_frame(data.health())
        if frame.empty:
            return 0
        total = int(frame["requests"].sum())
        st.error(
            f"The collectors refused {total:,} telemetry request(s): their spans are not stored. "
            "Each row says why and what to do; the collectors' log names the sender's address.",
            icon=":material/block:",
        )
        st.subheader("Refused requests")
        st.dataframe(frame, hide_index=True, width="stretch")
        return total
    return 0


@st.fragment(run_every=notices.refresh_every(view))
def live() -> None:
    refusals = refused()
    with notices.guard("instrumentation health"):
        health = data.instrumentation(filters.api_params(view))
        missing = page.missing_attributes_frame(health)
        unlinked = page.unlinked_frame(health)
        orphans = health.get("bus_without_producer") or {"count": 0, "examples": []}
        cols = st.columns(3)
        cols[0].metric("Spans missing attributes", f"{int(missing['count'].sum()) if not missing.empty else 0:,}")
        cols[1].metric(
            "Consumer spans without a link", f"{int(unlinked['count'].sum()) if not unlinked.empty else 0:,}"
        )
        cols[2].metric(
            "Bus events without a producer span",
            f"{orphans['count']:,}",
            help="Counted once an event is 15 s old: SDKs send spans in batches, so the newest events' "
            "producer spans are usually still on their way.",
        )
        blind = page.blind_spots_frame(health)
        if missing.empty and unlinked.empty and not orphans["count"] and blind.empty and not refusals:
            st.success("The telemetry has everything the analyses need.", icon=":material/check_circle:")
            return
        if not blind.empty:
            st.subheader("What this telemetry cannot show")
            st.caption(
                "Without message ids and sequence numbers some faults are invisible; each row says how to see them."
            )
            st.dataframe(blind, hide_index=True, width="stretch")
        if not missing.empty:
            st.subheader("Missing attributes")
            st.dataframe(missing, hide_index=True, width="stretch")
        if not unlinked.empty:
            st.subheader("Consumers without a span link to their producer")
            st.dataframe(unlinked, hide_index=True, width="stretch")
        if orphans["count"]:
            st.subheader("Events on the bus that no producer span describes")
            st.caption(
                "Their producers are not traced, or export elsewhere. Examples: "
                + ", ".join(markdown.text(e) for e in orphans["examples"])
            )


live()
