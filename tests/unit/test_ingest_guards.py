"""The receiver's guards, as pure logic: the bearer token check, refusals counted and logged rate-limited,
rows checked against the store's integer columns, and JSON answers without NaN."""

from __future__ import annotations

import json
import logging

import pytest

from collectors.ingest.bearer import Bearer, header
from collectors.ingest.refusals import LOG_EVERY_S, Refusals
from collectors.serving.answers import dumps
from collectors.storage.store import INT64_MAX, INT64_MIN, batch_fits, row_checker


@pytest.mark.parametrize(
    "authorization,allowed",
    [
        ("Bearer t0ken", True),
        ("bearer t0ken", True),
        ("Bearer  t0ken ", True),
        ("Bearer t0ke", False),
        ("Bearer t0kenn", False),
        ("Basic t0ken", False),
        ("t0ken", False),
        ("", False),
        (None, False),
        ("Bearer t\u00f6ken", False),
    ],
)
def test_the_token_must_match_exactly(authorization, allowed):
    assert Bearer("t0ken").allows(authorization) is allowed


def test_without_a_token_everything_is_allowed_and_nothing_is_sent():
    assert Bearer(None).allows(None) and Bearer(None).allows("Bearer anything")
    assert header(None) == {} and header("t") == {"Authorization": "Bearer t"}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_counted_per_reason_and_logged_once_per_interval(caplog):
    clock = Clock()
    refusals = Refusals(clock)
    with caplog.at_level(logging.WARNING, logger="collectors.ingest.refusals"):
        for _ in range(5):
            refusals.refuse("timeout", "10.0.0.1:5", "slow")
        refusals.refuse("not_found", "10.0.0.2:6")
        clock.now = LOG_EVERY_S
        refusals.refuse("timeout", "10.0.0.3:7", "slow")
    assert refusals.status() == {"refused": 7, "refused_by_reason": {"timeout": 6, "not_found": 1}, "rejected_items": 0}
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "refused 1 request(s) (timeout), latest from 10.0.0.1:5: slow",
        "refused 1 request(s) (not_found), latest from 10.0.0.2:6",
        "refused 5 request(s) (timeout), latest from 10.0.0.3:7: slow",  # the four unlogged ones and this one
    ]


def test_an_undocumented_reason_is_a_bug():
    with pytest.raises(ValueError, match="unknown refusal reason"):
        Refusals(Clock()).refuse("bogus", "c")


def test_rejected_items_are_counted_apart_from_refused_requests():
    refusals = Refusals(Clock())
    refusals.reject_items(3, "c", "Timestamp out of range")
    assert refusals.status() == {"refused": 0, "refused_by_reason": {}, "rejected_items": 3}


def span_row(**changes) -> tuple:
    from collectors.ingest.otlp import SPAN_COLUMNS

    row = dict.fromkeys(SPAN_COLUMNS, "x") | {"Timestamp": 10, "Duration": 5, "Sequence": None, "Attempts": 1}
    row |= {"SchemaVersion": None, "DeliveryCount": None} | changes
    return tuple(row.values())


@pytest.mark.parametrize(
    "changes,problem",
    [
        ({}, None),
        ({"Sequence": INT64_MAX, "Attempts": INT64_MIN}, None),
        ({"Sequence": INT64_MAX + 1}, "Sequence"),
        ({"Attempts": INT64_MIN - 1}, "Attempts"),
        ({"Timestamp": 2**64 - 1}, "Timestamp"),
        ({"Timestamp": INT64_MAX - 4, "Duration": 5}, "Timestamp + Duration"),
    ],
)
def test_span_rows_are_checked_against_the_integer_columns(changes, problem):
    found = row_checker("otel_traces")(span_row(**changes))
    assert (found is None) if problem is None else found.startswith(problem)
    # the quick test over whole columns passes a batch only when no row of it has a problem
    assert batch_fits("otel_traces")([span_row(), span_row(**changes), span_row()]) is (problem is None)


def test_an_empty_batch_fits_and_metric_batches_are_left_to_the_row_check():
    from collectors.ingest.metrics import METRIC_COLUMNS

    assert batch_fits("otel_traces")([])
    row = dict.fromkeys(METRIC_COLUMNS) | {"StartTimeUnix": 0, "TimeUnix": 1, "Flags": 0}
    assert not batch_fits("otel_metrics")([tuple(row.values())])


def test_metric_bucket_counts_are_checked_element_by_element():
    from collectors.ingest.metrics import METRIC_COLUMNS

    check = row_checker("otel_metrics")
    row = dict.fromkeys(METRIC_COLUMNS) | {"StartTimeUnix": 0, "TimeUnix": 1, "Flags": 0}
    assert check(tuple(row.values())) is None
    assert check(tuple((row | {"BucketCounts": [1, 2**64 - 1]}).values())).startswith("a value of BucketCounts")
    assert check(tuple((row | {"Count": 2**64 - 1}).values())).startswith("Count")


def test_json_answers_are_strict_and_non_finite_floats_are_null():
    def strict(text: bytes) -> object:
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in a JSON answer"))

    assert strict(dumps({"a": 1.5, "b": "NaN"})) == {"a": 1.5, "b": "NaN"}
    assert strict(dumps({"p95": float("nan"), "rows": [(float("inf"), 2)]})) == {"p95": None, "rows": [[None, 2]]}
