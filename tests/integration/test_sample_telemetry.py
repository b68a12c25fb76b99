"""The shop's telemetry besides spans: the messaging metrics, and log lines that lead to their trace."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sample_system import telemetry
from sample_system.config import load_config
from sample_system.shop import Shop, exporter_factory_for
from sample_system.storefront import drive

pytestmark = pytest.mark.integration


def _points(reader: InMemoryMetricReader) -> dict[str, list]:
    found: dict[str, list] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_messaging_metrics_count_sent_and_consumed_and_time_processing(redis_server):
    readers: list[InMemoryMetricReader] = []

    def reader() -> InMemoryMetricReader:
        readers.append(InMemoryMetricReader())
        return readers[-1]

    config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0"})
    memory = InMemorySpanExporter()
    with Shop(config, exporter_factory_for(memory), metric_reader_factory=reader) as shop:
        drive(shop.orders.place_order, rate=0, seed=41, stop=threading.Event(), limit=5)
        assert shop.wait_idle()
        points = {}
        for one in readers:
            for name, found in _points(one).items():
                points.setdefault(name, []).extend(found)
        consumed = {
            p.attributes["messaging.consumer.group.name"]: p.value
            for p in points[telemetry.METRIC_CONSUMED]
            if p.attributes["messaging.destination.name"] == "shop.orders"
        }
        assert consumed == {"inventory": 5, "order-view": 5}
        sent = sum(
            p.value
            for p in points[telemetry.METRIC_SENT]
            if p.attributes["messaging.destination.name"] == "shop.orders"
        )
        assert sent == 5
        durations = [
            p
            for p in points[telemetry.METRIC_PROCESS_DURATION]
            if p.attributes["messaging.consumer.group.name"] == "inventory"
            and p.attributes["messaging.destination.name"] == "shop.orders"
        ]
        assert sum(p.count for p in durations) == 5 and all(p.sum > 0 for p in durations)
        assert points[telemetry.METRIC_PROJECTION_LAG]


def test_log_lines_carry_the_trace_and_span_ids(redis_server):
    records: list[str] = []
    formatter = telemetry.TraceContextFormatter()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(formatter.format(record))

    handler = Keep()
    logger = logging.getLogger("sample_system.services.notifications")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    memory = InMemorySpanExporter()
    try:
        config = load_config({"REDIS_URL": redis_server.url, "SAMPLE_V1_SHARE": "0"})
        with Shop(config, exporter_factory_for(memory)) as shop:
            shop.accounts.sign_up({"user_id": "user-logged"})
            assert shop.wait_idle(quiet_s=0.3)
    finally:
        logger.removeHandler(handler)
    (line,) = [json.loads(r) for r in records if "user-logged" in r]
    spans = {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}"): s for s in memory.get_finished_spans()}
    span = spans[(line["trace_id"], line["span_id"])]
    assert span.name == "process shop.users" and line["level"] == "INFO"


def test_repeated_exporter_errors_are_logged_once():
    telemetry.quiet_repeated_export_errors()
    logger = logging.getLogger(telemetry.EXPORTER_LOGGERS[0])
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        for _ in range(5):
            logger.error("Failed to export metrics batch code: %s, reason: %s", 404, "Not Found")
    finally:
        logger.removeHandler(handler)
    assert len(seen) <= 1
