"""Overview: the headline numbers, the flow graph, every stream at every vantage point, the latest events."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, notices, selection
from dashboard.views import overview_transforms as page

st.title("Overview")
st.caption(
    "What the bus carried and what every consumer group did with it. Click a service or channel in the "
    "flow graph to filter every page on it."
)
view = filters.controls(data.known_names())


def headline(params: dict) -> None:
    numbers = page.overview_numbers(data.overview(params))
    rows = [numbers[: page.TRAFFIC_NUMBERS], numbers[page.TRAFFIC_NUMBERS :]]
    for row in rows:
        for column, (label, value, help_text) in zip(st.columns(len(row)), row, strict=True):
            column.metric(label, value, help=help_text or None)


_PICKED = "eventscope_flow_picked"


def remember_flow_click() -> None:
    """Called with the click, before the rerun. The chart's identity follows its figure, which changes
    with live data, so the rerun's chart may no longer carry the selection: keep the picked node here."""
    event = st.session_state.get("flow")
    picked = next((p.get("customdata") for p in selection.points(event) if p.get("customdata")), None)
    if isinstance(picked, list):
        picked = picked[0] if picked else None
    if picked:
        st.session_state[_PICKED] = picked


def apply_flow_click() -> None:
    picked = st.session_state.pop(_PICKED, None)
    chosen = page.selection_filter(picked) if picked else None
    if chosen:
        filters.store(filters.with_filter(view, *chosen))
        st.rerun(scope="app")


def flow_graph(params: dict) -> None:
    flow = data.flow(params)
    data.remember_flow_names(flow)
    links = st.toggle(
        "Show span links as edges",
        key="flow_links",
        help="Dotted: a producer service to each consumer service whose span links to it, even across traces.",
    )
    st.plotly_chart(
        page.flow_figure(flow, links, data.palette()),
        key="flow",
        on_select=remember_flow_click,
        selection_mode="points",
        width="stretch",
    )
    apply_flow_click()
    if flow["edges"]:
        with st.expander("Edges as a table"):
            st.dataframe(page.flow_edges_frame(flow), hide_index=True, width="stretch")


@st.fragment(run_every=notices.refresh_every(view))
def live() -> None:
    params = filters.api_params(view)
    st.caption(f"Showing: {filters.describe(view)}")
    with notices.guard("the headline numbers"):
        headline(params)
    with notices.guard("the flow graph"):
        flow_graph(params)
    with notices.guard("the latest events"):
        messages = data.recent_messages()
        if not messages and not data.health()["store"]["spans"]:
            notices.empty(notices.NO_EVENTS_HINT)
            return
        st.subheader("Latest events on the bus")
        st.dataframe(page.messages_frame(messages), hide_index=True, width="stretch")
    if st.toggle("Show every stream at every vantage point", key="overview_streams"):
        with notices.guard("the streams"):
            st.caption(
                "A stream is (channel, source, partition key) seen at one vantage point: `bus` is the Redis tap, "
                "any other name is a consumer group. Missing counts sequence numbers in gaps that are open now."
            )
            st.dataframe(page.streams_frame(data.report()), hide_index=True, width="stretch")


live()
