"""Contracts: what each consumer group declares it accepts, held against what was really sent and received."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, markdown, notices
from dashboard.views import contracts_transforms as page

st.title("Contracts")
st.caption(
    "Producers and consumers agree on event types and schema versions through a **schema registry**: one JSON "
    "Schema per type and version, and a `contracts.json` in which each consumer group declares what it accepts. "
    "Here that agreement is held against what was observed on the bus and in spans: types the registry does not "
    "know, versions a consumer does not accept, data its schema does not allow, types nobody consumes. "
    "`python -m collectors contracts` gives the same findings to a CI pipeline (exit 1 when there is one)."
)
view = filters.controls(data.known_names())


@st.fragment(run_every=notices.refresh_every(view))
def findings() -> None:
    with notices.guard("the contract findings"):
        answer = data.contracts(filters.api_params(view))
        registry = answer.get("registry")
        if registry is None:
            st.info(
                f"No schema registry here: {markdown.text(answer.get('note', ''))}. Point the collectors at a "
                "registry directory (the sample shop's is `sample_system/schemas`) to check contracts.",
                icon=":material/lightbulb:",
            )
            return
        seen = answer.get("observed", {})
        numbers = (
            ("Findings", f"{len(answer['findings']):,}", "Each is one cause, however many events showed it."),
            ("Schemas", f"{registry['schemas']:,}", f"{registry['types']:,} event types in {registry['path']}."),
            ("Consumer groups declared", f"{len(registry['consumer_groups']):,}", "Groups in contracts.json."),
            (
                "Payloads validated",
                f"{seen.get('messages_checked', 0):,} of {seen.get('messages', 0):,}",
                "Bus messages whose data was checked against its schema (the newest distinct ones per type).",
            ),
        )
        for column, (label, value, help_text) in zip(st.columns(4), numbers, strict=True):
            column.metric(label, value, help=help_text)
        if not answer["findings"]:
            st.success("Every observed event keeps its contract.", icon=":material/check_circle:")
            return
        st.markdown(
            " · ".join(f"**{markdown.text(label)}**: {n:,}" for label, n in page.kinds_found(answer)),
        )
        st.dataframe(page.findings_frame(answer), hide_index=True, width="stretch")


@st.fragment(run_every=notices.refresh_every(view))
def exchanges() -> None:
    st.subheader("Who sends and receives what")
    st.caption(
        "Each producer and consumer group by channel, event type and schema version, as observed; a receiving "
        "group's row says whether its declaration accepts that version."
    )
    with notices.guard("the observed types and versions"):
        params = filters.api_params(view)
        frame = page.exchanges_frame(data.contracts_observed(params), data.contracts(params).get("registry"))
        if frame.empty:
            notices.empty("Nothing sent or received in this window yet: start the shop, or widen the window.")
            return
        st.dataframe(frame, hide_index=True, width="stretch")


findings()
exchanges()
