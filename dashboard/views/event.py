"""Event: the life of one event by id: publish, the bus, every delivery, retries, dead letter."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, formats, markdown, notices
from dashboard.views import event_transforms as page

st.title("Event")
st.caption("Type an event id (the CloudEvents `id`) to follow it from its publish to every consumer group.")
view = filters.controls(data.known_names())


def example_ids() -> list[str]:
    try:
        return [m["event_id"] for m in data.recent_messages(5) if m["event_id"]]
    except Exception:  # examples are a convenience; the input works without them
        return []


def life(event_id: str) -> None:
    event = data.event(event_id)
    st.info(markdown.text(event.get("verdict") or "No verdict."), icon=":material/gavel:")
    steps = page.event_timeline(event)
    if steps:
        st.markdown("\n".join(f"1. `{formats.clock(ns)}` {markdown.text(text)}" for ns, text in steps))
    st.subheader("Deliveries")
    deliveries = page.deliveries_frame(event)
    if deliveries.empty:
        st.warning("No consumer group has processed this event.", icon=":material/warning:")
    else:
        st.dataframe(deliveries, hide_index=True, width="stretch")
    retries = page.retries_frame(event)
    if not retries.empty:
        st.subheader("Retries")
        st.dataframe(retries, hide_index=True, width="stretch")
    with st.expander(
        f"Published ({len(event.get('published', []))}) and seen on the bus ({len(event.get('bus', []))})"
    ):
        st.json({"published": event.get("published", []), "bus": event.get("bus", [])}, expanded=False)
    trace_ids = list(dict.fromkeys(d["trace_id"] for d in event["deliveries"] if d.get("trace_id")))
    for trace_id in trace_ids[:4]:
        st.page_link(
            "views/traces.py",
            label=f"Open trace {markdown.text(trace_id)}",
            icon=":material/account_tree:",
            query_params={"trace": trace_id},
        )


event_id = st.text_input("Event id", value=filters.page_param("id"), placeholder="e.g. 0193b1c2-...").strip()
filters.set_page_param("id", event_id)
if not event_id:
    examples = example_ids()
    notices.empty(
        "Paste an event id, or pick one from the Duplicates, Ordering and loss or Dead letters pages."
        + (" Recent ids on the bus: " + ", ".join(markdown.text(e) for e in examples) if examples else "")
    )
else:
    with notices.guard(f"event {event_id}"):
        life(event_id)
