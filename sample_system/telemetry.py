"""OpenTelemetry set-up for the sample services.

Each service gets its own TracerProvider and MeterProvider (its own ``service.name``) exporting
with the stock OTLP/HTTP exporters, which read the standard ``OTEL_EXPORTER_OTLP_*`` variables
themselves; eventscope-redis traces each service's Pub/Sub with its provider and carries the
context in the CloudEvent. Log lines are JSON carrying the current trace and span ids, so a log line
leads to its trace.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.semconv._incubating.attributes import messaging_attributes as messaging
from opentelemetry.semconv._incubating.metrics import messaging_metrics
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

from eventscope_redis.attributes import SYSTEM
from sample_system.handling import DUPLICATE_SKIPPED, PROCESSED

INSTRUMENTATION_SCOPE = "sample_system"
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.http_transport",
)
"""Loggers of the stock exporters: a collector without /v1/metrics answers 404 on every export."""
METRIC_SENT = messaging_metrics.MESSAGING_CLIENT_SENT_MESSAGES
METRIC_CONSUMED = messaging_metrics.MESSAGING_CLIENT_CONSUMED_MESSAGES
METRIC_PROCESS_DURATION = messaging_metrics.MESSAGING_PROCESS_DURATION
METRIC_PROJECTION_LAG = "eventscope.projection.lag"


def tracer_provider(service: str, enabled: bool, exporter: SpanExporter | None = None) -> trace.TracerProvider:
    """A provider for one service; a no-op provider when tracing is off."""
    if not enabled:
        return trace.NoOpTracerProvider()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


SHUTDOWN_TIMEOUT_S = 3.0
"""At most this long for each flush-then-close round at exit: an unreachable collector (the stock exporter
retries for up to ten seconds per export) must not hold a stopping process for a minute."""


def _all_within(calls: list, timeout_s: float) -> None:
    """Run the calls in parallel; return when all are done or ``timeout_s`` has passed (the rest are abandoned)."""
    threads = [threading.Thread(target=call, daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def shutdown(
    providers: list[trace.TracerProvider],
    meters: list[metrics.MeterProvider] | None = None,
    timeout_s: float = SHUTDOWN_TIMEOUT_S,
) -> None:
    """Flush every tracer provider before shutting any down (services may share one exporter), then shut
    down tracers and meters together (a meter provider exports its last metrics); each step bounded."""
    sdk_providers = [p for p in providers if isinstance(p, TracerProvider)]
    sdk_meters = [p for p in meters or [] if isinstance(p, MeterProvider)]
    _all_within([p.force_flush for p in sdk_providers], timeout_s)
    closing = [lambda p=p: p.shutdown(timeout_millis=timeout_s * 1000) for p in sdk_meters]
    _all_within([p.shutdown for p in sdk_providers] + closing, timeout_s)


def meter_provider(service: str, enabled: bool, reader: MetricReader | None = None) -> metrics.MeterProvider:
    """A meter provider for one service (OTLP/HTTP unless ``reader`` is given); no-op when off."""
    if not enabled:
        return metrics.NoOpMeterProvider()
    if reader is None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        quiet_repeated_export_errors()
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_timeout_millis=5000)
    return MeterProvider(metric_readers=[reader], resource=Resource.create({SERVICE_NAME: service}))


class MessagingMetrics:
    """The OpenTelemetry messaging metrics of one service: sent, consumed, process duration."""

    def __init__(self, provider: metrics.MeterProvider):
        meter = provider.get_meter(INSTRUMENTATION_SCOPE)
        self.enabled = isinstance(provider, MeterProvider)
        self._sent = meter.create_counter(METRIC_SENT, unit="{message}", description="Messages published")
        self._consumed = meter.create_counter(METRIC_CONSUMED, unit="{message}", description="Messages delivered")
        self._duration = meter.create_histogram(
            METRIC_PROCESS_DURATION, unit="s", description="Time to process one delivery"
        )
        self._lag = meter.create_histogram(
            METRIC_PROJECTION_LAG, unit="ms", description="How far a read model trails the event it applied"
        )

    def sent(self, channel: str) -> None:
        if self.enabled:
            self._sent.add(1, {messaging.MESSAGING_SYSTEM: SYSTEM, messaging.MESSAGING_DESTINATION_NAME: channel})

    def consumed(self, channel: str, group: str, seconds: float, outcome: str) -> None:
        if not self.enabled:
            return
        attributes = {
            messaging.MESSAGING_SYSTEM: SYSTEM,
            messaging.MESSAGING_DESTINATION_NAME: channel,
            messaging.MESSAGING_CONSUMER_GROUP_NAME: group,
            messaging.MESSAGING_OPERATION_NAME: "process",
        }
        self._consumed.add(1, attributes)
        if outcome not in (PROCESSED, DUPLICATE_SKIPPED):
            attributes = {**attributes, ERROR_TYPE: outcome}
        self._duration.record(seconds, attributes)

    def projection_lag(self, view: str, lag_ms: float) -> None:
        # a histogram holds no negative values; a negative lag (clock skew) stays raw on the span
        if self.enabled and lag_ms >= 0:
            self._lag.record(lag_ms, {"eventscope.view": view})


class _OncePerMessage(logging.Filter):
    """Lets each distinct message template through once: a missing endpoint is worth one line, not one a minute."""

    def __init__(self):
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}:{record.msg}"
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


_QUIET = _OncePerMessage()


def quiet_repeated_export_errors() -> None:
    """Install the once-per-message filter on the stock exporters' loggers (idempotent)."""
    for name in EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)


class TraceContextFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message and the current trace/span ids."""

    def format(self, record: logging.LogRecord) -> str:
        context = trace.get_current_span().get_span_context()
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: int = logging.INFO) -> None:
    """Structured logs on stderr for the whole process."""
    handler = logging.StreamHandler()
    handler.setFormatter(TraceContextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_repeated_export_errors()
