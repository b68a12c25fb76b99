"""Compare (teaching): the shop synchronous and event-driven, run side by side, one row per line of the
comparison a course draws, every figure measured in the run."""

from __future__ import annotations

import streamlit as st

from dashboard import controls, markdown, notices
from dashboard.scenario_runner import ScenarioRun, ScenarioRunner
from dashboard.views import compare_transforms as page

SCENARIO = "sync_vs_events"
VARIANTS = {"pubsub": "Pub/Sub", "stream": "Redis Stream"}
DEFAULT_SECONDS = 20
ROW_PX = 35  # the data grid's row height: the table is shown whole, without a scroll bar


@st.cache_resource
def runner() -> ScenarioRunner:
    return ScenarioRunner()


@st.cache_resource
def finished() -> dict[str, ScenarioRun]:
    """The latest finished run of each variant (kept while the dashboard runs, shared by every tab)."""
    return {}


st.title("Synchronous vs event-driven")
st.caption(
    "The same shop built twice and run at once under the same seeded load and the same faults: once with "
    "services calling each other over HTTP (an order is accepted only when inventory, payments and shipping "
    "answered), once with events on Redis. Phases: steady load, a burst at twice the rate, shipping slow, "
    "shipping down, shipping back. Every figure below is measured in the run: the orders each side placed, "
    "accepted and completed, and the spans each side made."
)


def start() -> None:
    if not controls.allowed():
        st.info("**Running the comparison is off here.** " + controls.HOW_TO_ENABLE, icon=":material/lock:")
        return
    left, middle, right, far = st.columns([2, 1, 1, 2])
    variant = left.segmented_control(
        "Shipping reads its channel from",
        list(VARIANTS),
        default="pubsub",
        format_func=VARIANTS.get,
        help="Pub/Sub delivers at most once: what is published while shipping is down is lost to it. A Redis "
        "Stream read with a consumer group (XREADGROUP, XACK) keeps it until shipping is back.",
    )
    seconds = middle.number_input("Seconds", min_value=5, max_value=3600, value=DEFAULT_SECONDS)
    seed = right.number_input("Seed", min_value=0, value=1)
    current = runner().current
    running = current is not None and current.running()
    with far:
        st.write("")
        if st.button("Run the comparison", type="primary", icon=":material/play_arrow:", disabled=running):
            options = ("--variant", variant or "pubsub")
            runner().start(SCENARIO, float(seconds), int(seed), options, results=True)
            st.rerun(scope="fragment")


def remember(current: ScenarioRun) -> None:
    """Keep a finished run whose results the table can use; say what is wrong with one it cannot."""
    if current.running() or current.results_path is None:
        return
    results = current.results()
    trouble = "no results were written" if results is None else page.problem(results)
    if trouble is None:
        finished()[current.options[-1]] = current
    else:
        st.warning(f"This run's results cannot be shown: {markdown.text(trouble)}.", icon=":material/warning:")


def progress(current: ScenarioRun) -> None:
    variant = VARIANTS.get(current.options[-1], current.options[-1])
    state = "running" if current.running() else f"finished (exit code {current.process.returncode})"
    st.markdown(f"**{SCENARIO}** ({markdown.text(variant)}): {state}, {current.elapsed_s():,.0f} s since start")
    st.progress(current.fraction_done())
    lines = current.progress()
    if lines:
        st.code("\n".join(lines), language=None)


def comparison() -> None:
    runs = sorted(finished().values(), key=lambda run: run.started_ns)
    if not runs:
        st.caption("No comparison has run since the dashboard started.")
        return
    with notices.guard("the comparison"):
        latest = runs[-1].results()
        events = [run.results() for run in runs if run.results() is not None]
        events.sort(key=lambda r: list(VARIANTS).index(r["variant"]) if r.get("variant") in VARIANTS else 9)
        st.subheader("The comparison")
        figures = page.table(latest, events)
        st.dataframe(figures, hide_index=True, width="stretch", height=ROW_PX * (len(figures) + 1) + 3)
        st.caption(
            "Latency: from the storefront's call to the answer (synchronous) or to OrderPlaced being published "
            "(event-driven); done = the shipping email sent. Coupling: services with a span that began before the "
            "order was accepted, and the service-to-service edges of the orders' traces. Fault tolerance: orders "
            "placed while shipping was down; delayed = shipped once shipping was back; lost = paid and never "
            "shipped; catch-up = from shipping's return until the last order placed before it was done. The "
            "synchronous column is the latest run's; each event-driven column is its variant's latest run."
        )
        if any(r.get("variant") == "pubsub" for r in events):
            st.info(
                "**At most once.** Redis Pub/Sub keeps nothing for a subscriber that is away: every payment "
                "published while shipping was down is lost to it, and those orders are paid and never shipped. "
                "Run the Redis Stream variant to see them delivered late instead.",
                icon=":material/info:",
            )
        st.markdown(
            "Open one order's trace on each side: [synchronous](traces?service=sync-orders) (HTTP spans), "
            "[event-driven](traces?service=orders) (producer and consumer spans, joined by links)."
        )
        st.markdown("**Phases of the latest run**")
        st.dataframe(page.phases_frame(latest), hide_index=True, width="stretch")


@st.fragment(run_every=notices.REFRESH_S)
def live() -> None:
    start()
    current = runner().current
    if current is not None:
        remember(current)
        progress(current)
    comparison()


live()
