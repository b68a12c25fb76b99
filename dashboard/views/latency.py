"""Latency: distributions and p50/p95/p99 over time, by channel, consumer group or event type."""

from __future__ import annotations

import streamlit as st

from dashboard import data, filters, notices
from dashboard.views import latency_transforms as page

BY = {"channel": "Channel", "group": "Consumer group", "type": "Event type"}
MEASURES = {"delivery": "Delivery (publish → process start)", "processing": "Processing", "end_to_end": "End to end"}
PERCENTILES = ("p50", "p95", "p99")
BUCKETS_S = (5, 10, 30, 60, 300)

st.title("Latency")
st.caption(
    "**Delivery**: producer span start to consumer span start. **Processing**: the consumer span's duration. "
    "**End to end**: first publish to the last consumer's end along the causal flow, following span links."
)
view = filters.controls(data.known_names())
left, middle, right, far = st.columns([3, 3, 2, 1])
wanted_by = filters.page_param("by", "channel", choices=BY)
wanted_measure = filters.page_param("measure", "delivery", choices=MEASURES)
wanted_percentile = filters.page_param("p", "p95", choices=PERCENTILES)
by = left.segmented_control("Group by", list(BY), default=wanted_by, format_func=BY.get)
measure = middle.selectbox(
    "Measure", list(MEASURES), index=list(MEASURES).index(wanted_measure), format_func=MEASURES.get
)
percentile = right.segmented_control("Percentile", PERCENTILES, default=wanted_percentile)
bucket_s = far.selectbox("Bucket", BUCKETS_S, index=BUCKETS_S.index(10), format_func=lambda s: f"{s} s")
by, percentile = by or "channel", percentile or "p95"
filters.set_page_param("by", by, "channel")
filters.set_page_param("measure", measure, "delivery")
filters.set_page_param("p", percentile, "p95")


def skew_by_services(params: dict) -> None:
    with st.expander("Which clocks disagree"), notices.guard("the clock skew"):
        st.caption("Per pair of services, the deliveries that started before their publication (raw figures).")
        st.dataframe(page.clock_skew_frame(data.clock_skew(params)), hide_index=True, width="stretch")


def slow_consumers(params: dict) -> None:
    with notices.guard("slow consumers"):
        answer = data.slow_consumers(params)
        if not answer["slow"]:
            return
        st.warning(
            "Slow consumer: a group fell behind the other groups (its median delivery latency at least "
            f"{answer['min_ms']:g} ms and {answer['factor']:g}× theirs for {answer['min_buckets']} buckets or more "
            "in a row); which one, and when, below. Its messages wait in Redis's output buffer for it: see Broker.",
            icon=":material/slow_motion_video:",
        )
        st.dataframe(page.slow_consumers_frame(answer), hide_index=True, width="stretch")


@st.fragment(run_every=notices.refresh_every(view))
def live() -> None:
    with notices.guard("latency"):
        latency = data.latency(filters.api_params(view), by, bucket_s)
        if not latency["summary"]:
            notices.empty(notices.NO_SPANS_HINT if not view.active() else notices.FILTERED_HINT)
            return
        if latency.get("negative_delivery"):
            st.warning(
                f"{latency['negative_delivery']:,} deliveries started before their event was published: the "
                "producer's and consumer's clocks disagree (clock skew). They are shown raw, not corrected.",
                icon=":material/schedule:",
            )
            skew_by_services(filters.api_params(view))
        slow_consumers(filters.api_params(view))
        buckets = page.latency_buckets_frame(latency, measure)
        st.plotly_chart(page.latency_over_time(buckets, percentile, measure, data.palette()), width="stretch")
        st.plotly_chart(page.latency_histogram(page.samples_frame(latency), measure, data.palette()), width="stretch")
        st.subheader(f"Summary by {BY[by].lower()}")
        st.dataframe(page.latency_summary_frame(latency), hide_index=True, width="stretch")


live()
