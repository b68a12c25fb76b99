"""Trace context carried inside the CloudEvent, through one getter/setter pair.

The CloudEvents Distributed Tracing extension names exactly ``traceparent`` and ``tracestate``, so the
W3C Trace Context propagator is used rather than the global one (which may add baggage or B3 headers).
A producer span's own context is written straight from the span (``inject_span``), in the propagator's
exact form, without building a Context for each message; and read back the same way (``extract_span``)
when the event carries the plain ``traceparent`` the library writes.
"""

from __future__ import annotations

import re

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import INVALID_SPAN_CONTEXT, Span, SpanContext, TraceFlags, get_current_span
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


_PLAIN_TRACEPARENT = re.compile("([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_PLAIN_LENGTH = 55  # version-traceid-spanid-flags, nothing around it
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


def extract_span(attributes: dict) -> SpanContext:
    """The producer span's context the event carries (invalid when none), as ``extract`` would find it.

    A plain ``traceparent`` without ``tracestate`` is read here directly; anything else goes through the
    propagator, whose rules (whitespace, future versions, tracestate limits) then apply as they are.
    """
    traceparent = attributes.get("traceparent")
    if type(traceparent) is not str:
        return INVALID_SPAN_CONTEXT
    if len(traceparent) != _PLAIN_LENGTH or "tracestate" in attributes:
        return get_current_span(extract(attributes)).get_span_context()
    match = _PLAIN_TRACEPARENT.fullmatch(traceparent)
    if match is None:
        return INVALID_SPAN_CONTEXT
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return INVALID_SPAN_CONTEXT
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16)))
