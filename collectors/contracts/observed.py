"""What was observed of each event type and schema version: who sent it, who received it, and its data.

Read from the store for the contract checks (collectors/contracts/findings.py), with no registry: the bus
tap's copies say what went over the wire (the type, the ``dataschema`` and the data); the PRODUCER spans
say which service sent it (for a payload, the sender of its example event); the CONSUMER spans say which
group received it and the version it read (``eventscope.schema.version``, or the bus copy's ``dataschema``).
Payloads are the distinct data of the newest messages per (channel, type, dataschema) and one of each shape,
so the answer stays bounded; the answer says how many messages that covers of how many.
"""

from __future__ import annotations

import re

from collectors.analyses import roles
from collectors.analyses.filters import Filters, bind, window
from collectors.storage.reader import Reader

DEFAULT_PAYLOADS = 200
"""Distinct payloads read per (channel, type, dataschema) unless asked otherwise, newest first; the newest of
each other shape (``json_structure``: field names and JSON types) is read too, so a missing, extra or
mistyped field anywhere in the window is validated however many events came after it. Validation costs
0.05 to 0.2 ms a payload (bench/contracts.py)."""
MAX_PAYLOADS = 100_000
_SCHEMA_VERSION = re.compile(r"[:/]v?([0-9]{1,18})$")
"""The version at the end of a ``dataschema`` URI (``...:2``, ``.../v2``), as eventscope-redis reads it."""

_BUS = f"""
SELECT Channel AS channel, EventId AS event_id, any_value(Type) AS type,
       any_value(CASE WHEN json_valid(Payload) THEN json_extract_string(Payload, '$.dataschema') END) AS dataschema
FROM bus_messages WHERE Valid AND EventId IS NOT NULL AND {window("ArrivalNs")}
GROUP BY Channel, EventId
"""
_SENT = f"""
SELECT MsgDestination AS channel, MsgMessageId AS event_id, ServiceName AS producer, CeType AS type,
       SchemaVersion AS version, count(*) AS n
FROM otel_traces WHERE {roles.publish()} AND MsgDestination IS NOT NULL AND {window("Timestamp")}
GROUP BY ALL
"""
_PUBLICATIONS = f"""
SELECT COALESCE(b.channel, s.channel) AS channel, COALESCE(b.type, s.type) AS type, b.dataschema, s.version,
       s.producer, sum(CASE WHEN b.event_id IS NULL AND s.event_id IS NULL THEN s.n ELSE 1 END) AS count,
       min(COALESCE(b.event_id, s.event_id)) AS example_event_id
FROM ({_BUS}) b FULL OUTER JOIN ({_SENT}) s ON s.channel = b.channel AND s.event_id = b.event_id
GROUP BY ALL ORDER BY ALL
"""
_DELIVERIES = f"""
SELECT COALESCE(s.MsgConsumerGroup, s.ServiceName) AS consumer_group, s.MsgDestination AS channel,
       COALESCE(b.type, s.CeType) AS type, b.dataschema, s.SchemaVersion AS version, count(*) AS count,
       min(s.MsgMessageId) AS example_event_id
FROM otel_traces s LEFT JOIN ({_BUS}) b ON b.channel = s.MsgDestination AND b.event_id = s.MsgMessageId
WHERE {roles.delivery("s")} AND {window("s.Timestamp")}
GROUP BY ALL ORDER BY ALL
"""
_PAYLOADS = f"""
WITH kept AS (
    SELECT channel, type, dataschema, data, count(*) AS count, min(event_id) AS event_id
    FROM (
        SELECT Channel AS channel, Type AS type, EventId AS event_id, ArrivalNs,
               CASE WHEN json_valid(Payload) THEN json_extract_string(Payload, '$.dataschema') END AS dataschema,
               CASE WHEN json_valid(Payload) THEN CAST(json_extract(Payload, '$.data') AS VARCHAR) END AS data
        FROM bus_messages WHERE Valid AND {window("ArrivalNs")}
    )
    GROUP BY channel, type, dataschema, data
    QUALIFY row_number() OVER (PARTITION BY channel, type, dataschema ORDER BY max(ArrivalNs) DESC, data) <= $per_key
         OR row_number() OVER (PARTITION BY channel, type, dataschema, json_structure(data)
                               ORDER BY max(ArrivalNs) DESC, data) = 1
)
SELECT k.*, (SELECT any_value(ServiceName) FROM otel_traces s
             WHERE {roles.publish("s")} AND s.MsgMessageId = k.event_id AND s.MsgDestination = k.channel) AS producer
FROM kept k
ORDER BY channel, type, dataschema, event_id
"""
_TOTAL = f"SELECT count(*) FROM bus_messages WHERE Valid AND {window('ArrivalNs')}"


def version_of(dataschema: object, span_version: object = None) -> int | None:
    """The schema version: the one at the end of the wire's ``dataschema``, else the one a span recorded."""
    if isinstance(dataschema, str):
        match = _SCHEMA_VERSION.search(dataschema)
        if match:
            return int(match.group(1))
    return span_version if isinstance(span_version, int) else None


def _rows(cursor: Reader, sql: str, values: dict) -> list[dict]:
    result = cursor.execute(sql, bind(sql, values))
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _versioned(rows: list[dict], key: tuple[str, ...]) -> list[dict]:
    """Rows with their schema version resolved, then merged where they now agree on ``key`` (counts summed)."""
    merged: dict[tuple, dict] = {}
    for row in rows:
        row["version"] = version_of(row.pop("dataschema", None), row.get("version"))
        if "consumer_group" in row:
            row["group"] = row.pop("consumer_group")
        same = merged.setdefault(tuple(row.get(k) for k in key), {**row, "count": 0})
        same["count"] += int(row["count"])
        same["example_event_id"] = min(filter(None, (same["example_event_id"], row["example_event_id"])), default=None)
    return list(merged.values())


def observed(cursor: Reader, filters: Filters, per_key: int = DEFAULT_PAYLOADS) -> dict:
    """Publications and deliveries by (channel, type, version, producer or group), and payloads to validate."""
    values = {**filters.values(), "per_key": per_key}
    payloads = _rows(cursor, _PAYLOADS, values) if per_key else []  # 0: who sent and received what, no data
    for row in payloads:
        row["version"] = version_of(row.pop("dataschema"))
    (total,) = cursor.execute(_TOTAL, bind(_TOTAL, values)).fetchone()
    return {
        "publications": _versioned(_rows(cursor, _PUBLICATIONS, values), ("channel", "type", "version", "producer")),
        "deliveries": _versioned(_rows(cursor, _DELIVERIES, values), ("group", "channel", "type", "version")),
        "payloads": payloads,
        "messages": total,
        "messages_checked": sum(row["count"] for row in payloads),
    }
