"""Faults are named, switchable from flags and env vars, scheduled, and every record has the contract's shape."""

from __future__ import annotations

import json

import pytest

from eventscope_redis import Incoming, Outgoing
from eventscope_redis.steps import chain
from sample_system import faults, handling, truth


def test_env_var_then_flag_with_defaults_filled_in():
    env = {
        "SAMPLE_FAULT_DUPLICATE_PUBLISH": "on",
        "SAMPLE_FAULT_REORDER": "rate=0.5",
        "SAMPLE_FAULT_POISON_MESSAGE": "off",
    }
    settings = faults.load_settings(env, ["reorder:rate=0.25,hold=3"])
    assert set(settings) == {"duplicate_publish", "reorder"}
    assert settings["duplicate_publish"].params == {"rate": 0.1, "channel": "shop.orders"}
    assert settings["reorder"].number("rate") == 0.25 and settings["reorder"].number("hold") == 3


def test_every_fault_has_an_env_var_a_description_and_parses_with_defaults():
    for fault in [f for f in faults.describe() if f["switchable"]]:
        assert fault["env"] == "SAMPLE_FAULT_" + fault["name"].upper()
        assert len(fault["description"]) > 40
        assert faults.parse_setting(fault["name"], "test").name == fault["name"]
    assert set(faults.CATALOGUE) == set(truth.KINDS) - {"dead_letter"}


def test_the_listing_names_every_kind_of_record_and_how_eventscope_shows_it():
    listing = {f["name"]: f for f in faults.describe()}
    assert set(listing) == set(truth.KINDS)
    assert listing["dead_letter"]["switchable"] is False and listing["dead_letter"]["env"] is None
    assert {f["unit"] for f in listing.values()} <= {str(u) for u in truth.Unit}
    assert (listing["duplicate_publish"]["seen_as"], listing["duplicate_publish"]["unit"]) == (
        "published_twice",
        "event",
    )
    assert listing["slow_consumer"]["also_seen_as"] == [{"finding": "lost_at_delivery", "when": "buffer_limit_kb"}]
    for name in ("slow_consumer", "transient_error"):
        assert all(a["when"] is None or a["when"] in listing[name]["defaults"] for a in listing[name]["also_seen_as"])


@pytest.mark.parametrize(
    "text,origin,message",
    [
        ("nope", "--fault nope", "unknown fault 'nope'"),
        ("reorder:rate=2", "--fault x", "rate must be between 0 and 1"),
        ("reorder:rate=fast", "SAMPLE_FAULT_REORDER", "SAMPLE_FAULT_REORDER: rate must be a number"),
        ("reorder:colour=red", "--fault y", "reorder has no parameter 'colour'"),
        ("reorder:hold", "--fault z", "expected key=value"),
        ("slow_consumer:delay_ms=-5", "--fault w", "must not be negative"),
    ],
)
def test_bad_settings_name_their_origin(text, origin, message):
    with pytest.raises(faults.FaultError, match=message):
        faults.parse_setting(text, origin)


@pytest.mark.parametrize(
    "params,elapsed,window",
    [
        ({}, 0.0, 0),
        ({"start_s": 3}, 2.9, None),
        ({"start_s": 3}, 3.0, 0),
        ({"start_s": 1, "stop_s": 2}, 2.0, None),
        ({"start_s": 2, "for_s": 5}, 6.9, 0),
        ({"start_s": 2, "for_s": 5}, 7.1, None),
        ({"start_s": 3, "every_s": 8, "for_s": 2}, 4.5, 0),
        ({"start_s": 3, "every_s": 8, "for_s": 2}, 6.0, None),
        ({"start_s": 3, "every_s": 8, "for_s": 2}, 12.0, 1),
    ],
)
def test_schedule_windows(params, elapsed, window):
    assert faults.FaultSetting("consumer_crash", params).window(elapsed) == window


def test_channel_filter_and_wildcard():
    assert faults.FaultSetting("reorder", {"channel": "*"}).matches_channel("shop.stock")
    assert not faults.FaultSetting("reorder", {"channel": "shop.orders"}).matches_channel("shop.stock")


def _injector(flag: str) -> faults.FaultInjector:
    setting = faults.parse_setting(flag, "t")
    return faults.FaultInjector({setting.name: setting}, 1, truth.GroundTruth())


def _outgoing(event_id: str, partitionkey: str = "p0", sequence: int = 1) -> Outgoing:
    attributes = {"id": event_id, "source": "/s", "partitionkey": partitionkey, "sequence": str(sequence)}
    return Outgoing("shop.orders", attributes, b'{"order_id":"o"}')


def _incoming(group: str, event_id: str = "e1") -> Incoming:
    attributes = {"id": event_id, "source": "/s", "sequence": "4", "partitionkey": "p1"}
    return Incoming("shop.stock", None, group, attributes, b"{}", b"{}")


class Sent:
    """The end of a chain of producer steps: remembers what went out, in order."""

    def __init__(self):
        self.ids: list[str] = []

    def __call__(self, outgoing: Outgoing) -> int:
        self.ids.append(outgoing.attributes["id"])
        return 1


def _run(injector: faults.FaultInjector, stage: faults.Stage, item, last):
    return chain(injector.steps(stage), last)(item)


def test_rate_one_always_fires_rate_zero_never_and_groups_are_respected():
    injector = _injector("transient_error:rate=1,group=payments")
    assert _run(injector, faults.Stage.ATTEMPT, _incoming("shipping"), lambda _: "handled") == "handled"
    payments = _incoming("payments")
    handling.of(payments).attempt = 2
    with pytest.raises(faults.TransientError):
        _run(injector, faults.Stage.ATTEMPT, payments, lambda _: "handled")
    (record,) = injector.truth.records
    assert record["fault"] == "transient_error" and record["group"] == "payments" and record["sequence"] == 4
    assert record["detail"] == {"attempt": 2}
    never, sent = _injector("drop_before_broker:rate=0"), Sent()
    for n in range(200):
        _run(never, faults.Stage.PUBLISH, _outgoing(str(n), sequence=n), sent)
    assert len(sent.ids) == 200


@pytest.mark.parametrize(
    "flag,stage,expected",
    [
        ("reorder", faults.Stage.PUBLISH, ["reorder", "duplicate"]),
        ("consumer_crash", faults.Stage.PUBLISH, ["publishing"]),
        ("consumer_crash", faults.Stage.ARRIVAL, ["lost"]),
        ("double_subscription", faults.Stage.ARRIVAL, ["second_copy"]),
        ("slow_consumer", faults.Stage.HANDLING, ["slow"]),
        ("transient_error", faults.Stage.ATTEMPT, ["transient"]),
        ("transient_error", faults.Stage.SETTLED, ["dead_lettered"]),
        ("transient_error", faults.Stage.PUBLISH, []),
    ],
)
def test_each_stage_gets_the_steps_of_the_faults_switched_on_in_order(flag, stage, expected):
    settings = faults.load_settings({}, [flag, "duplicate_publish"] if flag == "reorder" else [flag])
    injector = faults.FaultInjector(settings, 1, truth.GroundTruth())
    assert [step.func.__name__ for step in injector.steps(stage)] == expected
    assert faults.steps(None, stage) == []


def test_a_drop_spends_its_sequence_number_is_recorded_when_overtaken_and_sent_if_nothing_overtakes_it():
    injector, sent = _injector("drop_before_broker:rate=1"), Sent()
    for outgoing in [_outgoing("e1", sequence=1), _outgoing("x1", "p1"), _outgoing("e2", sequence=2)]:
        assert _run(injector, faults.Stage.PUBLISH, outgoing, sent) == 0
    _run(injector, faults.Stage.PUBLISH, _outgoing("e3", sequence=3), sent)
    assert sent.ids == [] and [r["event_id"] for r in injector.truth.records] == ["e1", "e2"]
    assert injector.release_held() == 2
    assert sorted(sent.ids) == ["e3", "x1"]
    assert len(injector.truth.records) == 2 and injector.release_held() == 0


def test_reorder_holds_one_event_and_releases_it_after_the_next_ones():
    injector, sent = _injector("reorder:rate=1,hold=2"), Sent()
    after = []
    for n in range(1, 5):
        _run(injector, faults.Stage.PUBLISH, _outgoing(f"e{n}", sequence=n), sent)
        after.append(list(sent.ids))
    assert after == [[], ["e2"], ["e2", "e3", "e1"], ["e2", "e3", "e1"]]
    (record,) = injector.truth.records
    assert record["event_id"] == "e1" and record["detail"] == {"held_behind": 2}
    assert injector.release_held() == 1 and sent.ids[-1] == "e4"
    assert len(injector.truth.records) == 1  # e4 was overtaken by nothing: not a reorder


@pytest.mark.parametrize(
    "flag,field,changed",
    [
        ("clock_skew:rate=1,skew_ms=800,start_s=0", "clock_skew_ns", 800_000_000),
        ("poison_message:rate=1", "payload", b'{"order_id": null}'),
    ],
)
def test_producer_faults_change_the_outgoing_event_and_record_it(flag, field, changed):
    injector, seen = _injector(flag), []
    _run(injector, faults.Stage.PUBLISH, _outgoing("e1"), lambda outgoing: seen.append(getattr(outgoing, field)))
    assert seen == [changed]
    (record,) = injector.truth.records
    assert record["event_id"] == "e1" and record["fault"] == flag.partition(":")[0]


def test_a_duplicate_goes_out_twice_with_the_same_id_and_sequence():
    injector, seen = _injector("duplicate_publish:rate=1"), []
    _run(injector, faults.Stage.PUBLISH, _outgoing("e1", sequence=7), lambda o: seen.append(dict(o.attributes)))
    assert len(seen) == 2 and seen[0] == seen[1]
    assert [r["fault"] for r in injector.truth.records] == ["duplicate_publish"]


def test_a_group_that_was_down_when_an_event_was_published_never_gets_it():
    injector = _injector("consumer_crash:group=shipping")
    injector.register("shipping", ["shop.orders"])
    injector.mark_down("shipping")
    _run(injector, faults.Stage.PUBLISH, _outgoing("e1"), Sent())
    injector.mark_up("shipping")
    (record,) = injector.truth.records
    assert record["group"] == "shipping" and record["event_id"] == "e1"
    handed = []
    for event_id in ("e1", "e2"):
        incoming = Incoming("shop.orders", None, "shipping", {"id": event_id, "source": "/s"}, b"{}", b"{}")
        _run(injector, faults.Stage.ARRIVAL, incoming, lambda i: handed.append(i.id))
    assert handed == ["e2"]


def test_ground_truth_file_has_the_contract_shape(tmp_path):
    path = tmp_path / "t.jsonl"
    ground = truth.GroundTruth(path)
    ground.write(truth.record("slow_consumer", "shop.orders", None, "order-view", {"delay_ms": 5}))
    ground.write(
        truth.record("clock_skew", "shop.orders", {"id": "x", "source": "/s", "sequence": "12"}, None, {"skew_ms": 800})
    )
    ground.close()
    first, second = truth.read(path)
    assert first["event_id"] is None and first["sequence"] is None and first["group"] == "order-view"
    assert second["event_id"] == "x" and second["sequence"] == 12 and second["partitionkey"] is None
    assert isinstance(second["time_ns"], int)
    with pytest.raises(ValueError, match="unknown fault kind"):
        truth.record("gremlins", "c")


def test_the_faults_command_prints_the_listing_as_json_and_as_lines(capsys):
    from sample_system.__main__ import main

    assert main(["faults", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == faults.describe()
    assert main(["faults"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "dead_letter (recorded only; seen as dead_lettered per delivery)" in lines
    assert any(
        line.startswith("reorder (SAMPLE_FAULT_REORDER; defaults ") and "seen as late per event" in line
        for line in lines
    )
