"""Dead letters: the deliveries given up after their last attempt, why, and a redrive through the sample system;
and the retried deliveries, with their backoff and how they ended."""

from __future__ import annotations

import streamlit as st

from dashboard import controls, data, filters, markdown, notices, sample_cli
from dashboard.views import dead_letters_transforms as page

st.title("Dead letters")
st.caption(
    "A delivery whose last attempt failed goes to the dead-letter queue instead of blocking its consumer. "
    "Fix the cause, then **redrive**: publish the original event again to its channel."
)
view = filters.controls(data.known_names())


@st.fragment(run_every=notices.refresh_every(view))
def queue() -> None:
    with notices.guard("the dead letters"):
        frame = page.dead_letters_frame(data.dead_letters(filters.api_params(view)))
        st.metric("Dead letters in this window", f"{len(frame):,}")
        if frame.empty:
            st.success("The dead-letter queue is empty in this window.", icon=":material/check_circle:")
            return
        st.dataframe(frame, hide_index=True, width="stretch")


@st.fragment(run_every=notices.refresh_every(view))
def retried() -> None:
    st.subheader("Retried deliveries")
    st.caption(
        "A transient failure is retried with exponential backoff and jitter, inside the one consumer span of the "
        "delivery (kind *retry in one delivery*); after the last attempt the event goes to the dead-letter queue. "
        "A **redelivery** is the broker or task queue handing the same message to the same group again after a "
        "failed, retried, nacked or rejected attempt (Celery retries, RabbitMQ requeues, SQS messages not deleted "
        "before their visibility timeout): not a duplicate."
    )
    with notices.guard("the retried deliveries"):
        answer = data.retries(filters.api_params(view))
        outcomes = answer["outcomes"]
        ended_well = outcomes.get("processed", 0) + outcomes.get("duplicate_skipped", 0)
        numbers = (
            ("Retried deliveries", answer["count"], "Deliveries that took more than one attempt, and redeliveries."),
            ("Then processed", ended_well, "Retried deliveries whose last attempt succeeded."),
            ("Then dead-lettered", outcomes.get("dead_lettered", 0), "Retried until the last attempt, then given up."),
        )
        for column, (label, value, help_text) in zip(st.columns(3), numbers, strict=True):
            column.metric(label, f"{value:,}", help=help_text)
        frame = page.retried_frame(answer)
        if frame.empty:
            st.caption("No delivery needed a second attempt in this window.")
            return
        if answer["count"] > len(frame):
            st.caption(f"The newest {len(frame):,} of {answer['count']:,}.")
        st.dataframe(frame, hide_index=True, width="stretch")


def redrive() -> None:
    st.subheader("Redrive (sample shop)")
    if not controls.allowed():
        st.info("**Redrive is off here.** " + controls.HOW_TO_ENABLE, icon=":material/lock:")
        return
    entries = sample_cli.dlq_list()
    if entries.error:
        st.info(
            f"The sample system's dead-letter queue cannot be read here: {markdown.text(entries.error)}",
            icon=":material/info:",
        )
        return
    if not entries.items:
        st.caption("The sample shop's dead-letter queue is empty.")
        return
    labels = {sample_cli.entry_id(e): sample_cli.entry_label(e) for e in entries.items}
    picked = st.selectbox("Entry", list(labels), format_func=labels.get)
    if st.button("Redrive this event", icon=":material/replay:", type="primary"):
        result = sample_cli.dlq_redrive(picked)
        (st.success if result.ok else st.error)("Redriven." if result.ok else "The redrive failed.")
        if result.output:
            st.code(result.output, language=None)


queue()
retried()
redrive()
