"""Scenarios (teaching): pick one, start and stop it, read what to look for, and compare the detectors'
findings with the scenario's ground truth as it runs."""

from __future__ import annotations

import streamlit as st

from dashboard import controls, data, filters, markdown, notices, sample_cli, scoring
from dashboard.client import ApiUnavailable
from dashboard.scenario_runner import ScenarioRunner

LISTING_TTL_S = 60
SEE_ALSO = (
    ("views/duplicates.py", "Duplicates", ":material/content_copy:"),
    ("views/ordering.py", "Ordering and loss", ":material/format_list_numbered:"),
    ("views/latency.py", "Latency", ":material/timer:"),
    ("views/dead_letters.py", "Dead letters", ":material/report:"),
    ("views/broker.py", "Broker", ":material/dns:"),
)


@st.cache_resource
def runner() -> ScenarioRunner:
    return ScenarioRunner()


@st.cache_data(ttl=LISTING_TTL_S, show_spinner="Asking the sample system for its scenarios…")
def listing() -> sample_cli.Listing:
    return sample_cli.scenarios()


@st.cache_data(ttl=LISTING_TTL_S, show_spinner="Asking the sample system for its faults…")
def fault_kinds() -> scoring.Sightings:
    faults = sample_cli.faults()
    kinds = scoring.sightings(faults.items)
    problems = ((faults.error,) if faults.error else ()) + kinds.problems
    return scoring.Sightings(kinds.kinds, problems)


st.title("Scenarios")
st.caption(
    "Each scenario runs the sample shop with one fault switched on, writes down every fault it injects "
    "(the ground truth), and lets you check that the dashboard finds exactly those."
)
view = filters.controls(data.known_names())


def explain(scenario: dict) -> None:
    st.subheader(scenario.get("title") or scenario["name"])
    st.markdown(scenario.get("description") or "")
    if scenario.get("what_to_look_for"):
        st.info(f"**What to look for.** {scenario['what_to_look_for']}", icon=":material/visibility:")


def start_stop(scenario: dict) -> None:
    if not controls.allowed():
        st.info("**Starting scenarios is off here.** " + controls.HOW_TO_ENABLE, icon=":material/lock:")
        return
    left, middle, right = st.columns([1, 1, 2])
    seconds = left.number_input("Seconds", min_value=5, max_value=3600, value=int(scenario.get("seconds") or 30))
    seed = middle.number_input("Seed", min_value=0, value=1, help="The same seed injects the same faults.")
    current = runner().current
    running = current is not None and current.running()
    with right:
        st.write("")
        start, stop = st.columns(2)
        if start.button("Start scenario", type="primary", icon=":material/play_arrow:", disabled=running):
            runner().start(scenario["name"], float(seconds), int(seed))
            st.rerun(scope="fragment")
        if stop.button("Stop", icon=":material/stop:", disabled=not running):
            runner().stop()
            st.rerun(scope="fragment")


def findings(since_ns: int) -> dict:
    # from the run's start exactly: the demo's shop pauses just before, and its last events are no finding of this run
    return scoring.gather(data.answer, since_ns, (ApiUnavailable,))


def unscored(kinds: scoring.Sightings) -> None:
    if kinds.problems:
        st.warning(
            "**Some faults cannot be scored.** The shop's `faults --json` listing says how eventscope shows each "
            "fault; what it could not say: " + "; ".join(markdown.text(p) for p in kinds.problems),
            icon=":material/warning:",
        )


def comparison(truth: list[dict], since_ns: int) -> None:
    st.subheader("Ground truth vs what the detectors found")
    found, kinds = findings(since_ns), fault_kinds()
    st.dataframe(scoring.table(truth, found, kinds), hide_index=True, width="stretch")
    st.caption(
        "Counted in the unit each fault was injected in (an event, an event at one group, a failed attempt, a "
        "group's slow window); seen as = the eventscope finding that shows it. found = injected faults some "
        "vantage point reported; found at = how many of them "
        "each vantage point saw; missed = injected, reported nowhere; extra = reported, explained by no injection."
        + ("" if truth else " Nothing was injected: every detector looked, and any finding is extra.")
    )
    extra = scoring.extras(truth, found, kinds)
    if not extra.empty:
        st.markdown("**Reported without an injection**")
        st.dataframe(
            extra,
            hide_index=True,
            width="stretch",
            column_config={"event": st.column_config.LinkColumn("event", display_text="open the event")},
        )


@st.fragment(run_every=notices.REFRESH_S)
def progress(scenario: dict) -> None:
    start_stop(scenario)
    current = runner().current
    if current is None:
        st.caption("No scenario has run since the dashboard started.")
        return
    state = "running" if current.running() else f"finished (exit code {current.process.returncode})"
    st.markdown(f"**{markdown.text(current.name)}**: {state}, {current.elapsed_s():,.0f} s since start")
    st.progress(current.fraction_done())
    lines = current.progress()
    if lines:
        st.code("\n".join(lines), language=None)
    comparison(current.truth(), current.started_ns)
    cols = st.columns(len(SEE_ALSO))
    for column, (page, label, icon) in zip(cols, SEE_ALSO, strict=True):
        column.page_link(page, label=label, icon=icon)


def main() -> None:
    scenarios = listing()
    if scenarios.error or not scenarios.items:
        st.info(
            "Scenarios are not available from this sample system version yet. "
            + (scenarios.error or "`python -m sample_system scenario list --json` listed none."),
            icon=":material/update:",
        )
        if st.button("Ask again", icon=":material/refresh:"):
            listing.clear()
            st.rerun()
        return
    names = [s["name"] for s in scenarios.items]
    wanted = filters.page_param("scenario", names[0], choices=names)
    titles = {s["name"]: s.get("title") or s["name"] for s in scenarios.items}
    name = st.selectbox("Scenario", names, index=names.index(wanted), format_func=titles.get)
    filters.set_page_param("scenario", name)
    scenario = scenarios.items[names.index(name)]
    explain(scenario)
    unscored(fault_kinds())
    progress(scenario)


main()
