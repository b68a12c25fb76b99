"""The Overview's events/s is a rate over the time events were seen, not over an empty window."""

from __future__ import annotations

import json
import time

import pytest

from tests.processes import wait_until

pytestmark = pytest.mark.integration


def test_a_window_opened_before_the_first_event_does_not_dilute_the_rate(collectors, redis_server):
    client = redis_server.client()
    for sequence in range(1, 11):
        event = {
            "specversion": "1.0",
            "id": f"r{sequence}",
            "source": "/t/rate",
            "type": "t",
            "sequence": str(sequence),
        }
        client.publish("t.rate", json.dumps(event))
    wait_until(lambda: collectors.get("health")["store"]["bus_messages"] == 10)
    fifteen_minutes_ago = time.time_ns() - 15 * 60 * 10**9
    overview = collectors.get(f"overview?since_ns={fifteen_minutes_ago}")
    assert overview["bus_messages"] == 10
    # the ten events arrived within a few seconds: over 900 s the rate would read 0.01/s
    assert overview["events_per_s"] >= 10 / 30
