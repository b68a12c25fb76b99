"""Scoring a scenario: its ground truth (what was injected) against what the detectors found.

Each fault kind is counted in the unit it was injected in: an event (a publish twice, a reorder, a
poison message, a skewed clock), an (event, group) pair (a crash, a double subscription, a dead
letter), a failed attempt, a sequence number that never reached the broker, or a group's slow window.
A detector may see one injected fault at several vantage points (a late event at the bus and at
both groups of its channel): that is one fault found, and the vantage points are listed beside it.
Extra is only a finding that no injection explains (one of another kind may: a group retrying with
backoff falls behind, which is the retries' doing, not a slow consumer's); each is listed with its event.

``gather`` asks the query API; everything else is plain data in, plain data out.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

BUS = "bus"
SEQUENCE_LIMIT = 100_000
"""Arrivals asked per stream and vantage point when looking for late events."""
EVENT_PAGE = "event"
"""The Event page's URL path; it takes the event id as ``?id=``."""


@dataclass(frozen=True)
class Detector:
    """One fault kind's detector: which API answer it reads and where its findings show."""

    kind: str
    reads: str
    where: str


DETECTORS = (
    Detector("duplicate_publish", "duplicates", "Duplicates: the same event id twice at the bus (and the groups)"),
    Detector("double_subscription", "duplicates", "Duplicates: copies at a group of an event the bus saw once"),
    Detector("reorder", "late", "Ordering and loss: late arrivals (out of order)"),
    Detector("drop_before_broker", "loss", "Ordering and loss: lost before the broker"),
    Detector("consumer_crash", "loss", "Ordering and loss: lost at delivery"),
    Detector("slow_consumer", "slow_consumers", "Latency and Broker: a group falling behind its peers"),
    Detector("poison_message", "dead_letters", "Dead letters: dead-lettered at the first attempt"),
    Detector("transient_error", "retries", "Dead letters: failed attempts of retried deliveries"),
    Detector("dead_letter", "dead_letters", "Dead letters"),
    Detector("clock_skew", "clock_skew", "Latency: negative delivery times (which clocks disagree)"),
)
"""Every detector, in the order of the table; each has a row in every scenario."""

COLUMNS = ["fault", "injected", "found", "missed", "extra", "found at", "where to look"]
EXTRA_COLUMNS = ["fault", "vantage", "what", "event"]


@dataclass(frozen=True)
class Finding:
    """One thing a detector reported: the unit it counts in, where it was seen, and its event."""

    unit: tuple
    vantage: str
    event_id: str | None = None


# --- the ground truth, in units ---------------------------------------------------------------------


def _truth_unit(record: dict) -> tuple:
    kind, event_id, group = record["fault"], record.get("event_id"), record.get("group")
    if kind == "drop_before_broker":
        return (record.get("channel"), record.get("source"), record.get("partitionkey"), record.get("sequence"))
    if kind in ("double_subscription", "consumer_crash", "dead_letter"):
        return (event_id, group)
    if kind == "transient_error":
        return (event_id, group, (record.get("detail") or {}).get("attempt"))
    if kind == "slow_consumer":
        return (group, *_slow_window(record))
    return (event_id,)


def _slow_window(record: dict) -> tuple[int, float]:
    """The slow window of a truth record: from its first slow delivery for ``for_s`` (open-ended without)."""
    start = int(record.get("time_ns") or 0)
    for_s = (record.get("detail") or {}).get("for_s")
    return start, start + float(for_s) * 1e9 if for_s is not None else float("inf")


def injected(records: Iterable[dict]) -> dict[str, set[tuple]]:
    """The injected units per fault kind (every detector's kind present, empty when none)."""
    units: dict[str, set[tuple]] = {d.kind: set() for d in DETECTORS}
    for record in records:
        units.setdefault(record["fault"], set()).add(_truth_unit(record))
    return units


# --- the findings, in the same units ----------------------------------------------------------------


def _duplicate_findings(answer: dict) -> dict[str, list[Finding]]:
    dups = answer.get("duplicates", [])
    published_twice = {d["event_id"] for d in dups if d["vantage"] == BUS}
    return {
        "duplicate_publish": [
            Finding((d["event_id"],), d["vantage"], d["event_id"]) for d in dups if d["event_id"] in published_twice
        ],
        # a copy at a group of an event the bus saw once was delivered twice, not published twice
        "double_subscription": [
            Finding((d["event_id"], d["vantage"]), d["vantage"], d["event_id"])
            for d in dups
            if d["event_id"] not in published_twice
        ],
    }


def _loss_findings(answer: dict) -> dict[str, list[Finding]]:
    lost = answer.get("lost", [])
    return {
        "drop_before_broker": [
            Finding((x["channel"], x["source"], x["partitionkey"], x["sequence"]), x["vantage"], x["event_id"])
            for x in lost
            if x["where"] == "before_broker"
        ],
        "consumer_crash": [
            Finding((x["event_id"], x["vantage"]), x["vantage"], x["event_id"])
            for x in lost
            if x["where"] == "at_delivery"
        ],
    }


def _dead_letter_findings(answer: dict) -> dict[str, list[Finding]]:
    dead = answer.get("dead_letters", [])
    return {
        "dead_letter": [Finding((d["event_id"], d["group"]), d["group"], d["event_id"]) for d in dead],
        # a message that breaks its schema is never retried: dead-lettered at its first attempt
        "poison_message": [
            Finding((d["event_id"],), d["group"], d["event_id"]) for d in dead if (d.get("attempts") or 1) <= 1
        ],
    }


def _retry_findings(answer: dict) -> dict[str, list[Finding]]:
    return {
        "transient_error": [
            Finding((d["event_id"], d["group"], n), d["group"], d["event_id"])
            for d in answer.get("retried", [])
            for n in range(1, (d.get("failed_attempts") or 0) + 1)
        ]
    }


def _skew_findings(answer: dict) -> dict[str, list[Finding]]:
    return {"clock_skew": [Finding((d["event_id"],), d["group"], d["event_id"]) for d in answer.get("deliveries", [])]}


def _late_findings(answer: dict) -> dict[str, list[Finding]]:
    return {"reorder": [Finding((a["event_id"],), a["vantage"], a["event_id"]) for a in answer.get("arrivals", [])]}


def _slow_findings(answer: dict) -> dict[str, list[Finding]]:
    return {
        "slow_consumer": [Finding((e["group"], e["start_ns"], e["end_ns"]), e["group"]) for e in answer.get("slow", [])]
    }


_READERS: dict[str, Callable[[dict], dict[str, list[Finding]]]] = {
    "duplicates": _duplicate_findings,
    "loss": _loss_findings,
    "dead_letters": _dead_letter_findings,
    "retries": _retry_findings,
    "clock_skew": _skew_findings,
    "late": _late_findings,
    "slow_consumers": _slow_findings,
}


def detected(findings: Mapping[str, dict | None]) -> dict[str, list[Finding] | None]:
    """Per fault kind, what its detector reported; None when its API answer is missing (not measured)."""
    found: dict[str, list[Finding] | None] = {}
    for source, read in _READERS.items():
        answer = findings.get(source)
        for kind, items in read(answer or {}).items():
            found[kind] = items if answer is not None else None
    return found


# --- matching and the table -------------------------------------------------------------------------


def _explains(kind: str, unit: tuple, truth: set[tuple]) -> tuple | None:
    """The injected unit that explains a finding's unit, or None."""
    if kind != "slow_consumer":
        return unit if unit in truth else None
    group, start, end = unit
    return next((t for t in sorted(truth) if t[0] == group and start < t[2] and t[1] < end), None)


RETRY_SLACK_NS = 5_000_000_000
"""A slow episode's events are handled after it; retries up to this long after it still explain it."""


def _by_other_injection(kind: str, finding: Finding, records: list[dict]) -> bool:
    """Whether an injection of another kind explains a finding (so it is not extra, nor counted as found).

    A group retrying with backoff (``transient_error``) falls behind its peers: a slow episode there,
    while it retried, is the retries' doing. A subscriber that Redis cut off for an outgrown output
    buffer (``slow_consumer`` with ``buffer_limit_kb``) loses what the buffer held: losses at delivery
    to that group are the slow consumer's doing (the ground truth cannot itemize them).
    """
    if kind == "slow_consumer":
        group, start, end = finding.unit
        return any(
            r["fault"] == "transient_error"
            and r.get("group") == group
            and start <= (r.get("time_ns") or 0) <= end + RETRY_SLACK_NS
            for r in records
        )
    if kind == "consumer_crash":
        return any(
            r["fault"] == "slow_consumer" and r.get("group") == finding.vantage
            and (r.get("detail") or {}).get("buffer_limit_kb")
            for r in records
        )  # fmt: skip
    return False


def _vantages(counts: Counter) -> str:
    ordered = sorted(counts, key=lambda v: (v != BUS, v))
    return ", ".join(f"{v} {counts[v]}" for v in ordered)


def _row(detector: Detector, truth: set[tuple], findings: list[Finding] | None, records: list[dict]) -> dict:
    row = {"fault": detector.kind, "injected": len(truth), "where to look": detector.where}
    if findings is None:
        return {**row, "found": None, "missed": None, "extra": None, "found at": "not measured (no answer)"}
    hits: dict[tuple, set[str]] = defaultdict(set)
    extra: set[tuple] = set()
    for finding in findings:
        explained = _explains(detector.kind, finding.unit, truth)
        if explained is not None:
            hits[explained].add(finding.vantage)
        elif not _by_other_injection(detector.kind, finding, records):
            extra.add(finding.unit)
    at = Counter(v for vantages in hits.values() for v in vantages)
    return {**row, "found": len(hits), "missed": len(truth) - len(hits), "extra": len(extra), "found at": _vantages(at)}


def table(records: list[dict], findings: Mapping[str, dict | None]) -> pd.DataFrame:
    """One row per detector: injected, found (at any vantage point), missed, extra, and where it was found."""
    truth, found = injected(records), detected(findings)
    rows = [_row(d, truth.get(d.kind, set()), found.get(d.kind), records) for d in DETECTORS]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("injected", "found", "missed", "extra"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _what(kind: str, finding: Finding) -> str:
    if kind == "slow_consumer":
        group, start, end = finding.unit
        return f"{group} behind its peers for {(end - start) / 1e9:g} s of publications"
    if kind == "drop_before_broker":
        channel, source, pk, sequence = finding.unit
        return f"{channel} {source or ''} {pk or ''} sequence {sequence}".replace("  ", " ")
    if kind == "transient_error":
        return f"failed attempt {finding.unit[2]}"
    return finding.event_id or ""


def event_link(event_id: str | None) -> str | None:
    """The Event page's URL for one event (relative to the dashboard), or None without an id."""
    return f"{EVENT_PAGE}?{urllib.parse.urlencode({'id': event_id})}" if event_id else None


def extras(records: list[dict], findings: Mapping[str, dict | None]) -> pd.DataFrame:
    """Every finding that no injection of its kind explains, with a link to its event where it has one."""
    truth, found = injected(records), detected(findings)
    rows = []
    for d in DETECTORS:
        for finding in found.get(d.kind) or []:
            explained = _explains(d.kind, finding.unit, truth.get(d.kind, set())) is not None
            if not explained and not _by_other_injection(d.kind, finding, records):
                rows.append([d.kind, finding.vantage, _what(d.kind, finding), event_link(finding.event_id)])
    return pd.DataFrame(rows, columns=EXTRA_COLUMNS).drop_duplicates(ignore_index=True)


# --- asking the API -----------------------------------------------------------------------------------

Get = Callable[[str, Mapping[str, object]], dict]
"""Reads one query API path (``loss``, ``slow-consumers``, ...) with parameters, or raises."""

_PATHS = {
    "duplicates": ("duplicates", {}),
    "loss": ("loss", {}),
    "dead_letters": ("dead-letters", {}),
    "retries": ("retries", {"limit": 1000}),
    "clock_skew": ("clock-skew", {"limit": 1000}),
    "slow_consumers": ("slow-consumers", {}),
}


def late_arrivals(get: Get, params: Mapping[str, object]) -> dict:
    """Every late arrival (out of order) in the streams that have any, at every vantage point."""
    arrivals = []
    for stream in get("report", params).get("streams", []):
        if not stream.get("out_of_order"):
            continue
        query = {"channel": stream["channel"], "vantage": stream["vantage"], "limit": SEQUENCE_LIMIT}
        query |= {k: stream[k] for k in ("source", "partitionkey") if stream.get(k) is not None}
        answer = get("sequences", {**params, **query})
        arrivals += [{**a, "vantage": stream["vantage"]} for a in answer.get("arrivals", []) if a.get("late")]
    return {"arrivals": arrivals}


def gather(get: Get, since_ns: int, unavailable: tuple[type[Exception], ...], grace_s: float | None = None) -> dict:
    """Every detector's API answer since ``since_ns``; an answer that fails with ``unavailable`` is None."""
    params: dict[str, object] = {"since_ns": since_ns}
    if grace_s is not None:
        params["grace_s"] = grace_s
    fetches: dict[str, Callable[[], dict]] = {
        key: (lambda path=path, extra=extra: get(path, {**params, **extra})) for key, (path, extra) in _PATHS.items()
    }
    fetches["late"] = lambda: late_arrivals(get, params)
    found: dict[str, dict | None] = {}
    for key, fetch in fetches.items():
        try:
            found[key] = fetch()
        except unavailable:
            found[key] = None
    return found
