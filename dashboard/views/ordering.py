"""Ordering and loss: per stream, the sequence timeline at the bus beside each consumer group, and the lost events."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, formats, markdown, notices
from dashboard.views import ordering_transforms as page

MAX_VANTAGES = 6  # timelines for one stream, two a row: the bus and up to five consumer groups

st.title("Ordering and loss")
st.caption(
    "Within a stream (channel, source, partition key) sequence numbers grow by one. A **gap** is a missing "
    "number; it is **late** if it arrives later (out of order) and **lost** once it stays missing past the "
    "grace window. Compare the bus with each consumer group to see where an event was lost."
)
view = filters.controls(data.known_names())


def choose_stream(report: dict) -> dict | None:
    streams = [s for s in page.stream_choices(report) if not view.channel or s["channel"] == view.channel]
    if not streams:
        return None
    labels = [page.stream_label(s) for s in streams]
    keys = ["|".join(v or "" for v in page.stream_key(s).values()) for s in streams]
    wanted = filters.page_param("stream", keys[0], choices=keys)
    picked = st.selectbox(
        "Stream (gaps first, then out of order, then duplicates)",
        range(len(streams)),
        index=keys.index(wanted),
        format_func=labels.__getitem__,
    )
    filters.set_page_param("stream", keys[picked])
    return streams[picked]


def timelines(stream: dict, params: dict) -> None:
    st.caption(
        "Each dot is an arrival: green in order, orange late, red a duplicate. Shaded bands are gaps: "
        "orange not arrived yet, red lost (past the grace window)."
    )
    wanted = [v for v in stream["vantages"] if not view.group or v in ("bus", view.group)]
    vantages = wanted[:MAX_VANTAGES]
    for first in range(0, len(vantages), 2):
        pair = vantages[first : first + 2]
        for column, vantage in zip(st.columns(2), pair, strict=False):
            with column, notices.guard(f"the sequences at {vantage}"):
                timeline(stream, params, vantage)
    if len(wanted) > MAX_VANTAGES:
        not_drawn = ", ".join(map(markdown.text, wanted[MAX_VANTAGES:]))
        st.caption(f"Not drawn: {not_drawn} (filter on a consumer group to see it).")


def timeline(stream: dict, params: dict, vantage: str) -> None:
    answer = data.sequences(params, page.stream_key(stream), vantage)
    arrivals = page.arrivals_frame(answer)
    st.plotly_chart(
        page.sequence_timeline(arrivals, answer["gaps"], answer.get("lost_gaps", []), vantage),
        width="stretch",
    )
    late = int((arrivals["arrival"] == "late").sum())
    st.caption(f"{len(arrivals):,} arrivals · {late:,} late · gaps: {formats.format_gaps(answer['gaps']) or 'none'}")


def lost_events(params: dict) -> None:
    loss = data.loss(params)
    counts = loss["counts"]
    st.subheader("Lost events")
    cols = st.columns(3)
    for column, (key, words) in zip(cols, page.WHERE_LOST.items(), strict=True):
        column.metric(f"Lost {key.replace('_', ' ')}", f"{counts.get(key, 0):,}", help=words)
    frame = page.loss_frame(loss)
    if frame.empty:
        st.success("No event is lost in this window.", icon=":material/check_circle:")
    else:
        st.dataframe(frame, hide_index=True, width="stretch")


@st.fragment(run_every=notices.refresh_every(view))
def live() -> None:
    params = filters.api_params(view)
    with notices.guard("the streams"):
        report = data.report()
        stream = choose_stream(report)
        if stream is None:
            notices.empty(
                "No streams yet. Events need a `sequence` (and a `source`) to be ordered: tap your Redis with "
                "`--redis-url`, or start a scenario on the **Scenarios** page."
            )
        else:
            timelines(stream, params)
    with notices.guard("the lost events"):
        lost_events(params)


live()
