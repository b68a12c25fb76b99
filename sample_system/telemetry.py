"""OpenTelemetry set-up for the sample services, and trace context carried in the CloudEvent.

Each service gets its own TracerProvider (its own ``service.name``) exporting with the stock
OTLP/HTTP exporter, which reads the standard ``OTEL_EXPORTER_OTLP_*`` variables itself. Context
travels in the envelope through one getter/setter pair (the Distributed Tracing extension).
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

INSTRUMENTATION_SCOPE = "sample_system"
_PROPAGATOR = TraceContextTextMapPropagator()


class _EnvelopeGetter(Getter[dict]):
    def get(self, carrier: dict, key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: dict) -> list[str]:
        return list(carrier)


class _EnvelopeSetter(Setter[dict]):
    def set(self, carrier: dict, key: str, value: str) -> None:
        carrier[key] = value


ENVELOPE_GETTER = _EnvelopeGetter()
ENVELOPE_SETTER = _EnvelopeSetter()


def inject(event: dict) -> None:
    """Write the current span's context into the event as traceparent/tracestate."""
    _PROPAGATOR.inject(event, setter=ENVELOPE_SETTER)


def extract(event: dict) -> Context:
    """The producer's context carried by the event (empty if none)."""
    return _PROPAGATOR.extract(event, getter=ENVELOPE_GETTER)


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


def shutdown(providers: list[trace.TracerProvider]) -> None:
    """Flush every provider before shutting any down: services may share one exporter."""
    sdk_providers = [p for p in providers if isinstance(p, TracerProvider)]
    for provider in sdk_providers:
        provider.force_flush()
    for provider in sdk_providers:
        provider.shutdown()
