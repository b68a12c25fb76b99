"""Traces: search, then a waterfall that shows span links both ways and a critical path that follows them."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, markdown, notices, selection
from dashboard.views import traces_transforms as page

SEARCH_LIMIT = 50

st.title("Traces")
st.caption(
    "An asynchronous flow often spans several traces: a consumer links to the producer span that sent its event. "
    "Here links are followed both ways, so a producer shows its consumers and a consumer its producer."
)
view = filters.controls(data.known_names())


def search_form() -> dict:
    left, middle, right, far = st.columns([2, 2, 1, 1])
    event_id = left.text_input("Event id", value=filters.page_param("event_id"), placeholder="exact CloudEvents id")
    subject = middle.text_input(
        "Order id (subject)", value=filters.page_param("subject"), placeholder="e.g. an order id"
    )
    min_ms = right.number_input(
        "Slower than (ms)", min_value=0.0, max_value=filters.MAX_MS, value=float(filters.page_param("min_ms", "0"))
    )
    errors = far.toggle("Errors only", value=filters.page_param("error", "false") == "true")
    for key, value in (("event_id", event_id.strip()), ("subject", subject.strip())):
        filters.set_page_param(key, value)
    filters.set_page_param("min_ms", f"{min_ms:g}" if min_ms else "")
    filters.set_page_param("error", "true" if errors else "")
    search = {"event_id": event_id.strip(), "subject": subject.strip(), "limit": SEARCH_LIMIT}
    search.update({"min_ms": min_ms or None, "error": "true" if errors else None})
    return search


@st.fragment(run_every=notices.refresh_every(view))
def results(search: dict) -> None:
    with notices.guard("the trace search"):
        traces = data.traces({**filters.api_params(view), **search})
        frame = page.traces_frame(traces)
        if frame.empty:
            notices.empty(notices.NO_SPANS_HINT if not view.active() else notices.FILTERED_HINT)
            return
        st.caption(f"{len(frame):,} traces, newest first. Select a row, or pick one below, to open it.")
        picked = st.dataframe(
            frame, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="trace_rows"
        )
        rows = selection.rows(picked)
        chosen = frame.iloc[rows[0]]["trace_id"] if rows and rows[0] < len(frame) else None
        labels = {
            t: " · ".join(map(str, r))
            for t, r in zip(frame["trace_id"], frame[["root", "duration", "services"]].values)
        }
        listed = selection.option(
            "open_trace",
            labels,
            st.selectbox(
                "Open a trace", ["", *labels], format_func=lambda t: labels.get(t, "pick one"), key="open_trace"
            ),
        )
        chosen = (
            chosen
            if selection.fresh("trace_rows", chosen)
            else listed
            if selection.fresh("open_trace", listed)
            else None
        )
        if chosen and chosen != filters.page_param("trace"):
            filters.set_page_param("trace", chosen)
            st.rerun(scope="app")


def open_buttons(trace: dict) -> None:
    linked = page.linked_traces(trace)
    if not linked:
        st.caption("No links to other traces: every consumer here shares its producer's trace.")
        return
    st.markdown("**Linked traces**: one click opens one.")
    outgoing = {link["trace_id"] for link in trace["links_out"]}
    for column, trace_id in zip(st.columns(min(len(linked), 4)), linked[:12], strict=False):
        role = "its producer" if trace_id in outgoing else "a consumer"
        if column.button(
            f"Open {markdown.text(trace_id[:12])}… ({role})", key=f"open_{trace_id}", icon=":material/link:"
        ):
            filters.set_page_param("trace", trace_id)
            st.rerun()


def trace_detail(trace_id: str) -> None:
    trace = data.trace(trace_id)
    frame = page.waterfall_frame(trace)
    services = markdown.text(", ".join(sorted(frame["service"].unique())))
    st.subheader(f"Trace {markdown.text(trace_id)}")
    st.caption(f"{len(frame):,} spans · services: {services} · links out {len(trace['links_out'])} · "
               f"links in {len(trace['links_in'])}")  # fmt: skip
    open_buttons(trace)
    st.plotly_chart(page.waterfall(frame, data.palette()), width="stretch")
    left, right = st.columns(2)
    left.markdown("**Links out** (a consumer → the producer span it came from)")
    left.dataframe(page.links_out_frame(trace), hide_index=True, width="stretch")
    right.markdown("**Links in** (consumers elsewhere → a producer span here)")
    right.dataframe(page.links_in_frame(trace), hide_index=True, width="stretch")
    names = dict(zip(frame["span_id"], frame["service"] + ": " + frame["name"], strict=True))
    path = [names.get(span_id, f"span {span_id[:8]} (another trace)") for span_id in trace.get("critical_path", [])]
    if path:
        st.markdown("**Critical path** (follows links as well as parents): " + " → ".join(map(markdown.text, path)))


search = search_form()
results(search)
trace_id = st.text_input("Trace id", value=filters.page_param("trace"), placeholder="32 hex characters").strip()
filters.set_page_param("trace", trace_id)
if trace_id:
    with notices.guard("this trace"):
        trace_detail(trace_id.lower())
