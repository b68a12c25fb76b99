"""``python -m collectors check`` gates a CI pipeline on a collected event flow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.test_analysis_shop import EventFlow, shop
from tests.processes import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration


def check(api: str, *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "collectors", "check", "--api", api, *flags]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_limits_pass_and_fail_with_a_readable_summary(collectors, redis_server):
    flow = EventFlow(collectors.api, redis_server.client())
    try:
        shop(flow, collectors)
    finally:
        flow.close()
    # the shop has 4 missing numbers over all vantage points, 1 duplicate processed again, 1 dead letter
    passing = check(
        collectors.api,
        "--max-missing",
        "4",
        "--max-unhandled-duplicates",
        "1",
        "--max-dead-letters",
        "1",
        "--max-malformed",
        "0",
        "--max-p95-ms",
        "100000",
    )
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "ok: every limit holds" in passing.stdout
    failing = check(
        collectors.api,
        "--max-missing",
        "3",
        "--max-lost",
        "0",
        "--grace-s",
        "0",
        "--max-unhandled-duplicates",
        "0",
        "--max-dead-letters",
        "5",
    )
    assert failing.returncode == 1, failing.stdout + failing.stderr
    lines = failing.stdout.splitlines()
    assert "  missing                4 (limit 3) FAILED" in lines
    assert "  duplicates_processed   1 (limit 0) FAILED" in lines
    assert "  dead_letters           1 (limit 5) ok" in lines
    assert lines[-1] == "FAILED: 3 of 4 limits exceeded"
    as_json = check(collectors.api, "--max-missing", "3", "--max-dead-letters", "5", "--json")
    assert as_json.returncode == 1, as_json.stdout + as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["ok"] is False and answer["verdict"] == "FAILED: 1 of 2 limits exceeded"
    assert answer["limits"] == [
        {"field": "missing", "value": 4, "limit": 3, "ok": False},
        {"field": "dead_letters", "value": 1, "limit": 5, "ok": True},
    ]
    assert answer["figures"]["duplicates"] >= 1 and answer["observed_nothing"] is False


def test_channel_filter_narrows_the_check(collectors, redis_server):
    flow = EventFlow(collectors.api, redis_server.client())
    try:
        shop(flow, collectors)
    finally:
        flow.close()
    assert (
        check(collectors.api, "--channel", "shop.stock", "--max-missing", "0", "--max-dead-letters", "0").returncode
        == 0
    )


def test_an_empty_window_fails_as_nothing_observed_unless_allowed(collectors):
    """Every limit holds over nothing: a pipeline whose telemetry never arrived must not pass."""
    empty = check(collectors.api, "--max-missing", "0", "--max-unhandled-duplicates", "0")
    assert empty.returncode == 1, empty.stdout + empty.stderr
    assert empty.stdout.splitlines()[-1].startswith("FAILED: nothing observed")
    allowed = check(collectors.api, "--max-missing", "0", "--allow-empty")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert allowed.stdout.splitlines()[-1] == "ok: every limit holds"
    empty_json = json.loads(check(collectors.api, "--max-missing", "0", "--json").stdout)
    assert empty_json["ok"] is False and empty_json["observed_nothing"] is True
    assert empty_json["verdict"].startswith("FAILED: nothing observed")
    allowed_json = json.loads(check(collectors.api, "--max-missing", "0", "--allow-empty", "--json").stdout)
    assert allowed_json["ok"] is True and allowed_json["limits"] == [
        {"field": "missing", "value": 0, "limit": 0, "ok": True}
    ]


def test_unenveloped_messages_alone_are_something_observed(collectors, redis_server):
    redis_server.client().publish("app.prices", '{"price": 1}')
    wait_until(lambda: collectors.get("overview")["messages"] == 1, what="the message stored")
    result = check(collectors.api, "--max-missing", "0")
    assert result.returncode == 0, result.stdout + result.stderr


def test_unreachable_api_exits_2():
    result = check(f"http://127.0.0.1:{free_port()}", "--max-missing", "0")
    assert result.returncode == 2
    assert "cannot read the overview" in result.stdout
    as_json = check(f"http://127.0.0.1:{free_port()}", "--max-missing", "0", "--json")
    assert as_json.returncode == 2
    answer = json.loads(as_json.stdout)
    assert answer["ok"] is False and answer["error"].startswith("cannot read the overview")
