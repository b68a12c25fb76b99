"""Duplicates: per consumer group, duplicates the idempotency guard handled vs ones processed twice (the bug)."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, notices, selection
from dashboard.views import duplicates_transforms as page

st.title("Duplicates")
st.caption(
    "The same event id seen more than once at one vantage point. At the bus it was published twice; at a "
    "consumer group it was delivered twice. **Handled**: the idempotency guard skipped the copy. "
    "**Processed twice**: the group did the work again, which is the bug. **Redelivered**: the message was handed "
    "over again after a failed, retried or rejected attempt; that is not a duplicate (it is on the Dead letters "
    "page with the retries). Select a row to open its trace."
)
view = filters.controls(data.known_names())


def open_trace(frame, event) -> None:
    rows = selection.rows(event)
    trace_ids = list(frame.iloc[rows[0]]["trace_ids"] or []) if rows and rows[0] < len(frame) else []
    if selection.fresh("duplicates_table", trace_ids[:1]):
        st.switch_page("views/traces.py", query_params={"trace": trace_ids[0], **filters.to_query(view)})


@st.fragment(run_every=notices.refresh_every(view))
def live() -> None:
    with notices.guard("duplicates"):
        answer = data.duplicates(filters.api_params(view))
        by_group = page.by_group_frame(answer)
        handled, processed = (
            int(by_group.loc[by_group["kind"].str.startswith(k), "count"].sum()) for k in ("handled", "processed")
        )
        redelivered = sum(g.get("redeliveries", 0) for g in answer["by_group"])
        left, middle, right, last = st.columns(4)
        left.metric("Duplicated events", f"{len(answer['duplicates']):,}")
        middle.metric("Handled by the guard", f"{handled:,}")
        right.metric("Processed twice (bug)", f"{processed:,}")
        last.metric(
            "Redelivered (not duplicates)", f"{redelivered:,}", help="Copies handed over again after a failed attempt."
        )
        if not answer["duplicates"]:
            st.success("No duplicates in this window.", icon=":material/check_circle:")
            return
        st.plotly_chart(page.duplicates_by_group(by_group), width="stretch")
        frame = page.duplicates_frame(answer)
        event = st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            on_select="rerun",
            selection_mode="single-row",
            key="duplicates_table",
            column_config={"trace_ids": st.column_config.ListColumn("traces")},
        )
        open_trace(frame, event)


live()
