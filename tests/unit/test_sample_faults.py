"""Faults are named, switchable from flags and env vars, scheduled, and every record has the contract's shape."""

from __future__ import annotations

import pytest

from sample_system import faults, truth


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
    for fault in faults.describe():
        assert fault["env"] == "SAMPLE_FAULT_" + fault["name"].upper()
        assert len(fault["description"]) > 40
        assert faults.parse_setting(fault["name"], "test").name == fault["name"]
    assert set(faults.CATALOGUE) == set(truth.KINDS) - {"dead_letter"}


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


def test_rate_one_always_fires_rate_zero_never_and_groups_are_respected():
    injector = faults.FaultInjector(
        {"transient_error": faults.parse_setting("transient_error:rate=1,group=payments", "t")}, 1, truth.GroundTruth()
    )
    event = {"id": "e1", "source": "/s", "sequence": "4", "partitionkey": "p1"}
    injector.transient("shipping", "shop.payments", event, 1)  # another group: no failure
    with pytest.raises(faults.TransientError):
        injector.transient("payments", "shop.stock", event, 2)
    (record,) = injector.truth.records
    assert record["fault"] == "transient_error" and record["group"] == "payments" and record["sequence"] == 4
    assert record["detail"] == {"attempt": 2}
    never = faults.FaultInjector(
        {"drop_before_broker": faults.parse_setting("drop_before_broker:rate=0", "t")}, 1, truth.GroundTruth()
    )
    assert not any(never.drop("shop.orders", {"id": str(n), "source": "/s"}) for n in range(200))


def test_a_drop_is_recorded_when_the_next_event_of_its_stream_overtakes_it_and_sent_if_none_does():
    injector = faults.FaultInjector(
        {"drop_before_broker": faults.parse_setting("drop_before_broker:rate=1", "t")}, 1, truth.GroundTruth()
    )
    events = [{"id": f"e{n}", "source": "/s", "partitionkey": "p0", "sequence": str(n)} for n in (1, 2, 3)]
    other = {"id": "x1", "source": "/s", "partitionkey": "p1", "sequence": "1"}
    assert all(injector.drop("shop.orders", event) for event in [events[0], other, events[1], events[2]])
    assert [r["event_id"] for r in injector.truth.records] == ["e1", "e2"]
    released = injector.release_held()
    assert sorted(event["id"] for _, event, _ in released) == ["e3", "x1"]
    assert len(injector.truth.records) == 2 and injector.release_held() == []


def test_reorder_holds_one_event_and_releases_it_after_the_next_ones():
    injector = faults.FaultInjector(
        {"reorder": faults.parse_setting("reorder:rate=1,hold=2", "t")}, 1, truth.GroundTruth()
    )

    def event(n):
        return {"id": f"e{n}", "source": "/s", "partitionkey": "p0", "sequence": str(n)}

    sent = [[e["id"] for e, _ in injector.reorder("shop.orders", event(n))] for n in range(1, 5)]
    assert sent == [[], ["e2"], ["e3", "e1"], []]
    (record,) = injector.truth.records
    assert record["event_id"] == "e1" and record["detail"] == {"held_behind": 2}
    assert [e["id"] for _, e, _ in injector.release_held()] == ["e4"]
    assert len(injector.truth.records) == 1  # e4 was overtaken by nothing: not a reorder


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
