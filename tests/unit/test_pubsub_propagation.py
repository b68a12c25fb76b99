"""The producer's context read back from an event: the same span context the W3C propagator finds, garbage too."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext, TraceFlags

from eventscope_redis import propagation

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"

CARRIERS = [
    pytest.param({"traceparent": f"00-{TRACE}-{SPAN}-01"}, id="sampled"),
    pytest.param({"traceparent": f"00-{TRACE}-{SPAN}-00"}, id="not sampled"),
    pytest.param({"traceparent": f"01-{TRACE}-{SPAN}-01"}, id="a later version"),
    pytest.param({"traceparent": f"01-{TRACE}-{SPAN}-01-extra"}, id="a later version with more fields"),
    pytest.param({"traceparent": f"00-{TRACE}-{SPAN}-01-extra"}, id="version 00 with more fields"),
    pytest.param({"traceparent": f"ff-{TRACE}-{SPAN}-01"}, id="version ff"),
    pytest.param({"traceparent": f"00-{'0' * 32}-{SPAN}-01"}, id="zero trace id"),
    pytest.param({"traceparent": f"00-{TRACE}-{'0' * 16}-01"}, id="zero span id"),
    pytest.param({"traceparent": f"00-{TRACE.upper()}-{SPAN}-01"}, id="upper-case hex"),
    pytest.param({"traceparent": f" 00-{TRACE}-{SPAN}-01"}, id="leading space"),
    pytest.param({"traceparent": f"00-{TRACE}-{SPAN}-01 "}, id="trailing space"),
    pytest.param({"traceparent": f"00-{TRACE}-{SPAN}-0g"}, id="not hex"),
    pytest.param({"traceparent": f"00_{TRACE}_{SPAN}_01"}, id="wrong separators, right length"),
    pytest.param({"traceparent": "x" * 55}, id="garbage of the right length"),
    pytest.param({"traceparent": "x" * 600}, id="too long"),
    pytest.param({"traceparent": ""}, id="empty"),
    pytest.param({"traceparent": 7}, id="not a string"),
    pytest.param({"traceparent": None}, id="null"),
    pytest.param({}, id="absent"),
    pytest.param({"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "a=1,b=2"}, id="with tracestate"),
    pytest.param({"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": 5}, id="tracestate not a string"),
    pytest.param({"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "=,,=="}, id="garbage tracestate"),
]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_extract_span_finds_what_the_propagator_finds(carrier: dict) -> None:
    expected = trace.get_current_span(propagation.extract(carrier)).get_span_context()
    assert propagation.extract_span(carrier) == expected
    assert propagation.extract_span(carrier).trace_state == expected.trace_state
    assert propagation.extract_span(carrier).is_remote == expected.is_remote


def test_a_span_context_written_by_inject_span_is_read_back() -> None:
    context = SpanContext(int(TRACE, 16), int(SPAN, 16), is_remote=False, trace_flags=TraceFlags(1))
    carrier: dict = {}
    propagation.inject_span(carrier, NonRecordingSpan(context))
    found = propagation.extract_span(carrier)
    assert (found.trace_id, found.span_id, found.trace_flags, found.is_remote) == (
        context.trace_id,
        context.span_id,
        context.trace_flags,
        True,
    )


def test_no_context_is_the_invalid_one() -> None:
    assert propagation.extract_span({}) is INVALID_SPAN_CONTEXT
    assert trace.get_current_span(propagation.extract({})).get_span_context() == INVALID_SPAN_CONTEXT
    assert propagation.extract({}) == Context()
