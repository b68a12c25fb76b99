"""The flow graph: services and channels as nodes; publish, deliver and link edges with their figures.

- publish: service -> channel, from publishes (collectors/analyses/roles.py); p95 is the producer span's
  duration, gaps and duplicates are the bus tap's for the streams that service produced;
- deliver: channel -> consuming service, from deliveries; p95 is the delivery latency, gaps
  and duplicates are the consumer group's on that channel;
- link: producer service -> consumer service, for consumer spans paired with their producer
  through a span link (even without a parent relation); gaps and duplicates stay on the deliver
  edges, so they are 0 here.

rate_per_s divides the count by the window: from the later of the filter's start and the first span,
to the filter's end, or else the last span's end. Every channel the bus tap saw a message on is a node,
traced or not; channel nodes carry ``messages`` (every tapped message, any kind: events, unenveloped
and malformed) and their ``rate_per_s`` over the time they were seen.
"""

from __future__ import annotations

from collectors.analyses import report, roles
from collectors.analyses.deliveries import DELIVERIES, PUBLISHES
from collectors.analyses.filters import Filters, bind, window
from collectors.analyses.observations import BUS_VANTAGE
from collectors.storage.reader import Reader

_PUBLISH = f"""
SELECT ServiceName, MsgDestination, count(*), count(*) FILTER (StatusCode = 'Error'),
       quantile_cont(Duration / 1e6, 0.95)
FROM ({PUBLISHES})
WHERE MsgDestination IS NOT NULL
  AND {window("Timestamp")}
  AND ($channel IS NULL OR MsgDestination = $channel) AND ($type IS NULL OR CeType = $type)
  AND ($service IS NULL OR ServiceName = $service) AND CAST($group AS VARCHAR) IS NULL
GROUP BY ALL
"""
# Deliver and link edges in one statement, so the deliveries are paired once per request.
_DELIVER_AND_LINK = f"""
WITH d AS MATERIALIZED (
    SELECT channel, service, "group", producer_service, failed, paired_by, (t - producer_t) / 1e6 AS ms
    FROM ({DELIVERIES})
)
SELECT 'deliver' AS kind, channel, service, "group", count(*), count(*) FILTER (failed),
       quantile_cont(ms, 0.95) FILTER (ms IS NOT NULL)
FROM d GROUP BY channel, service, "group"
UNION ALL
SELECT 'link', producer_service, service, NULL, count(*), count(*) FILTER (failed), quantile_cont(ms, 0.95)
FROM d WHERE paired_by = 'link' GROUP BY producer_service, service
"""
_SPAN_RANGE = "SELECT min(Timestamp), max(Timestamp + Duration) FROM otel_traces"
# Every message the tap saw on a channel, of any kind: a channel is a node even when nothing traces it.
_TAPPED = f"""
SELECT Channel, count(*), min(ArrivalNs), max(ArrivalNs) FROM bus_messages
WHERE {window("ArrivalNs")}
  AND ($channel IS NULL OR Channel = $channel) AND ($type IS NULL OR Type = $type)
  AND CAST($group AS VARCHAR) IS NULL AND CAST($service AS VARCHAR) IS NULL
GROUP BY Channel
"""
_PRODUCER_OF_SOURCE = f"SELECT DISTINCT CeSource, ServiceName FROM otel_traces WHERE {roles.publish()}"


def _window_s(cursor: Reader, filters: Filters) -> float:
    low, high = cursor.execute(_SPAN_RANGE).fetchone()
    # a window that opened before the first span would understate every rate (as on a fresh demo)
    if filters.since_ns is not None:
        low = filters.since_ns if low is None else max(filters.since_ns, low)
    high = filters.until_ns if filters.until_ns is not None else high
    return max(((high or 0) - (low or 0)) / 1e9, 1.0)


def _edge(source: str, target: str, kind: str, count: int, errors: int, p95, window_s: float) -> dict:
    return {
        "source": source,
        "target": target,
        "kind": kind,
        "count": count,
        "rate_per_s": count / window_s,
        "errors": errors,
        "p95_ms": p95,
        "gaps": 0,
        "duplicates": 0,
    }


def _stream_figures(cursor: Reader, filters: Filters) -> tuple[dict, dict]:
    """Missing and duplicates per (producing service, channel) at the bus and per (group, channel)."""
    producers: dict = {}
    for source, service in cursor.execute(_PRODUCER_OF_SOURCE).fetchall():
        producers.setdefault(source, set()).add(service)
    bus: dict = {}
    groups: dict = {}
    for s in report.streams(cursor, filters):
        if s["vantage"] == BUS_VANTAGE:
            for service in producers.get(s["source"], ()):
                figures = bus.setdefault((service, s["channel"]), [0, 0])
                figures[0] += s["missing"]
                figures[1] += s["duplicates"]
        else:
            figures = groups.setdefault((s["vantage"], s["channel"]), [0, 0])
            figures[0] += s["missing"]
            figures[1] += s["duplicates"]
    return bus, groups


def flow(cursor: Reader, filters: Filters) -> dict:
    """Nodes and edges of the event flow within the filters."""
    values = filters.values()
    window_s = _window_s(cursor, filters)
    bus, groups = _stream_figures(cursor, filters)
    edges = []
    for service, channel, count, errors, p95 in cursor.execute(_PUBLISH, bind(_PUBLISH, values)).fetchall():
        edge = _edge(f"service:{service}", f"channel:{channel}", "publish", count, errors, p95, window_s)
        edge["gaps"], edge["duplicates"] = bus.get((service, channel), (0, 0))
        edges.append(edge)
    deliver: dict = {}
    links = []
    for kind, first, service, group, count, errors, p95 in cursor.execute(
        _DELIVER_AND_LINK, bind(_DELIVER_AND_LINK, values)
    ).fetchall():
        if kind == "link":
            links.append(_edge(f"service:{first}", f"service:{service}", "link", count, errors, p95, window_s))
            continue
        edge = _edge(f"channel:{first}", f"service:{service}", "deliver", count, errors, p95, window_s)
        edge["gaps"], edge["duplicates"] = groups.get((group, first), (0, 0))
        _merge(deliver, edge)
    edges += deliver.values()
    edges += links
    return {"nodes": _nodes(edges, _tapped(cursor, filters)), "edges": edges}


def _tapped(cursor: Reader, filters: Filters) -> dict[str, tuple[int, float]]:
    """(messages, messages per second) per tapped channel, over the time its messages were seen (at least 1 s)."""
    rows = cursor.execute(_TAPPED, bind(_TAPPED, filters.values())).fetchall()
    return {channel: (n, n / max((high - low) / 1e9, 1.0)) for channel, n, low, high in rows}


def _merge(edges: dict, edge: dict) -> None:
    """One deliver edge per (channel, service) even when a service consumes as several groups."""
    key = (edge["source"], edge["target"])
    if key not in edges:
        edges[key] = edge
        return
    known = edges[key]
    for field in ("count", "rate_per_s", "errors", "gaps", "duplicates"):
        known[field] += edge[field]
    known["p95_ms"] = max((p for p in (known["p95_ms"], edge["p95_ms"]) if p is not None), default=None)


def _nodes(edges: list[dict], tapped: dict[str, tuple[int, float]]) -> list[dict]:
    ids = sorted({e["source"] for e in edges} | {e["target"] for e in edges} | {f"channel:{c}" for c in tapped})
    nodes = [{"id": i, "kind": i.split(":", 1)[0], "label": i.split(":", 1)[1]} for i in ids]
    for node in nodes:
        if node["kind"] == "channel":
            node["messages"], node["rate_per_s"] = tapped.get(node["label"], (0, 0.0))
    return nodes
