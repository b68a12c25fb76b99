"""Dead letters: the deliveries given up after their last attempt, why, and a redrive through the sample system."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, notices, sample_cli, transforms

st.title("Dead letters")
st.caption(
    "A delivery whose last attempt failed goes to the dead-letter queue instead of blocking its consumer. "
    "Fix the cause, then **redrive**: publish the original event again to its channel."
)
view = filters.controls(data.known_names())


@st.fragment(run_every=notices.refresh_every(view))
def queue() -> None:
    with notices.guard("the dead letters"):
        frame = transforms.dead_letters_frame(data.dead_letters(filters.api_params(view)))
        st.metric("Dead letters in this window", f"{len(frame):,}")
        if frame.empty:
            st.success("The dead-letter queue is empty in this window.", icon=":material/check_circle:")
            return
        st.dataframe(frame, hide_index=True, width="stretch")


def redrive() -> None:
    st.subheader("Redrive (sample shop)")
    entries = sample_cli.dlq_list()
    if entries.error:
        st.info(f"The sample system's dead-letter queue cannot be read here: {entries.error}", icon=":material/info:")
        return
    if not entries.items:
        st.caption("The sample shop's dead-letter queue is empty.")
        return
    labels = {sample_cli.entry_id(e): sample_cli.entry_label(e) for e in entries.items}
    picked = st.selectbox("Entry", list(labels), format_func=labels.get)
    if st.button("Redrive this event", icon=":material/replay:", type="primary"):
        result = sample_cli.dlq_redrive(picked)
        (st.success if result.ok else st.error)(result.output or ("redriven" if result.ok else "redrive failed"))


queue()
redrive()
