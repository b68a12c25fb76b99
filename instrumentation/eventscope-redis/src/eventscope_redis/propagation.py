"""Trace context carried inside the CloudEvent, through one getter/setter pair.

The CloudEvents Distributed Tracing extension names exactly ``traceparent`` and ``tracestate``, so the
W3C Trace Context propagator is used rather than the global one (which may add baggage or B3 headers).
A producer span's own context is written straight from the span (``inject_span``), in the propagator's
exact form, without building a Context for each message.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import INVALID_SPAN_CONTEXT, Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


class _AttributeGetter(Getter[dict]):
    def get(self, carrier: dict, key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: dict) -> list[str]:
        return list(carrier)


class _AttributeSetter(Setter[dict]):
    def set(self, carrier: dict, key: str, value: str) -> None:
        carrier[key] = value


_PROPAGATOR = TraceContextTextMapPropagator()
GETTER = _AttributeGetter()
SETTER = _AttributeSetter()


def inject(attributes: dict, context: Context | None = None) -> None:
    """Write ``context`` (default: the current one) into the event's attributes."""
    _PROPAGATOR.inject(attributes, context=context, setter=SETTER)


def inject_span(attributes: dict, span: Span) -> None:
    """Write ``span``'s context into the event's attributes, as ``inject`` does for a context holding it."""
    context = span.get_span_context()
    if context == INVALID_SPAN_CONTEXT:
        return
    attributes["traceparent"] = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    if context.trace_state:
        attributes["tracestate"] = context.trace_state.to_header()


def extract(attributes: dict) -> Context:
    """The producer's context the event carries (an empty context when it carries none)."""
    return _PROPAGATOR.extract(attributes, context=Context(), getter=GETTER)
