"""Scoring a scenario: like compared with like, every detector in every scenario, counts as integers."""

from __future__ import annotations

import pytest

from dashboard import scoring
from sample_system import faults

S = 1_000_000_000
KINDS = scoring.sightings(faults.describe())
"""The shop's own listing (``faults --json``): which finding shows each fault kind, in which unit."""
ROWS = ["duplicate_publish", "double_subscription", "reorder", "drop_before_broker", "consumer_crash",
        "slow_consumer", "poison_message", "transient_error", "dead_letter", "clock_skew"]  # fmt: skip


def fault(kind: str, event_id: str | None, **fields) -> dict:
    record = {"fault": kind, "event_id": event_id, "channel": "c", "source": "/s", "partitionkey": None,
              "sequence": None, "group": None, "time_ns": 0, "detail": {}}  # fmt: skip
    return {**record, **fields}


def rows(truth: list[dict], findings: dict) -> dict[str, dict]:
    return scoring.table(truth, findings, KINDS).set_index("fault").to_dict("index")


def counts(row: dict) -> list[int]:
    return [row["injected"], row["found"], row["missed"], row["extra"]]


EMPTY = {
    "duplicates": {"duplicates": []},
    "loss": {"lost": []},
    "dead_letters": {"dead_letters": []},
    "retries": {"retried": []},
    "clock_skew": {"deliveries": []},
    "late": {"arrivals": []},
    "slow_consumers": {"slow": []},
}


def test_a_scenario_without_faults_has_a_row_per_detector_with_zero_integers():
    table = scoring.table([], EMPTY, KINDS)
    assert KINDS.problems == ()
    assert list(table["fault"]) == ROWS
    assert {str(table[c].dtype) for c in ("injected", "found", "missed", "extra")} == {"Int64"}
    assert table[["injected", "found", "missed", "extra"]].sum().tolist() == [0, 0, 0, 0]
    assert scoring.extras([], EMPTY, KINDS).empty


def test_one_late_event_seen_at_three_vantage_points_is_one_fault_found_not_two_false_alarms():
    truth = [fault("reorder", "r1"), fault("reorder", "r2")]
    late = [{"event_id": e, "vantage": v} for e in ("r1", "r2") for v in ("bus", "inventory", "order-view")]
    row = rows(truth, {**EMPTY, "late": {"arrivals": late}})["reorder"]
    assert counts(row) == [2, 2, 0, 0]
    assert row["found at"] == "bus 2, inventory 2, order-view 2"


def test_extra_is_only_what_no_injection_explains_and_links_to_its_event():
    truth = [fault("duplicate_publish", "a")]
    dups = [{"vantage": v, "event_id": e} for v, e in (("bus", "a"), ("inventory", "a"), ("bus", "z"), ("view", "z"))]
    findings = {**EMPTY, "duplicates": {"duplicates": dups}}
    assert counts(rows(truth, findings)["duplicate_publish"]) == [1, 1, 0, 1]
    extra = scoring.extras(truth, findings, KINDS)
    assert extra.to_dict("records") == [
        {"fault": "duplicate_publish", "vantage": "bus", "what": "z", "event": "event?id=z"},
        {"fault": "duplicate_publish", "vantage": "view", "what": "z", "event": "event?id=z"},
    ]
    assert scoring.event_link("a b&c") == "event?id=a+b%26c"


def test_a_published_twice_event_is_not_counted_as_a_double_subscription():
    truth = [fault("duplicate_publish", "a"), fault("double_subscription", "b", group="notifications")]
    dups = [{"vantage": "bus", "event_id": "a"}, {"vantage": "inventory", "event_id": "a"},
            {"vantage": "notifications", "event_id": "b"}]  # fmt: skip
    table = rows(truth, {**EMPTY, "duplicates": {"duplicates": dups}})
    assert counts(table["double_subscription"]) == [1, 1, 0, 0]
    assert counts(table["duplicate_publish"]) == [1, 1, 0, 0]
    assert table["duplicate_publish"]["found at"] == "bus 1, inventory 1"


def test_a_poison_message_is_one_event_dead_lettered_by_each_group():
    truth = [fault("poison_message", "p")] + [fault("dead_letter", "p", group=g) for g in ("inventory", "view")]
    dead = [{"event_id": "p", "group": g, "attempts": 1} for g in ("inventory", "view")]
    dead.append({"event_id": "q", "group": "payments", "attempts": 4})  # retried first: not a poison message
    table = rows(truth, {**EMPTY, "dead_letters": {"dead_letters": dead}})
    assert counts(table["poison_message"]) == [1, 1, 0, 0]
    assert counts(table["dead_letter"]) == [2, 2, 0, 1]


def test_losses_count_in_their_own_units():
    truth = [fault("drop_before_broker", None, partitionkey="p0", sequence=7),
             fault("consumer_crash", "e", group="shipping")]  # fmt: skip
    lost = [
        {"channel": "c", "source": "/s", "partitionkey": "p0", "sequence": 7, "event_id": None, "vantage": "bus",
         "where": "before_broker"},
        {"channel": "c", "source": "/s", "partitionkey": "p0", "sequence": 8, "event_id": "e", "vantage": "shipping",
         "where": "at_delivery"},
        {"channel": "c", "source": "/s", "partitionkey": "p0", "sequence": 8, "event_id": "e", "vantage": "payments",
         "where": "at_delivery"},
    ]  # fmt: skip
    table = rows(truth, {**EMPTY, "loss": {"lost": lost}})
    assert counts(table["drop_before_broker"]) == [1, 1, 0, 0]
    assert counts(table["consumer_crash"]) == [1, 1, 0, 1]
    assert scoring.extras(truth, {**EMPTY, "loss": {"lost": lost}}, KINDS)["vantage"].tolist() == ["payments"]


def test_retries_count_failed_attempts_and_clock_skew_counts_events():
    truth = [fault("transient_error", "a", group="payments", detail={"attempt": n}) for n in (1, 2)]
    truth += [fault("transient_error", "b", group="payments", detail={"attempt": 1}), fault("clock_skew", "s1"),
              fault("clock_skew", "s2")]  # fmt: skip
    retried = [{"event_id": e, "group": "payments", "failed_attempts": 2} for e in ("a", "b")]
    skewed = [{"event_id": "s1", "group": "inventory"}, {"event_id": "s1", "group": "view"}]
    table = rows(truth, {**EMPTY, "retries": {"retried": retried}, "clock_skew": {"deliveries": skewed}})
    assert counts(table["transient_error"]) == [3, 3, 0, 1]
    assert counts(table["clock_skew"]) == [2, 1, 1, 0]
    assert table["clock_skew"]["found at"] == "inventory 1, view 1"


@pytest.mark.parametrize(
    ("episodes", "expected"),
    [
        ([("view", 13, 16)], [1, 1, 0, 0]),  # inside the window
        ([("view", 9, 11), ("view", 12, 14)], [1, 1, 0, 0]),  # two episodes, both overlapping: still one fault
        ([("view", 20, 22)], [1, 0, 1, 1]),  # after the window: unexplained
        ([("inventory", 12, 14)], [1, 0, 1, 1]),  # the wrong group
    ],
)
def test_a_slow_consumer_is_scored_against_the_truths_group_and_window(episodes, expected):
    truth = [fault("slow_consumer", None, group="view", time_ns=10 * S, detail={"for_s": 5.0, "delay_ms": 50})]
    slow = [{"group": g, "start_ns": a * S, "end_ns": b * S} for g, a, b in episodes]
    assert counts(rows(truth, {**EMPTY, "slow_consumers": {"slow": slow}})["slow_consumer"]) == expected


def test_a_detector_without_an_answer_is_not_measured_rather_than_zero():
    table = rows([fault("clock_skew", "s")], {**EMPTY, "clock_skew": None})
    assert table["clock_skew"]["injected"] == 1 and scoring.pd.isna(table["clock_skew"]["found"])
    assert table["clock_skew"]["found at"].startswith("not measured")


def test_gather_asks_every_detector_and_follows_late_streams_to_their_arrivals():
    asked = []
    streams = [{"channel": "c", "source": "/s", "partitionkey": "p1", "vantage": "bus", "out_of_order": 1},
               {"channel": "c", "source": "/s", "partitionkey": "p2", "vantage": "bus", "out_of_order": 0}]  # fmt: skip

    def get(path, params):
        asked.append((path, dict(params)))
        if path == "report":
            return {"streams": streams}
        if path == "sequences":
            return {"arrivals": [{"event_id": "x", "late": True}, {"event_id": "y", "late": False}]}
        if path == "retries":
            raise ConnectionError("down")
        return {}

    found = scoring.gather(get, 5, (ConnectionError,), grace_s=0)
    assert found["late"] == {"arrivals": [{"event_id": "x", "late": True, "vantage": "bus"}]}
    assert found["retries"] is None and found["loss"] == {}
    assert all(params["since_ns"] == 5 and params["grace_s"] == 0 for _, params in asked)
    [(_, sequence_query)] = [a for a in asked if a[0] == "sequences"]
    assert (sequence_query["partitionkey"], sequence_query["vantage"]) == ("p1", "bus")


def test_a_group_slowed_by_its_own_retries_is_explained_by_them_not_a_false_alarm():
    retried = [fault("transient_error", "a", group="payments", time_ns=11 * S, detail={"attempt": 1})]
    episode = {"slow_consumers": {"slow": [{"group": "payments", "start_ns": 10 * S, "end_ns": 12 * S}]}}
    row = rows(retried, {**EMPTY, **episode})["slow_consumer"]
    assert counts(row) == [0, 0, 0, 0]
    elsewhere = [fault("transient_error", "a", group="inventory", time_ns=11 * S, detail={"attempt": 1})]
    assert counts(rows(elsewhere, {**EMPTY, **episode})["slow_consumer"]) == [0, 0, 0, 1]
    much_later = [fault("transient_error", "a", group="payments", time_ns=30 * S, detail={"attempt": 1})]
    assert scoring.extras(much_later, {**EMPTY, **episode}, KINDS)["fault"].tolist() == ["slow_consumer"]


def test_losses_of_a_subscriber_cut_off_for_its_output_buffer_are_the_slow_consumers_doing():
    lost = {"loss": {"lost": [{"channel": "c", "source": "/s", "partitionkey": None, "sequence": 3, "event_id": "e",
                                "vantage": "order-view", "where": "at_delivery"}]}}  # fmt: skip
    limited = [fault("slow_consumer", None, group="order-view", detail={"for_s": 5, "buffer_limit_kb": 64})]
    assert counts(rows(limited, {**EMPTY, **lost})["consumer_crash"]) == [0, 0, 0, 0]
    unlimited = [fault("slow_consumer", None, group="order-view", detail={"for_s": 5, "buffer_limit_kb": 0})]
    assert counts(rows(unlimited, {**EMPTY, **lost})["consumer_crash"]) == [0, 0, 0, 1]


def test_every_kind_of_ground_truth_is_listed_and_seen_as_one_of_eventscopes_findings():
    from sample_system import truth

    assert {k.fault for k in KINDS.kinds} == set(truth.KINDS)
    assert {k.seen_as for k in KINDS.kinds} <= set(scoring.BY_FINDING)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("duplicate_publish", "not an object"),
        (None, "not an object"),
        ({"seen_as": "late", "unit": "event"}, "without a name"),
        ({"name": 7, "seen_as": "late", "unit": "event"}, "without a name"),
        ({"name": "reorder", "unit": "event"}, "seen_as None is none of eventscope's findings"),
        ({"name": "reorder", "seen_as": "reorder", "unit": "event"}, "seen_as 'reorder'"),
        ({"name": "reorder", "seen_as": ["late"], "unit": "event"}, "seen_as ['late']"),
        ({"name": "reorder", "seen_as": "late", "unit": "orders"}, "unit 'orders' is not one of"),
        ({"name": "reorder", "seen_as": "late", "unit": {"u": 1}}, "unit {'u': 1}"),
        ({"name": "reorder", "seen_as": "late", "unit": "event", "also_seen_as": "late"}, "also_seen_as"),
        ({"name": "reorder", "seen_as": "late", "unit": "event", "also_seen_as": [{"finding": "x"}]}, "also_seen_as"),
        ({"name": "reorder", "seen_as": "late", "unit": "event", "also_seen_as": [["late"]]}, "also_seen_as"),
        (
            {"name": "reorder", "seen_as": "late", "unit": "event", "also_seen_as": [{"finding": "late", "when": 3}]},
            "also_seen_as",
        ),  # fmt: skip
    ],
)
def test_a_malformed_listing_entry_is_named_and_the_good_ones_still_score(entry, problem):
    listing = [e for e in faults.describe() if e["name"] != "reorder"] + [entry]
    kinds = scoring.sightings(listing)
    [said] = kinds.problems
    assert problem in said
    truth = [fault("reorder", "r1"), fault("duplicate_publish", "a")]
    findings = {**EMPTY, "late": {"arrivals": [{"event_id": "r1", "vantage": "bus"}]},
                "duplicates": {"duplicates": [{"event_id": "a", "vantage": "bus"}]}}  # fmt: skip
    table = scoring.table(truth, findings, kinds).set_index("fault").to_dict("index")
    assert counts(table["duplicate_publish"]) == [1, 1, 0, 0]
    assert table["reorder"]["injected"] == 1 and scoring.pd.isna(table["reorder"]["found"])
    assert table["reorder"]["found at"] == scoring.NOT_SCORED
    assert scoring.extras(truth, findings, kinds).empty


def test_without_a_listing_every_injected_kind_still_shows_its_count_unscored():
    truth = [fault("reorder", "r1"), fault("reorder", "r2"), fault("clock_skew", "s")]
    table = scoring.table(truth, EMPTY, scoring.sightings([]))
    assert table["fault"].tolist() == ["reorder", "clock_skew"]
    assert table["injected"].tolist() == [2, 1] and table["found"].isna().all()
    assert scoring.table([], EMPTY, scoring.sightings([])).empty


def test_a_finding_another_kind_causes_is_excused_only_when_the_listing_says_so():
    retried = [fault("transient_error", "a", group="payments", time_ns=11 * S, detail={"attempt": 1})]
    episode = {"slow_consumers": {"slow": [{"group": "payments", "start_ns": 10 * S, "end_ns": 12 * S}]}}
    silent = [{**e, "also_seen_as": []} if e["name"] == "transient_error" else e for e in faults.describe()]
    table = scoring.table(retried, {**EMPTY, **episode}, scoring.sightings(silent)).set_index("fault")
    assert counts(table.to_dict("index")["slow_consumer"]) == [0, 0, 0, 1]


def test_the_table_says_which_finding_shows_each_fault():
    table = rows([], EMPTY)
    assert table["duplicate_publish"]["seen as"] == "published_twice"
    assert table["consumer_crash"]["where to look"] == "Ordering and loss: lost at delivery"
