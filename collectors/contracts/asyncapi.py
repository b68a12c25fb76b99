"""An AsyncAPI 3.0 document of a system, from its schema registry and its observed flow.

Channels are the channels events were seen on; each event type and version is a message whose payload
is the CloudEvents envelope (structured JSON mode) with the registry's JSON Schema as its ``data``;
each producer service has a ``send`` operation per channel and each consumer group a ``receive``
operation, listing the messages it was seen sending or receiving. Schemas in the registry that were
never seen are still components, and a type seen without a schema is a message whose data is left
open, so the document shows the gap instead of hiding it. Pure: plain data in, a dict out.
"""

from __future__ import annotations

import re

from collectors.contracts.findings import shown
from collectors.contracts.registry import Registry

ASYNCAPI_VERSION = "3.0.0"
CONTENT_TYPE = "application/cloudevents+json"
_NOT_AN_ID = re.compile(r"[^A-Za-z0-9._-]+")
MAX_ID = 100
ENVELOPE_REQUIRED = ["specversion", "id", "source", "type"]


class _Ids(dict):
    """Component and map keys AsyncAPI accepts (``[A-Za-z0-9._-]``), one per name, distinct."""

    def of(self, name: str) -> str:
        if name not in self:
            base = _NOT_AN_ID.sub("_", name)[:MAX_ID] or "_"
            candidate, n = base, 1
            while candidate in self.values():
                n += 1
                candidate = f"{base}-{n}"
            self[name] = candidate
        return self[name]


def _data_schema(schema: dict | bool) -> dict | bool:
    """The registry's schema as a nested AsyncAPI schema: its own ``$schema`` and ``$id`` belong to the file."""
    if isinstance(schema, bool):
        return schema
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def _message(event_type: str, version: int | None, registry: Registry) -> dict:
    envelope = {
        "type": "object",
        "required": ENVELOPE_REQUIRED,
        "properties": {
            "specversion": {"type": "string", "const": "1.0"},
            "id": {"type": "string"},
            "source": {"type": "string"},
            "type": {"type": "string", "const": event_type},
            "dataschema": {"type": "string"},
            "sequence": {"type": "string"},
            "partitionkey": {"type": "string"},
        },
    }
    title = shown(event_type) + (f" v{version}" if version is not None else "")
    message = {"name": shown(event_type), "title": title, "contentType": CONTENT_TYPE, "payload": envelope}
    schema = registry.schemas.get((event_type, version)) if version is not None else None
    if schema is not None:
        envelope["properties"]["data"] = _data_schema(schema)
        if isinstance(schema, dict) and isinstance(schema.get("title"), str):
            message["summary"] = shown(schema["title"])
    else:
        message["description"] = "Seen on the bus; the registry holds no schema for it."
    return message


def _seen(observed: dict) -> list[tuple[str, str, str, str | None, int | None]]:
    """(action, who, channel, type, version) of every publication and delivery with its sender or receiver named."""
    rows = [("send", r.get("producer"), r.get("channel"), r.get("type"), r.get("version")) for r in observed.get(
        "publications", [])]  # fmt: skip
    rows += [("receive", r.get("group"), r.get("channel"), r.get("type"), r.get("version")) for r in observed.get(
        "deliveries", [])]  # fmt: skip
    return [row for row in rows if row[2] is not None and row[3] is not None]


def document(registry: Registry, observed: dict, title: str = "Observed event flow") -> dict:
    """The AsyncAPI 3.0 document (a dict ready for JSON)."""
    ids = _Ids()
    messages: dict[str, dict] = {}
    for event_type, version in sorted(registry.schemas):
        messages[ids.of(f"{event_type}.v{version}")] = _message(event_type, version, registry)
    channels: dict[str, dict] = {}
    operations: dict[str, dict] = {}
    for action, who, channel, event_type, version in _seen(observed):
        known = version if (event_type, version) in registry.schemas else None
        message_id = ids.of(f"{event_type}.v{known}" if known is not None else f"{event_type}.unregistered")
        messages.setdefault(message_id, _message(event_type, known, registry))
        channel_id = ids.of("channel:" + channel)
        entry = channels.setdefault(channel_id, _channel(channel))
        entry["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
        if who is None:
            continue
        operation = operations.setdefault(
            ids.of(f"operation:{action}:{who}:{channel}"),
            {"action": action, "channel": {"$ref": f"#/channels/{channel_id}"}, "summary": shown(who), "messages": []},
        )
        reference = {"$ref": f"#/channels/{channel_id}/messages/{message_id}"}
        if reference not in operation["messages"]:
            operation["messages"].append(reference)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": "observed",
            "description": "Generated by eventscope from a schema registry and the events it observed.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _channel(name: str) -> dict:
    """A channel object; a name with braces would read as address parameters, so its address stays unknown."""
    channel: dict = {"title": shown(name), "messages": {}}
    channel["address"] = None if "{" in name or "}" in name else name
    return channel
