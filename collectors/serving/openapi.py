"""The OpenAPI 3 document of the query API, served at ``/api/v1/openapi.json``.

Written as data next to the routes (collectors/serving/api.py) so that a test can check that every route
is described and every answer matches its schema.
"""

from __future__ import annotations

from collectors.contracts import findings as finding_kinds

_NUM = {"type": "number"}
_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_MS = {"type": ["number", "null"]}
_NSTR = {"type": ["string", "null"]}
_NINT = {"type": ["integer", "null"]}
_RANGES = {"type": "array", "items": {"type": "array", "items": _INT, "minItems": 2, "maxItems": 2}}


def _obj(properties: dict, required: bool = True) -> dict:
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = sorted(properties)
    return schema


def _closed(properties: dict) -> dict:
    """An object with exactly these fields: where an answer passes on rows, no store column name slips through."""
    return {**_obj(properties), "additionalProperties": False}


def _list(item: dict) -> dict:
    return {"type": "array", "items": item}


def _param(name: str, schema: dict, description: str, required: bool = False, where: str = "query") -> dict:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


FILTERS = [
    _param("since_ns", _INT, "window start on event/span time, ns since the epoch (inclusive)"),
    _param("until_ns", _INT, "window end, ns since the epoch (exclusive)"),
    _param("channel", _STR, "channel (messaging.destination.name)"),
    _param("group", _STR, "consumer group (messaging.consumer.group.name, else the consuming service)"),
    _param("type", _STR, "event type (CloudEvents type)"),
    _param("service", _STR, "service name (producing service for the bus vantage)"),
]
GRACE = _param("grace_s", _NUM, "seconds after which an unfilled gap is lost (default 5)")
LIMIT = _param("limit", _INT, "at most this many items (1 to 1000, default 50)")

_STREAM = _obj(
    {
        "vantage": _STR,
        "channel": _STR,
        "source": _NSTR,
        "partitionkey": _NSTR,
        "received": _INT,
        "duplicates": _INT,
        "out_of_order": _INT,
        "missing": _INT,
        "gaps": _RANGES,
        "lost": _INT,
        "lost_gaps": _RANGES,
    }
)
_STREAM["properties"] |= {"redeliveries": _INT, "duplicates_handled": _INT, "duplicates_processed": _INT}
_ATTRIBUTES = {"type": "object"}
_SIGHTING = {"channel": _NSTR, "type": _NSTR, "version": _NINT, "count": _INT}
_CONTRACTS_OBSERVED = _obj(
    {
        "publications": _list(_closed({**_SIGHTING, "producer": _NSTR, "example_event_id": _NSTR})),
        "deliveries": _list(_closed({**_SIGHTING, "group": _NSTR, "example_event_id": _NSTR})),
        "payloads": _list(_closed({**_SIGHTING, "data": _NSTR, "event_id": _NSTR, "producer": _NSTR})),
        "messages": _INT,
        "messages_checked": _INT,
    }
)
_FINDING = _closed(
    {
        "kind": {"enum": list(finding_kinds.KINDS)},
        "type": _NSTR,
        "version": _NINT,
        "who": _list(_STR),
        "channels": _list(_STR),
        "count": _INT,
        "example_event_id": _NSTR,
        "detail": _STR,
    }
)
_CONTRACTS = _obj({"ok": {"type": ["boolean", "null"]}, "findings": _list(_FINDING), "counts": {"type": "object"}})
_CONTRACTS["required"].append("registry")
_CONTRACTS["properties"] |= {
    "registry": {
        "oneOf": [
            {"type": "null"},
            _closed(
                {
                    "path": _STR,
                    "schemas": _INT,
                    "types": _INT,
                    "consumer_groups": _list(_STR),
                    "accepts": {"type": "object", "additionalProperties": {"type": "object"}},
                }
            ),
        ]
    },
    "observed": _closed({"publications": _INT, "deliveries": _INT, "messages": _INT, "messages_checked": _INT}),
    "note": _STR,
}
_SPAN_EVENT = _closed({"t_ns": _INT, "name": _STR, "attributes": _ATTRIBUTES})
_SPAN_LINK = _closed({"trace_id": _STR, "span_id": _STR, "trace_state": _NSTR, "attributes": _ATTRIBUTES})
_SPAN = _closed(
    {
        "start_ns": _INT,
        "trace_id": _STR,
        "span_id": _STR,
        "parent_span_id": _STR,
        "trace_state": _STR,
        "name": _STR,
        "kind": _STR,
        "service": _STR,
        "resource_attributes": _ATTRIBUTES,
        "scope_name": _STR,
        "scope_version": _STR,
        "attributes": _ATTRIBUTES,
        "duration_ns": _INT,
        "status": _STR,
        "status_message": _STR,
        "events": _list(_SPAN_EVENT),
        "links": _list(_SPAN_LINK),
    }
)
_BUS_ROW = {"arrival_ns": _INT, "channel": _STR, "pattern": _STR, "size": _INT, "source": _NSTR, "type": _NSTR}
_BUS_ROW |= {"subject": _NSTR, "event_time": _NSTR, "sequence": _NINT, "partitionkey": _NSTR, "trace_id": _NSTR}
_MESSAGE = _closed(_BUS_ROW | {"valid": _BOOL, "kind": {"enum": ["event", "unenveloped", "malformed", None]}})
_MESSAGE["properties"] |= {"error": _NSTR, "event_id": _NSTR, "payload": _STR}
_MESSAGE["required"] = sorted(_MESSAGE["properties"])
_PUBLISHED = _closed(
    {
        "trace_id": _STR,
        "span_id": _STR,
        "service": _STR,
        "name": _STR,
        "start_ns": _INT,
        "duration_ms": _NUM,
        "status": _STR,
        "channel": _NSTR,
    }
)
_PERCENTILES = {"key": _NSTR, "measure": {"enum": ["delivery", "processing", "end_to_end"]}, "count": _INT}
_PERCENTILES |= {"p50_ms": _MS, "p95_ms": _MS, "p99_ms": _MS}
_EDGE = _obj(
    {
        "source": _STR,
        "target": _STR,
        "kind": {"enum": ["publish", "deliver", "link"]},
        "count": _INT,
        "rate_per_s": _NUM,
        "errors": _INT,
        "p95_ms": _MS,
        "gaps": _INT,
        "duplicates": _INT,
    }
)
_NODE = _obj({"id": _STR, "kind": {"enum": ["service", "channel"]}, "label": _STR})
_NODE["properties"] |= {"messages": _INT, "rate_per_s": _NUM}  # channel nodes only
_LOST = _obj(
    {
        "channel": _STR,
        "source": _NSTR,
        "partitionkey": _NSTR,
        "sequence": _NINT,
        "event_id": _NSTR,
        "vantage": _STR,
        "where": {"enum": ["before_broker", "at_delivery", "in_processing"]},
    }
)
_DELIVERY = _obj(
    {
        "group": _STR,
        "span_id": _STR,
        "trace_id": _STR,
        "start_ns": _INT,
        "duration_ms": _NUM,
        "outcome": _NSTR,
        "attempts": _NINT,
        "retries": _list(_obj({"attempt": _NINT, "delay_ms": _MS, "t_ns": _NINT})),
        "dead_letter_reason": _NSTR,
        "redelivery": _BOOL,
    }
)
_TRACE_SUMMARY = _obj(
    {
        "trace_id": _STR,
        "start_ns": _INT,
        "duration_ms": _NUM,
        "spans": _INT,
        "errors": _INT,
        "services": _list(_STR),
        "root_name": _STR,
    }
)
_PART = _obj({"state": {"enum": ["running", "restarting", "stopped"]}, "restarts": _INT, "last_error": _NSTR})
_LINK = {"connected": _BOOL, "state": {"enum": ["connecting", "connected", "reconnecting"]}, "reconnects": _INT}
_LINK |= {"last_error": _NSTR, "supervisor": _PART}
_TAP = {"patterns": _list(_STR), "received": _INT, "recorded": _INT, "stored_as_malformed": _INT, "unstored": _INT}
_TAP |= {"pending": _INT, "store_error": _NSTR}
_BROKER = {"interval_s": _NUM, "samples": _INT, "last_sample_ns": _NINT}
_CLUSTER_TAP = _obj(
    {"classic_node": _NSTR, "shard_owners": _list(_STR), "shard_channels": _list(_STR)}
    | {"unplaced_shard_channels": _list(_STR)}
)
_TAP |= {"cluster": {"oneOf": [_CLUSTER_TAP, {"type": "null"}]}}  # null unless --redis-cluster
_BROKER |= {"nodes": {"oneOf": [{"type": "object", "additionalProperties": _BOOL}, {"type": "null"}]}}
_HEALTH = _obj(
    {
        "status": {"enum": ["ok", "degraded"]},
        "problems": _list(_STR),
        "store": _obj(
            {"spans": _INT, "bus_messages": _INT, "malformed": _INT}
            | {"engine": {"enum": ["duckdb", "chdb", "clickhouse"]}, "location": _STR}
        ),
        "tap": {"oneOf": [_obj(_LINK | _TAP), {"type": "null"}]},
        "broker": {"oneOf": [_obj(_LINK | _BROKER), {"type": "null"}]},
        "ingest": _obj({"in_flight": _INT, "in_flight_bytes": _INT, "refused": _INT, "write_queue": _INT}),
        "grpc": _obj({"listen": _NSTR, "listening": _BOOL, "error": _NSTR}),
        "retention": _obj({"max_age_s": _MS, "max_spans": _NINT, "last_deleted": {"type": "object"}}),
    }
)

SCHEMAS = {
    "report": _obj(
        {
            "generated_at_ns": _INT,
            "grace_s": _NUM,
            "streams": _list(_STREAM),
            "malformed": _INT,
            "spans": _INT,
            "totals": _obj(
                {k: _INT for k in ("received", "duplicates", "redeliveries", "out_of_order", "missing", "lost")}
            ),
        }
    ),
    "overview": _obj(
        {
            "window": _obj({"since_ns": _NINT, "until_ns": _NINT}),
            "events_per_s": _NUM,
            "bus_messages": _INT,
            "deliveries": _INT,
            "missing": _INT,
            "lost": _INT,
            "duplicates": _INT,
            "duplicates_processed": _INT,
            "redeliveries": _INT,
            "messages": _INT,
            "unenveloped": _INT,
            "out_of_order": _INT,
            "dead_letters": _INT,
            "malformed": _INT,
            "p95_delivery_ms": _MS,
            "spans": _INT,
        }
    ),
    "flow": _obj(
        {
            "nodes": _list(_NODE),
            "edges": _list(_EDGE),
        }
    ),
    "latency": _obj(
        {
            "summary": _list(_obj(_PERCENTILES)),
            "buckets": _list(_obj(_PERCENTILES | {"t_ns": _INT})),
            "negative_delivery": _INT,
            "samples": _list(_obj({"measure": _STR, "key": _NSTR, "ms": _NUM})),
        }
    ),
    "loss": _obj(
        {
            "lost": _list(_LOST),
            "counts": _obj({"before_broker": _INT, "at_delivery": _INT, "in_processing": _INT}),
        }
    ),
    "sequences": _obj(
        {
            "arrivals": _list(
                _obj({"t_ns": _INT, "sequence": _NINT, "event_id": _NSTR, "late": _BOOL, "duplicate": _BOOL})
            ),
            "gaps": _RANGES,
            "lost_gaps": _RANGES,
        }
    ),
    "duplicates": _obj(
        {
            "duplicates": _list(
                _obj(
                    {
                        "vantage": _STR,
                        "channel": _STR,
                        "event_id": _NSTR,
                        "copies": _INT,
                        "handled": _INT,
                        "processed": _INT,
                        "trace_ids": _list(_STR),
                        "redeliveries": _INT,
                    }
                )
            ),
            "by_group": _list(_obj({"vantage": _STR, "handled": _INT, "processed": _INT, "redeliveries": _INT})),
        }
    ),
    "traces": _obj({"traces": _list(_TRACE_SUMMARY)}),
    "trace": _obj(
        {
            "trace_id": _STR,
            "spans": _list(_SPAN),
            "links_out": _list(_obj({"span_id": _STR, "trace_id": _STR, "linked_span_id": _STR})),
            "links_in": _list(
                _obj(
                    {
                        "span_id": _STR,
                        "linked_trace_id": _STR,
                        "linked_span_id": _STR,
                        "service": _NSTR,
                        "name": _NSTR,
                    }
                )
            ),
            "critical_path": _list(_STR),
        }
    ),
    "event": _obj(
        {
            "event_id": _STR,
            "published": _list(_PUBLISHED),
            "bus": _list(_closed(_BUS_ROW)),
            "deliveries": _list(_DELIVERY),
            "verdict": _STR,
        }
    ),
    "dead_letters": _obj(
        {
            "dead_letters": _list(
                _obj(
                    {
                        "event_id": _NSTR,
                        "group": _STR,
                        "channel": _STR,
                        "reason": _NSTR,
                        "attempts": _NINT,
                        "t_ns": _INT,
                        "trace_id": _STR,
                    }
                )
            )
        }
    ),
    "retries": _obj(
        {
            "count": _INT,
            "outcomes": {"type": "object", "additionalProperties": _INT},
            "retried": _list(
                _obj(
                    {
                        "event_id": _NSTR,
                        "group": _STR,
                        "channel": _NSTR,
                        "outcome": _STR,
                        "kind": {"enum": ["retry", "redelivery"]},
                        "attempts": _INT,
                        "failed_attempts": _INT,
                        "retries": _list(_obj({"attempt": _NINT, "delay_ms": _MS, "t_ns": _NINT})),
                        "t_ns": _INT,
                        "trace_id": _STR,
                        "span_id": _STR,
                    }
                )
            ),
        }
    ),
    "clock_skew": _obj(
        {
            "count": _INT,
            "pairs": _list(
                _obj(
                    {"producer_service": _NSTR, "consumer_service": _STR, "count": _INT, "min_ms": _NUM, "p50_ms": _NUM}
                )
            ),
            "deliveries": _list(
                _obj(
                    {
                        "event_id": _NSTR,
                        "group": _STR,
                        "channel": _STR,
                        "producer_service": _NSTR,
                        "consumer_service": _STR,
                        "delivery_ms": _NUM,
                        "trace_id": _STR,
                    }
                )
            ),
        }
    ),
    "slow_consumers": _obj(
        {
            "bucket_s": _INT,
            "min_ms": _NUM,
            "factor": _NUM,
            "min_buckets": _INT,
            "slow": _list(
                _obj(
                    {
                        "group": _STR,
                        "start_ns": _INT,
                        "end_ns": _INT,
                        "buckets": _INT,
                        "deliveries": _INT,
                        "first_p50_ms": _NUM,
                        "peak_p50_ms": _NUM,
                        "peers_p50_ms": _NUM,
                        "max_ms": _NUM,
                        "channels": _list(_STR),
                    }
                )
            ),
        }
    ),
    "broker": _obj({"latest": {"type": ["object", "null"]}, "series": _list({"type": "object"})}),
    "instrumentation": _obj(
        {
            "missing_attributes": _list(
                _obj({"service": _STR, "span_name": _STR, "kind": _STR, "missing": _list(_STR), "count": _INT})
            ),
            "unlinked_consumers": _list(_obj({"service": _STR, "span_name": _STR, "count": _INT})),
            "bus_without_producer": _obj({"count": _INT, "examples": _list(_STR)}),
            "blind_spots": _list(
                _obj(
                    {
                        "kind": {
                            "enum": [
                                "unenveloped",
                                "consumer_without_id",
                                "producer_without_destination",
                                "no_sequence",
                                "first_message_only",
                                "pubsub_as_db_call",
                            ]
                        },
                        "count": _INT,
                        "where": _list(_STR),
                        "cannot_see": _list(_STR),
                        "how": _STR,
                    }
                )
            ),
        }
    ),
    "health": _HEALTH,
    "contracts_observed": _CONTRACTS_OBSERVED,
    "contracts": _CONTRACTS,
    "document": {"type": "object"},
    "messages": _obj({"messages": _list(_MESSAGE)}),
    "malformed": _obj({"count": _INT, "messages": _list(_MESSAGE)}),
    "error": _obj({"error": _STR}),
}

# path -> (summary, response schema name, parameters)
PAYLOADS = _param(
    "payloads",
    _INT,
    "distinct payloads read per channel, type and dataschema, newest first (0 to 100000, default 200), "
    "and the newest of each other shape; 0: none",
)
PATHS = {
    "/api/v1/health": (
        "ok, or degraded with the problems (a part down, reconnecting or failing to store); each part's state",
        "health",
        [],
    ),
    "/api/v1/report": ("Per-stream counts at every vantage point", "report", FILTERS + [GRACE]),
    "/api/v1/overview": ("Headline numbers", "overview", FILTERS + [GRACE]),
    "/api/v1/flow": ("Flow graph: services and channels, publish/deliver/link edges", "flow", FILTERS),
    "/api/v1/latency": (
        "Delivery, processing and end-to-end latency percentiles",
        "latency",
        FILTERS
        + [
            _param("bucket_s", _INT, "time bucket width in seconds (default 10)"),
            _param("by", {"enum": ["channel", "group", "type"]}, "what the key is (default channel)"),
        ],
    ),
    "/api/v1/loss": ("Lost events and where they were lost", "loss", FILTERS + [GRACE]),
    "/api/v1/sequences": (
        "One stream at one vantage point, arrival by arrival",
        "sequences",
        FILTERS
        + [
            _param("source", _STR, "the stream's source (absent: none, as for Kafka partitions)"),
            _param("partitionkey", _STR, "the stream's partition key (absent: none)"),
            _param("vantage", _STR, "bus (default) or a consumer group"),
            _param("limit", _INT, "the last this many arrivals (default 2000)"),
            GRACE,
        ],
    ),
    "/api/v1/duplicates": ("Duplicated events per vantage point", "duplicates", FILTERS),
    "/api/v1/traces": (
        "Trace search, newest first",
        "traces",
        FILTERS
        + [
            _param("error", _BOOL, "only traces with (true) or without (false) an error span"),
            _param("min_ms", _NUM, "only traces at least this long"),
            _param("event_id", _STR, "only traces with a span of this event id"),
            _param("subject", _STR, "only traces with a span of this CloudEvents subject"),
            LIMIT,
        ],
    ),
    "/api/v1/traces/{trace_id}": (
        "One trace with links out and in, and its critical path",
        "trace",
        [_param("trace_id", _STR, "32 hex characters", True, "path")],
    ),
    "/api/v1/events/{event_id}": (
        "The life of one event",
        "event",
        [_param("event_id", _STR, "the event id", True, "path")],
    ),
    "/api/v1/dead-letters": ("Dead-lettered deliveries, newest first", "dead_letters", FILTERS),
    "/api/v1/retries": (
        "Deliveries that took more than one attempt, newest first, and how they ended",
        "retries",
        FILTERS + [LIMIT],
    ),
    "/api/v1/clock-skew": (
        "Deliveries that started before their event was published, per pair of services, most negative first",
        "clock_skew",
        FILTERS + [LIMIT],
    ),
    "/api/v1/slow-consumers": (
        "Consumer groups that fell behind their peers: delivery latency far above theirs, bucket after bucket",
        "slow_consumers",
        FILTERS
        + [
            _param("bucket_s", _INT, "bucket width in seconds, on publish time (1 to 3600, default 1)"),
            _param("min_ms", _NUM, "a group's median delivery latency in a bucket must reach this (default 200)"),
            _param("factor", _NUM, "... and this many times its peers' median (default 4)"),
            _param("min_buckets", _INT, "consecutive buckets behind that make an episode (default 2)"),
        ],
    ),
    "/api/v1/broker": ("Broker stats: latest snapshot and series", "broker", FILTERS[:2]),
    "/api/v1/instrumentation": (
        "Instrumentation health",
        "instrumentation",
        FILTERS
        + [_param("settle_s", _NUM, "bus events younger than this are not yet held against their producer (15)")],
    ),
    "/api/v1/messages": ("Recent bus messages, newest first", "messages", [LIMIT]),
    "/api/v1/malformed": ("Malformed bus messages, newest first", "malformed", [LIMIT]),
    "/api/v1/contracts/observed": (
        "Event types and schema versions as observed: who sent and received each, and payloads to validate",
        "contracts_observed",
        FILTERS[:2] + [PAYLOADS],
    ),
    "/api/v1/contracts": (
        "Contract findings against the schema registry the collectors were started with (docs/contracts.md)",
        "contracts",
        FILTERS[:2] + [PAYLOADS],
    ),
    "/api/v1/openapi.json": ("This document", "document", []),
}


def _operation(summary: str, schema: str, parameters: list[dict]) -> dict:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}}
    return {
        "get": {
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
                },
                "400": {"description": "invalid parameter", **error},
                "401": {"description": "no or wrong bearer token (only when EVENTSCOPE_TOKEN is set)", **error},
                "404": {"description": "not found", **error},
            },
        }
    }


def document() -> dict:
    """The OpenAPI 3.1 document (JSON Schema 2020-12 in the component schemas)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "eventscope query API",
            "version": "1",
            "description": "Read-only answers about an event flow; definitions in docs/analyses.md.",
        },
        "paths": {path: _operation(*spec) for path, spec in PATHS.items()},
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}, {}],  # the token is optional: required only when the collectors have one
    }
