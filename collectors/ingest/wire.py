"""The OTLP trace export request read with each span's attributes left as their protobuf bytes.

Reading a span's attributes through the protobuf runtime makes two Python objects per attribute
(the KeyValue and its AnyValue) before its key and value are read, which cost more than the rest of
the span's decoding together. ``ExportTraceServiceRequest`` here is the stock message with one
change: ``Span.attributes`` (field 9) is declared as repeated ``bytes`` instead of repeated
``KeyValue``. Both are length-delimited on the wire, so every valid request parses the same way and
each attribute arrives as the bytes of one encoded KeyValue. Spans repeat most of their attributes
exactly (system, destination, event type, consumer group ...), so collectors/ingest/otlp.py reads
each distinct encoding once and looks it up after that. Everything else (events, links, resources,
scopes) is the stock message. The stock JSON mapping is kept for OTLP/JSON (``STOCK``): such a body
is parsed as the stock message and re-read in this form.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

PACKAGE = "eventscope.wire.v1"
FILE_NAME = "eventscope/wire/v1/trace_wire.proto"
_TRACE_MESSAGES = ("ResourceSpans", "ScopeSpans", "Span", "Status")  # the stock messages that hold a Span
ATTRIBUTES_FIELD = "attributes"


def _rename(message: descriptor_pb2.DescriptorProto, stock_prefix: str) -> None:
    for field in message.field:
        if field.type_name.startswith(stock_prefix):
            field.type_name = f".{PACKAGE}." + field.type_name[len(stock_prefix) :]
    for nested in message.nested_type:
        _rename(nested, stock_prefix)


def _file() -> descriptor_pb2.FileDescriptorProto:
    trace, service = descriptor_pb2.FileDescriptorProto(), descriptor_pb2.FileDescriptorProto()
    trace_pb2.DESCRIPTOR.CopyToProto(trace)
    trace_service_pb2.DESCRIPTOR.CopyToProto(service)
    wire = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax=trace.syntax)
    wire.dependency.extend(trace.dependency)
    wire.message_type.extend(m for m in trace.message_type if m.name in _TRACE_MESSAGES)
    wire.message_type.extend(m for m in service.message_type if m.name == "ExportTraceServiceRequest")
    for message in wire.message_type:
        _rename(message, f".{trace.package}.")
        if message.name == "Span":
            (field,) = (f for f in message.field if f.name == ATTRIBUTES_FIELD)
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
            field.ClearField("type_name")
    return wire


def _request_type() -> type:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(FILE_NAME)
    except KeyError:
        pool.AddSerializedFile(_file().SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.ExportTraceServiceRequest"))


ExportTraceServiceRequest = _request_type()
"""The trace export request, each span's ``attributes`` a list of encoded KeyValue messages."""

STOCK = {ExportTraceServiceRequest: trace_service_pb2.ExportTraceServiceRequest}
"""The stock message of each wire-level one: OTLP/JSON is parsed into it (its JSON mapping is the standard one)."""
