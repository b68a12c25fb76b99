"""The sample shop on a real Redis Cluster: events go on sharded channels spread over the shards, the order flow
is still one trace through every hop, and the collectors' tap sees each event once."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sample_system.config import load_config
from sample_system.shop import Shop, exporter_factory_for
from sample_system.storefront import run_load
from tests.processes import Collectors, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 60
FLOW = ("shop.orders", "shop.stock", "shop.payments", "shop.shipping")
CHANNELS = (*FLOW, "shop.users", "shop.accounts")


def cluster_config(cluster) -> object:
    return load_config({"REDIS_URL": cluster.url, "EVENTSCOPE_REDIS_CLUSTER": "1", "SAMPLE_V1_SHARE": "0"})


def test_the_shop_runs_on_sharded_channels_across_the_shards(redis_cluster):
    assert len({redis_cluster.owner(channel) for channel in CHANNELS}) >= 2  # the flow crosses shards
    memory = InMemorySpanExporter()
    with Shop(cluster_config(redis_cluster), exporter_factory_for(memory)) as shop:
        issued = run_load(shop.handlers(), rate=0, seed=5, stop=threading.Event(), limit=30)
        wait_until(lambda: shop.notifications.sent >= 1 and shop.wait_idle(quiet_s=0.3), WAIT_S, what="a shipment")
    spans = memory.get_finished_spans()
    producers = [s for s in spans if s.kind == SpanKind.PRODUCER]
    assert {s.attributes["messaging.operation.name"] for s in producers} == {"spublish"}
    assert {s.name for s in producers} >= {f"send {channel}" for channel in FLOW}
    services = {s.resource.attributes["service.name"] for s in spans}
    assert services == {"orders", "inventory", "payments", "shipping", "notifications", "accounts", "order-view"}
    assert issued["place_order"] >= 1
    assert all(c.outcomes.keys() <= {"processed"} for c in shop.consumers)
    by_id = {s.context.span_id: s for s in producers}
    consumers = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert consumers and all(by_id[s.parent.span_id].attributes["messaging.message.id"] ==
                             s.attributes["messaging.message.id"] for s in consumers)  # fmt: skip


def test_the_tap_sees_each_shop_event_once(redis_cluster):
    env = {"EVENTSCOPE_REDIS_CLUSTER": "1", "EVENTSCOPE_TAP_SHARD_CHANNELS": ",".join(CHANNELS)}
    collectors = Collectors(redis_cluster.url, extra_env=env)
    try:
        wait_until(
            lambda: set(CHANNELS) <= set(collectors.get("health")["tap"]["cluster"]["shard_channels"]),
            WAIT_S,
            what="the tap on the shop's channels",
        )
        with Shop(cluster_config(redis_cluster)) as shop:
            run_load(shop.handlers(), rate=0, seed=7, stop=threading.Event(), limit=30)
            assert shop.wait_idle()
            published = shop.published()
        wait_until(lambda: collectors.get("health")["tap"]["recorded"] >= published, WAIT_S, what="every event")
        streams = [s for s in collectors.get("report")["streams"] if s["vantage"] == "bus"]
        assert collectors.get("health")["tap"]["recorded"] == published
        assert sum(s["received"] for s in streams) == published
        assert all((s["duplicates"], s["missing"]) == (0, 0) for s in streams)
    finally:
        collectors.stop()
    assert "Traceback" not in collectors.log()
