"""Pure transforms from API answers to what the pages show: numbers, tables, layouts. No Streamlit, no I/O."""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict

import pandas as pd

OVERVIEW_NUMBERS = (
    ("Events/s", "events_per_s", "Events per second in the window (every message without an envelope counts as one)."),
    ("Bus messages", "messages", "Every message the Redis tap saw on a tapped channel, of any kind."),
    ("CloudEvents", "bus_messages", "Bus messages that are valid CloudEvents."),
    ("Unenveloped", "unenveloped", "Bus messages that are not CloudEvents: counted, but without an id or a "
     "sequence their duplicates and gaps cannot be seen (Instrumentation health says how to see them)."),
    ("Deliveries", "deliveries", "Event deliveries handled by consumer groups (one per event and group)."),
    ("p95 delivery", "p95_delivery_ms", "95th percentile of publish to process start."),
    ("Malformed", "malformed", "Bus messages that claim to be CloudEvents and are not valid ones."),
    ("Missing", "missing", "Sequence numbers in open gaps: late or lost, at the bus or at a consumer group."),
    ("Lost", "lost", "Missing numbers whose gap has stayed open past the grace window."),
    ("Duplicates", "duplicates", "Copies of an event id seen again at one vantage point (redeliveries excluded)."),
    ("Processed twice", "duplicates_processed", "Duplicates a consumer processed again: the bug."),
    ("Redeliveries", "redeliveries", "Messages handed to a consumer group again after a failed attempt: "
     "not duplicates (the Dead letters page lists them with the retries)."),
    ("Out of order", "out_of_order", "Events that arrived after a later one of their stream."),
    ("Dead letters", "dead_letters", "Deliveries given up after their last attempt."),
)  # fmt: skip
"""The Overview's headline: label, /overview field, help text. The first six are the traffic, the rest trouble."""
TRAFFIC_NUMBERS = 6
WHERE_LOST = {
    "before_broker": "before the broker (the bus never saw it)",
    "at_delivery": "at delivery (the bus saw it, the group never processed it)",
    "in_processing": "in processing (the delivery failed or was dead-lettered)",
}


def clock(ns: int | None) -> str:
    """A UTC wall-clock time with milliseconds, for tables."""
    if ns is None:
        return ""
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC).strftime("%H:%M:%S.%f")[:-3]


def timestamp(ns: int) -> pd.Timestamp:
    """A pandas UTC timestamp for chart axes."""
    return pd.Timestamp(ns, unit="ns", tz="UTC")


def format_ms(ms: float | None) -> str:
    """A duration for people: µs below 1 ms, ms below 10 s, seconds above."""
    if ms is None:
        return "–"
    if abs(ms) < 1:
        return f"{ms * 1000:,.0f} µs"
    if abs(ms) < 10_000:
        return f"{ms:,.1f} ms"
    return f"{ms / 1000:,.1f} s"


def format_count(value: float | int | None) -> str:
    """A count with thousands separators; rates keep one decimal."""
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def overview_numbers(overview: dict) -> list[tuple[str, str, str]]:
    """(label, formatted value, help) for each headline number of /overview."""
    numbers = []
    for label, key, help_text in OVERVIEW_NUMBERS:
        value = overview.get(key)
        numbers.append((label, format_ms(value) if key.endswith("_ms") else format_count(value), help_text))
    return numbers


def streams_frame(report: dict) -> pd.DataFrame:
    """One row per stream and vantage point, gaps written as readable ranges."""
    columns = ["vantage", "channel", "source", "partitionkey", "received", "duplicates", "out_of_order", "missing"]
    extra = [c for c in ("lost",) if any(c in s for s in report["streams"])]
    rows = [{**{c: s.get(c) for c in columns + extra}, "gaps": format_gaps(s["gaps"])} for s in report["streams"]]
    return pd.DataFrame(rows, columns=columns + extra + ["gaps"])


def format_gaps(gaps: list[list[int]], most: int = 5) -> str:
    """Gaps as ``3–4, 9`` with a count of the rest."""
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in gaps[:most])
    return text + (f" (+{len(gaps) - most} more)" if len(gaps) > most else "")


def messages_frame(messages: list[dict]) -> pd.DataFrame:
    """Recent bus messages, newest first, with arrival time as UTC clock time."""
    columns = ["arrived (UTC)", "channel", "type", "source", "partitionkey", "sequence", "event id", "status"]
    rows = [
        {
            "arrived (UTC)": clock(m["arrival_ns"]),
            "channel": m["channel"],
            "type": m["type"],
            "source": m["source"],
            "partitionkey": m["partitionkey"],
            "sequence": m["sequence"],
            "event id": m["event_id"],
            "status": "ok" if m["valid"] else f"malformed: {m['error']}" if m["kind"] == "malformed" else "no envelope",
        }
        for m in messages
    ]
    return pd.DataFrame(rows, columns=columns)


# --- flow graph -------------------------------------------------------------------------------


def node_name(node_id: str) -> tuple[str, str]:
    """``("service", "inventory")`` from ``"service:inventory"``."""
    kind, _, name = node_id.partition(":")
    return kind, name


def flow_layers(flow: dict) -> dict[str, int]:
    """A column per node, left to right along publish and deliver edges (producers first).

    A node's column is one more than the furthest of its upstream neighbours. A cycle (a compensation
    path back to an earlier service) is cut where it closes, so it draws as one edge running back.
    """
    nodes = [n["id"] for n in flow["nodes"]]
    layer = dict.fromkeys(nodes, 0)
    edges = [(e["source"], e["target"]) for e in flow["edges"] if e["kind"] in ("publish", "deliver")]
    forward = _without_back_edges(nodes, [(s, t) for s, t in edges if s in layer and t in layer])
    for _ in range(len(nodes)):
        changed = False
        for source, target in forward:
            if layer[target] < layer[source] + 1:
                layer[target] = layer[source] + 1
                changed = True
        if not changed:
            break
    return layer


def _without_back_edges(nodes: list[str], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The edges less those closing a cycle, found depth first from the nodes nothing points to."""
    downstream: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        downstream[source].append(target)
    targets = {t for _, t in edges}
    starts = [n for n in nodes if n not in targets] + [n for n in nodes if n in targets]
    on_path: set[str] = set()
    done: set[str] = set()
    back: set[tuple[str, str]] = set()
    for start in starts:
        if start in done:
            continue
        stack = [(start, iter(downstream[start]))]
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                back.add((node, child))
            elif child not in done:
                on_path.add(child)
                stack.append((child, iter(downstream[child])))
    return [edge for edge in edges if edge not in back]


def flow_positions(flow: dict) -> dict[str, tuple[float, float]]:
    """(x, y) per node: x is the layer; within a layer, nodes sit near the mean height of their neighbours
    (two barycentre sweeps, left to right then right to left), which keeps edge crossings few."""
    layers = flow_layers(flow)
    by_layer: dict[int, list[str]] = defaultdict(list)
    for node in sorted(layers, key=lambda n: node_name(n)[1]):
        by_layer[layers[node]].append(node)
    neighbours: dict[str, set[str]] = defaultdict(set)
    for e in flow["edges"]:
        if e["kind"] in ("publish", "deliver"):
            neighbours[e["source"]].add(e["target"])
            neighbours[e["target"]].add(e["source"])
    y = {node: _spread(i, len(members)) for members in by_layer.values() for i, node in enumerate(members)}
    order = sorted(by_layer)
    for sweep in (order, order[::-1]):
        for x in sweep:
            members = by_layer[x]

            def centre(node: str, placed: dict = y) -> float:
                near = [placed[n] for n in neighbours[node] if n in placed]
                return sum(near) / len(near) if near else placed[node]

            members.sort(key=lambda n: (-centre(n), node_name(n)[1]))
            y.update({node: _spread(i, len(members)) for i, node in enumerate(members)})
    return {node: (float(layers[node]), y[node]) for node in layers}


def _spread(index: int, count: int) -> float:
    return -(index - (count - 1) / 2)


def edge_badges(edge: dict) -> str:
    """The warning badges of an edge: gaps, duplicates, errors."""
    badges = []
    for key, word in (("gaps", "gap"), ("duplicates", "dup"), ("errors", "err")):
        if edge.get(key):
            badges.append(f"⚠ {edge[key]:,} {word}{'s' if edge[key] != 1 else ''}")
    return " ".join(badges)


def edge_label(edge: dict) -> str:
    """The short text on an edge: rate, p95 and badges."""
    parts = [f"{edge.get('rate_per_s') or 0:,.1f}/s"]
    if edge.get("p95_ms") is not None:
        parts.append(f"p95 {format_ms(edge['p95_ms'])}")
    badges = edge_badges(edge)
    return " · ".join(parts) + (f"<br>{badges}" if badges else "")


def flow_edges_frame(flow: dict) -> pd.DataFrame:
    """The flow's edges as a table, problems first."""
    columns = ["from", "to", "kind", "count", "rate/s", "p95", "gaps", "duplicates", "errors"]
    rows = [
        {
            "from": node_name(e["source"])[1],
            "to": node_name(e["target"])[1],
            "kind": e["kind"],
            "count": e["count"],
            "rate/s": round(e.get("rate_per_s") or 0.0, 2),
            "p95": format_ms(e.get("p95_ms")),
            "gaps": e.get("gaps", 0),
            "duplicates": e.get("duplicates", 0),
            "errors": e.get("errors", 0),
        }
        for e in flow["edges"]
    ]
    frame = pd.DataFrame(rows, columns=columns)
    trouble = frame[["gaps", "duplicates", "errors"]].sum(axis=1) if rows else []
    return frame.assign(_trouble=trouble).sort_values(["_trouble", "count"], ascending=False).drop(columns="_trouble")


def selection_filter(node_id: str) -> tuple[str, str] | None:
    """The filter that clicking a flow node sets: ``("channel", name)`` or ``("service", name)``."""
    kind, name = node_name(node_id)
    if kind in ("service", "channel") and name:
        return kind, name
    return None


# --- latency ----------------------------------------------------------------------------------


def latency_summary_frame(latency: dict) -> pd.DataFrame:
    """p50/p95/p99 per key and measure, durations formatted."""
    columns = ["measure", "key", "count", "p50", "p95", "p99"]
    rows = [
        {
            "measure": s["measure"],
            "key": s["key"],
            "count": s["count"],
            "p50": format_ms(s["p50_ms"]),
            "p95": format_ms(s["p95_ms"]),
            "p99": format_ms(s["p99_ms"]),
        }
        for s in sorted(latency["summary"], key=lambda s: (s["key"] or "", s["measure"]))
    ]
    return pd.DataFrame(rows, columns=columns)


def latency_buckets_frame(latency: dict, measure: str) -> pd.DataFrame:
    """One row per time bucket and key for one measure, with a chart-ready time column."""
    rows = [
        {"time": timestamp(b["t_ns"]), **{k: b[k] for k in ("key", "count", "p50_ms", "p95_ms", "p99_ms")}}
        for b in latency["buckets"]
        if b["measure"] == measure
    ]
    return pd.DataFrame(rows, columns=["time", "key", "count", "p50_ms", "p95_ms", "p99_ms"])


def samples_frame(latency: dict) -> pd.DataFrame:
    """The raw samples (measure, key, ms) for histograms."""
    return pd.DataFrame(latency.get("samples", []), columns=["measure", "key", "ms"])


# --- ordering and loss ------------------------------------------------------------------------


def stream_choices(report: dict) -> list[dict]:
    """Each stream once (channel, source, partitionkey) with the vantage points that saw it, bus first.

    Streams with missing numbers come first, then out-of-order ones, then duplicated ones: a gap is the
    rarest and most serious finding.
    """
    streams: dict[tuple, dict] = {}
    for s in report["streams"]:
        key = (s["channel"], s["source"], s["partitionkey"])
        entry = streams.setdefault(
            key,
            {"channel": s["channel"], "source": s["source"], "partitionkey": s["partitionkey"], "vantages": [],
             "missing": 0, "out_of_order": 0, "duplicates": 0},
        )  # fmt: skip
        entry["vantages"].append(s["vantage"])
        for problem in ("missing", "out_of_order", "duplicates"):
            entry[problem] += s[problem]
    for entry in streams.values():
        entry["vantages"].sort(key=lambda v: (v != "bus", v))
    return sorted(
        streams.values(),
        key=lambda e: (-e["missing"], -e["out_of_order"], -e["duplicates"], e["channel"], e["source"] or "",
                       e["partitionkey"] or ""),
    )  # fmt: skip


def stream_label(stream: dict) -> str:
    """``shop.orders · /sample/orders/3f2a · p1  (2 missing, 1 duplicate)``."""
    parts = [stream["channel"], stream["source"] or "(no source)"]
    if stream.get("partitionkey"):
        parts.append(stream["partitionkey"])
    problems = [
        f"{stream[key]:,} {word}"
        for key, word in (("missing", "missing"), ("out_of_order", "out of order"), ("duplicates", "duplicated"))
        if stream.get(key)
    ]
    return " · ".join(parts) + (f"  ({', '.join(problems)})" if problems else "")


def stream_key(stream: dict) -> dict[str, str]:
    """The /sequences parameters naming a stream."""
    return {
        "channel": stream["channel"],
        "source": stream["source"] or "",
        "partitionkey": stream["partitionkey"] or "",
    }


def arrivals_frame(sequences: dict) -> pd.DataFrame:
    """Arrivals with what each one was: in order, late (out of order) or a duplicate."""
    rows = [
        {
            "time": timestamp(a["t_ns"]),
            "sequence": a["sequence"],
            "event_id": a["event_id"],
            "arrival": "duplicate" if a["duplicate"] else "late" if a["late"] else "in order",
        }
        for a in sequences["arrivals"]
    ]
    return pd.DataFrame(rows, columns=["time", "sequence", "event_id", "arrival"])


def loss_frame(loss: dict) -> pd.DataFrame:
    """Lost events with where they were lost, in words."""
    columns = ["where", "vantage", "channel", "source", "partitionkey", "sequence", "event_id"]
    rows = [
        {**{c: item.get(c) for c in columns}, "where": WHERE_LOST.get(item["where"], item["where"])}
        for item in loss["lost"]
    ]
    return pd.DataFrame(rows, columns=columns)


# --- duplicates -------------------------------------------------------------------------------


REDELIVERED = "redelivered (not a duplicate)"


def tapped_channels_frame(flow: dict) -> pd.DataFrame:
    """Channels the bus tap saw messages on (any kind), busiest first."""
    rows = [
        {"channel": n["label"], "messages": n["messages"], "messages/s": n.get("rate_per_s") or 0.0}
        for n in flow.get("nodes", [])
        if n.get("kind") == "channel" and n.get("messages")
    ]
    frame = pd.DataFrame(rows, columns=["channel", "messages", "messages/s"])
    return frame.sort_values("messages", ascending=False, kind="stable") if rows else frame


def blind_spots_frame(health: dict) -> pd.DataFrame:
    """What the telemetry cannot show, where, and how to see it (Instrumentation health)."""
    columns = ["what", "count", "cannot see", "how to see it", "where"]
    titles = {
        "unenveloped": "messages without an envelope (no id, no sequence)",
        "consumer_without_id": "consumer spans without a message id",
        "producer_without_destination": "producer spans without a destination",
        "no_sequence": "deliveries of messages without a sequence",
    }
    rows = [
        {"what": titles.get(b["kind"], b["kind"]), "count": b["count"], "cannot see": ", ".join(b["cannot_see"]),
         "how to see it": b["how"], "where": ", ".join(b["where"])}
        for b in health.get("blind_spots") or []
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def duplicates_frame(duplicates: dict) -> pd.DataFrame:
    """Each event seen more than once at a vantage point, the bug (processed twice) first.

    Copies handed over again after a failed attempt are redeliveries, not duplicates, and say so.
    """
    columns = ["vantage", "channel", "event_id", "copies", "handled", "processed", "redeliveries", "verdict",
               "trace_ids"]  # fmt: skip
    rows = []
    for d in duplicates["duplicates"]:
        processed = d.get("processed") or 0
        redeliveries = d.get("redeliveries") or 0
        if d["vantage"] == "bus":
            verdict = "published twice"
        elif processed > 1:
            verdict = "processed twice (bug)"
        elif redeliveries and (d.get("copies") or 0) - 1 <= redeliveries:
            verdict = "redelivered after a failed attempt (not a duplicate)"
        else:
            verdict = "handled by the idempotency guard"
        rows.append({**{c: d.get(c) for c in columns if c != "verdict"}, "verdict": verdict})
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["processed", "copies"], ascending=False, kind="stable") if rows else frame


def by_group_frame(duplicates: dict) -> pd.DataFrame:
    """Handled vs processed duplicates per vantage point, long format for a grouped bar chart."""
    rows = []
    for g in duplicates["by_group"]:
        rows.append({"vantage": g["vantage"], "kind": "handled (guard skipped it)", "count": g["handled"]})
        rows.append({"vantage": g["vantage"], "kind": "processed twice (bug)", "count": g["processed"]})
        if g.get("redeliveries"):
            rows.append({"vantage": g["vantage"], "kind": REDELIVERED, "count": g["redeliveries"]})
    return pd.DataFrame(rows, columns=["vantage", "kind", "count"])


# --- traces -----------------------------------------------------------------------------------


def traces_frame(traces: dict) -> pd.DataFrame:
    """Search results: one row per trace."""
    columns = ["start (UTC)", "root", "duration", "spans", "errors", "services", "trace_id"]
    rows = [
        {
            "start (UTC)": clock(t["start_ns"]),
            "root": t.get("root_name"),
            "duration": format_ms(t["duration_ms"]),
            "spans": t["spans"],
            "errors": t["errors"],
            "services": ", ".join(t.get("services", [])),
            "trace_id": t["trace_id"],
        }
        for t in traces["traces"]
    ]
    return pd.DataFrame(rows, columns=columns)


def _span_order(spans: list[dict]) -> list[tuple[dict, int]]:
    """Spans depth first under their parents (children by start), with their depth; orphans are roots."""
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[dict]] = defaultdict(list)
    roots = []
    for span in sorted(spans, key=lambda s: (s["start_ns"], s["span_id"])):
        parent = span["parent_span_id"]
        (children[parent] if parent in ids and parent != span["span_id"] else roots).append(span)
    ordered: list[tuple[dict, int]] = []
    seen: set[str] = set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span["span_id"] in seen:
            continue
        seen.add(span["span_id"])
        ordered.append((span, depth))
        stack.extend((child, depth + 1) for child in reversed(children[span["span_id"]]))
    return ordered


def waterfall_frame(trace: dict) -> pd.DataFrame:
    """One row per span for the waterfall: offset and duration in ms, depth, errors, links, critical path."""
    spans = trace["spans"]
    columns = [
        "span_id", "label", "service", "name", "kind", "start_ms", "duration_ms", "depth",
        "error", "critical", "links_out", "links_in", "outcome",
    ]  # fmt: skip
    if not spans:
        return pd.DataFrame(columns=columns)
    start = min(s["start_ns"] for s in spans)
    critical = set(trace.get("critical_path", []))
    links_in = Counter(link["linked_span_id"] for link in trace.get("links_in", []))
    rows = []
    for span, depth in _span_order(spans):
        attrs = span["attributes"]
        rows.append(
            {
                "span_id": span["span_id"],
                "label": f"{'· ' * depth}{span['service']}: {span['name']}",
                "service": span["service"],
                "name": span["name"],
                "kind": span["kind"],
                "start_ms": (span["start_ns"] - start) / 1e6,
                "duration_ms": span["duration_ns"] / 1e6,
                "depth": depth,
                "error": span["status"] == "Error",
                "critical": span["span_id"] in critical,
                "links_out": len(span["links"]),
                "links_in": links_in.get(span["span_id"], 0),
                "outcome": attrs.get("eventscope.outcome", ""),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def links_out_frame(trace: dict) -> pd.DataFrame:
    """Links from this trace's spans to other spans (consumer → its producer)."""
    names = {s["span_id"]: f"{s['service']}: {s['name']}" for s in trace["spans"]}
    rows = [
        {
            "from span": names.get(link["span_id"], link["span_id"]),
            "linked trace": link["trace_id"],
            "linked span": link["linked_span_id"],
            "same trace": link["trace_id"] == trace["trace_id"],
        }
        for link in trace["links_out"]
    ]
    return pd.DataFrame(rows, columns=["from span", "linked trace", "linked span", "same trace"])


def links_in_frame(trace: dict) -> pd.DataFrame:
    """Spans elsewhere that link to this trace (producer → its consumers)."""
    names = {s["span_id"]: f"{s['service']}: {s['name']}" for s in trace["spans"]}
    rows = [
        {
            "to span": names.get(link["linked_span_id"], link["linked_span_id"]),
            "from": f"{link.get('service', '')}: {link.get('name', '')}",
            "linking trace": link["linked_trace_id"],
            "linking span": link["span_id"],
        }
        for link in trace.get("links_in", [])
    ]
    return pd.DataFrame(rows, columns=["to span", "from", "linking trace", "linking span"])


def linked_traces(trace: dict) -> list[str]:
    """Other traces this one links to or is linked from, in first-seen order."""
    found = [link["trace_id"] for link in trace["links_out"]]
    found += [link["linked_trace_id"] for link in trace.get("links_in", [])]
    return [t for t in dict.fromkeys(found) if t != trace["trace_id"]]


# --- one event --------------------------------------------------------------------------------


def deliveries_frame(event: dict) -> pd.DataFrame:
    """Every delivery of one event: group, outcome, attempts, duration."""
    rows = [
        {
            "group": d["group"],
            "outcome": d.get("outcome") or "",
            "attempts": d.get("attempts"),
            "started (UTC)": clock(d.get("start_ns")),
            "duration": format_ms(d.get("duration_ms")),
            "retries": len(d.get("retries") or []),
            "redelivery": "redelivered after a failed attempt" if d.get("redelivery") else "",
            "dead letter reason": d.get("dead_letter_reason") or "",
            "trace_id": d.get("trace_id"),
        }
        for d in event["deliveries"]
    ]
    columns = ["group", "outcome", "attempts", "started (UTC)", "duration", "retries", "redelivery",
               "dead letter reason", "trace_id"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def retries_frame(event: dict) -> pd.DataFrame:
    """Each retry of each delivery, in time order."""
    rows = [
        {
            "group": d["group"],
            "attempt": r["attempt"],
            "at (UTC)": clock(r.get("t_ns")),
            "backoff": format_ms(r.get("delay_ms")),
        }
        for d in event["deliveries"]
        for r in d.get("retries") or []
    ]
    return pd.DataFrame(rows, columns=["group", "attempt", "at (UTC)", "backoff"])


def event_timeline(event: dict) -> list[tuple[int, str]]:
    """(time ns, what happened) for one event's publish, bus arrival and deliveries, in time order."""
    steps = [(span["start_ns"], f"published by {span['service']}") for span in event["published"]]
    steps += [(message["arrival_ns"], f"seen on the bus ({message['channel']})") for message in event["bus"]]
    steps += [
        (d["start_ns"], f"{d['group']}: {d['outcome'] or 'delivered'} after {d['attempts'] or 1} attempt(s)")
        for d in event["deliveries"]
    ]
    return sorted(((ns, text) for ns, text in steps if ns is not None), key=lambda step: step[0])


# --- dead letters, broker, instrumentation ----------------------------------------------------


def dead_letters_frame(dead: dict) -> pd.DataFrame:
    """The dead-letter queue, newest first."""
    columns = ["at (UTC)", "group", "channel", "reason", "attempts", "event_id", "trace_id"]
    items = sorted(dead["dead_letters"], key=lambda d: d.get("t_ns") or 0, reverse=True)
    rows = [{**{c: d.get(c) for c in columns[1:]}, "at (UTC)": clock(d.get("t_ns"))} for d in items]
    return pd.DataFrame(rows, columns=columns)


def retried_frame(answer: dict) -> pd.DataFrame:
    """Retried deliveries, newest first, with the backoff slept before each next attempt."""
    columns = ["at (UTC)", "kind", "group", "channel", "outcome", "attempts", "failed attempts", "backoff",
               "event_id", "trace_id"]  # fmt: skip
    rows = []
    for d in sorted(answer["retried"], key=lambda d: d.get("t_ns") or 0, reverse=True):
        delays = [r.get("delay_ms") for r in d.get("retries", []) if r.get("delay_ms")]
        rows.append(
            {
                "at (UTC)": clock(d.get("t_ns")),
                "kind": "redelivery" if d.get("kind") == "redelivery" else "retry in one delivery",
                "group": d.get("group"),
                "channel": d.get("channel"),
                "outcome": d.get("outcome"),
                "attempts": d.get("attempts"),
                "failed attempts": d.get("failed_attempts"),
                "backoff": " → ".join(format_ms(ms) for ms in delays),
                "event_id": d.get("event_id"),
                "trace_id": d.get("trace_id"),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def clock_skew_frame(answer: dict) -> pd.DataFrame:
    """Per pair of services, the deliveries that started before their publication, most negative first."""
    columns = ["producer service", "consumer service", "deliveries", "most negative", "median"]
    rows = [
        {
            "producer service": p.get("producer_service") or "?",
            "consumer service": p.get("consumer_service"),
            "deliveries": p.get("count"),
            "most negative": format_ms(p.get("min_ms")),
            "median": format_ms(p.get("p50_ms")),
        }
        for p in answer["pairs"]
    ]
    return pd.DataFrame(rows, columns=columns)


def slow_consumers_frame(answer: dict) -> pd.DataFrame:
    """The slow-consumer episodes, newest first: which group, when (publish time), how far behind its peers."""
    columns = ["group", "from", "to", "deliveries", "median at first", "worst median", "peers' median", "slowest"]
    rows = [
        {
            "group": e["group"],
            "from": clock(e["start_ns"]),
            "to": clock(e["end_ns"]),
            "deliveries": e["deliveries"],
            "median at first": format_ms(e["first_p50_ms"]),
            "worst median": format_ms(e["peak_p50_ms"]),
            "peers' median": format_ms(e["peers_p50_ms"]),
            "slowest": format_ms(e["max_ms"]),
        }
        for e in reversed(answer.get("slow", []))
    ]
    return pd.DataFrame(rows, columns=columns)


def broker_channels_frame(broker: dict) -> pd.DataFrame:
    """Subscribers per channel from the latest broker sample."""
    latest = broker.get("latest") or {}
    return pd.DataFrame(latest.get("channels", []), columns=["channel", "subscribers"])


def broker_clients_frame(broker: dict) -> pd.DataFrame:
    """Subscriber connections with their output buffer against its limit, the fullest first."""
    latest = broker.get("latest") or {}
    rows = [
        {
            "name": f"{c.get('name') or 'unnamed'} ({c.get('addr')})",
            "addr": c.get("addr"),
            "channels": c.get("sub"),
            "patterns": c.get("psub"),
            "output buffer (bytes)": c.get("omem"),
            "limit (bytes)": c.get("limit_bytes"),
            "of limit": c.get("fraction"),
        }
        for c in latest.get("clients", [])
    ]
    columns = ["name", "addr", "channels", "patterns", "output buffer (bytes)", "limit (bytes)", "of limit"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("output buffer (bytes)", ascending=False) if rows else frame


def broker_series_frame(broker: dict) -> pd.DataFrame:
    """Broker samples over time."""
    rows = [
        {"time": timestamp(s["t_ns"]), **{k: s[k] for k in ("messages_per_s", "clients", "omem_max")}}
        for s in broker.get("series", [])
    ]
    return pd.DataFrame(rows, columns=["time", "messages_per_s", "clients", "omem_max"])


def missing_attributes_frame(health: dict) -> pd.DataFrame:
    """Spans missing attributes the analyses need."""
    rows = [{**m, "missing": ", ".join(m["missing"])} for m in health.get("missing_attributes", [])]
    return pd.DataFrame(rows, columns=["service", "span_name", "kind", "missing", "count"])


def unlinked_frame(health: dict) -> pd.DataFrame:
    """Consumer spans without a link to their producer."""
    return pd.DataFrame(health.get("unlinked_consumers", []), columns=["service", "span_name", "count"])


REFUSALS = {
    "unauthorized": (
        "no or a wrong bearer token (401)",
        "Give the sender the collectors' token: OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token>.",
    ),
    "not_found": (
        "no such endpoint (404)",
        "Point the exporter at the collectors' base URL (OTEL_EXPORTER_OTLP_ENDPOINT=http://host:4318); "
        "traces go to /v1/traces, logs to /v1/logs, metrics to /v1/metrics.",
    ),
    "method_not_allowed": ("another method than POST for OTLP or GET for the API (405)", "Export with POST."),
    "bad_http": (
        "not valid HTTP/1.1, e.g. two different Content-Length headers (400)",
        "Fix the sender, or the proxy between it and the collectors.",
    ),
    "undecodable": (
        "not a valid OTLP request: protobuf, JSON or gzip (400)",
        "Send OTLP protobuf (application/x-protobuf) or OTLP JSON (application/json), plain or gzip.",
    ),
    "body_too_large": (
        "the body, or its decompressed form, exceeds the body limit (413)",
        "Export smaller batches (OTEL_BSP_MAX_EXPORT_BATCH_SIZE) or raise EVENTSCOPE_MAX_BODY_BYTES.",
    ),
    "unsupported_media": (
        "another content type or content encoding (415)",
        "Use Content-Type application/x-protobuf or application/json, and gzip or no Content-Encoding.",
    ),
    "timeout": (
        "the body did not arrive whole within the request deadline (408)",
        "Check the network between sender and collectors, or raise EVENTSCOPE_REQUEST_DEADLINE_S.",
    ),
    "incomplete_body": (
        "the sender left before sending the whole body",
        "The sender gave up mid-request: its export timeout (OTEL_EXPORTER_OTLP_TIMEOUT) may be too short.",
    ),
    "too_many_in_flight": (
        "more exports in flight than the limits allow (429)",
        "The sender retries after Retry-After; send fewer, larger batches or raise EVENTSCOPE_MAX_IN_FLIGHT.",
    ),
    "store_unavailable": (
        "the write queue is full, or the commit failed or took too long (503)",
        "The sender retries after Retry-After; the collectors' log says why the store is behind.",
    ),
}
"""What each refusal reason of /health means (docs/ingest.md, *Refused requests are never silent*) and what to do."""


def refusals_frame(health: dict) -> pd.DataFrame:
    """OTLP requests the collectors refused, per reason, the most frequent first, with what to do about each."""
    counts = (health.get("ingest") or {}).get("refused_by_reason") or {}
    rows = [
        {
            "reason": reason,
            "requests": count,
            "meaning": REFUSALS.get(reason, ("", ""))[0],
            "what to do": REFUSALS.get(reason, ("", "See docs/ingest.md and the collectors' log."))[1],
        }
        for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if count
    ]
    return pd.DataFrame(rows, columns=["reason", "requests", "meaning", "what to do"])
