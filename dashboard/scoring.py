"""Scoring a scenario: its ground truth (what was injected) against what eventscope found.

eventscope's findings (``FINDINGS``: published twice, lost at delivery, fell behind, ...) are named here;
the shop's fault kinds are not. The shop's ``faults --json`` listing says, per kind, which finding shows
it and in which unit both are counted (``sightings``): an event (a publish twice, a reorder, a poison
message, a skewed clock), a delivery (an event at one group: a crash, a double subscription, a dead
letter), a failed attempt, a sequence number that never reached the broker, or a group's slow window.
A finding may show one injected fault at several vantage points (a late event at the bus and at both
groups of its channel): that is one fault found, and the vantage points are listed beside it. Extra is
only a finding that no injection explains (one of another kind may: the listing's ``also_seen_as``, e.g.
a group retrying with backoff falls behind, which is the retries' doing); each is listed with its event.

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
    """One of eventscope's findings: which API answer shows it and where on the dashboard to look."""

    finding: str
    reads: str
    where: str


FINDINGS = (
    Detector("published_twice", "duplicates", "Duplicates: the same event id twice at the bus (and the groups)"),
    Detector("delivered_twice", "duplicates", "Duplicates: copies at a group of an event the bus saw once"),
    Detector("late", "late", "Ordering and loss: late arrivals (out of order)"),
    Detector("lost_before_broker", "loss", "Ordering and loss: lost before the broker"),
    Detector("lost_at_delivery", "loss", "Ordering and loss: lost at delivery"),
    Detector("fell_behind", "slow_consumers", "Latency and Broker: a group falling behind its peers"),
    Detector("dead_lettered_at_first_attempt", "dead_letters", "Dead letters: dead-lettered at the first attempt"),
    Detector("failed_attempt", "retries", "Dead letters: failed attempts of retried deliveries"),
    Detector("dead_lettered", "dead_letters", "Dead letters"),
    Detector("negative_delivery_time", "clock_skew", "Latency: negative delivery times (which clocks disagree)"),
)
"""Every finding, in the order of the table's rows."""
BY_FINDING = {d.finding: d for d in FINDINGS}
UNITS = ("event", "delivery", "attempt", "sequence", "window")
"""The units a fault kind can be counted in (sample_system/truth.py ``Unit`` says which record fields)."""

COLUMNS = ["fault", "seen as", "injected", "found", "missed", "extra", "found at", "where to look"]
EXTRA_COLUMNS = ["fault", "vantage", "what", "event"]
NOT_SCORED = "not scored (the shop's faults listing does not say how it shows)"


@dataclass(frozen=True)
class Sighting:
    """One fault kind of the shop: the finding that shows it, the unit, and findings it also causes."""

    fault: str
    seen_as: str
    unit: str
    also: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class Sightings:
    """The shop's fault kinds as read from its listing, and what in the listing could not be used."""

    kinds: tuple[Sighting, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One thing eventscope reported: the facts its units are made of, where it was seen, and its event."""

    vantage: str
    event_id: str | None = None
    stream: tuple = ()
    attempt: int | None = None
    window: tuple = ()


# --- the shop's listing -----------------------------------------------------------------------------


def _known(value: object, names: Iterable[str]) -> bool:
    return isinstance(value, str) and value in names


def _also(entry: dict) -> tuple[tuple[str, str | None], ...] | None:
    also = entry.get("also_seen_as") or []
    if not isinstance(also, list) or not all(isinstance(a, dict) for a in also):
        return None
    pairs = tuple((a.get("finding"), a.get("when")) for a in also)
    valid = all(_known(f, BY_FINDING) and (w is None or isinstance(w, str)) for f, w in pairs)
    return pairs if valid else None


def _sighting(entry: dict) -> Sighting | str:
    """One listing entry as a sighting, or what is wrong with it."""
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        return f"an entry without a name: {str(entry)[:80]}"
    if not _known(entry.get("seen_as"), BY_FINDING):
        return f"{name}: seen_as {entry.get('seen_as')!r} is none of eventscope's findings"
    if not _known(entry.get("unit"), UNITS):
        return f"{name}: unit {entry.get('unit')!r} is not one of {', '.join(UNITS)}"
    also = _also(entry)
    if also is None:
        return f"{name}: also_seen_as is not a list of {{finding, when}} with known findings"
    return Sighting(name, entry["seen_as"], entry["unit"], also)


def sightings(items: Iterable[object]) -> Sightings:
    """The fault kinds of a ``faults --json`` listing; an unusable entry is named in ``problems``, never raised."""
    kinds, problems = [], []
    for entry in items:
        read = _sighting(entry) if isinstance(entry, dict) else f"an entry that is not an object: {entry!r:.80}"
        (problems if isinstance(read, str) else kinds).append(read)
    order = {d.finding: n for n, d in enumerate(FINDINGS)}
    return Sightings(tuple(sorted(kinds, key=lambda k: order[k.seen_as])), tuple(problems))


# --- units: the same for the ground truth and the findings ------------------------------------------


def _slow_window(record: dict) -> tuple[int, float]:
    """The slow window of a truth record: from its first slow delivery for ``for_s`` (open-ended without)."""
    start = int(record.get("time_ns") or 0)
    for_s = (record.get("detail") or {}).get("for_s")
    return start, start + float(for_s) * 1e9 if for_s is not None else float("inf")


def _truth_finding(record: dict) -> Finding:
    stream = (record.get("channel"), record.get("source"), record.get("partitionkey"), record.get("sequence"))
    attempt = (record.get("detail") or {}).get("attempt")
    return Finding(record.get("group"), record.get("event_id"), stream, attempt, _slow_window(record))


def unit_of(finding: Finding, unit: str) -> tuple:
    """What identifies one fault in ``unit``: the same tuple for an injection and for the finding of it."""
    if unit == "delivery":
        return (finding.event_id, finding.vantage)
    if unit == "attempt":
        return (finding.event_id, finding.vantage, finding.attempt)
    if unit == "sequence":
        return finding.stream
    if unit == "window":
        return (finding.vantage, *finding.window)
    return (finding.event_id,)


def injected(records: Iterable[dict], kinds: Sightings) -> dict[str, set[tuple]]:
    """The injected units per fault kind (every kind of the listing present, empty when none)."""
    units = {k.fault: k.unit for k in kinds.kinds}
    found: dict[str, set[tuple]] = {k.fault: set() for k in kinds.kinds}
    for record in records:
        unit = units.get(record["fault"], "event")
        found.setdefault(record["fault"], set()).add(unit_of(_truth_finding(record), unit))
    return found


# --- the findings, from the API's answers -----------------------------------------------------------


def _duplicate_findings(answer: dict) -> dict[str, list[Finding]]:
    dups = answer.get("duplicates", [])
    published_twice = {d["event_id"] for d in dups if d["vantage"] == BUS}
    return {
        "published_twice": [Finding(d["vantage"], d["event_id"]) for d in dups if d["event_id"] in published_twice],
        # a copy at a group of an event the bus saw once was delivered twice, not published twice
        "delivered_twice": [Finding(d["vantage"], d["event_id"]) for d in dups if d["event_id"] not in published_twice],
    }


def _loss_findings(answer: dict) -> dict[str, list[Finding]]:
    def lost(x: dict) -> Finding:
        return Finding(x["vantage"], x["event_id"], (x["channel"], x["source"], x["partitionkey"], x["sequence"]))

    every = answer.get("lost", [])
    return {
        "lost_before_broker": [lost(x) for x in every if x["where"] == "before_broker"],
        "lost_at_delivery": [lost(x) for x in every if x["where"] == "at_delivery"],
    }


def _dead_letter_findings(answer: dict) -> dict[str, list[Finding]]:
    dead = answer.get("dead_letters", [])
    return {
        "dead_lettered": [Finding(d["group"], d["event_id"]) for d in dead],
        # a message that breaks its schema is never retried: dead-lettered at its first attempt
        "dead_lettered_at_first_attempt": [
            Finding(d["group"], d["event_id"]) for d in dead if (d.get("attempts") or 1) <= 1
        ],
    }


def _retry_findings(answer: dict) -> dict[str, list[Finding]]:
    return {
        "failed_attempt": [
            Finding(d["group"], d["event_id"], attempt=n)
            for d in answer.get("retried", [])
            for n in range(1, (d.get("failed_attempts") or 0) + 1)
        ]
    }


def _skew_findings(answer: dict) -> dict[str, list[Finding]]:
    return {"negative_delivery_time": [Finding(d["group"], d["event_id"]) for d in answer.get("deliveries", [])]}


def _late_findings(answer: dict) -> dict[str, list[Finding]]:
    return {"late": [Finding(a["vantage"], a["event_id"]) for a in answer.get("arrivals", [])]}


def _slow_findings(answer: dict) -> dict[str, list[Finding]]:
    return {"fell_behind": [Finding(e["group"], window=(e["start_ns"], e["end_ns"])) for e in answer.get("slow", [])]}


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
    """Per finding, what eventscope reported; None when its API answer is missing (not measured)."""
    found: dict[str, list[Finding] | None] = {}
    for source, read in _READERS.items():
        answer = findings.get(source)
        for name, items in read(answer or {}).items():
            found[name] = items if answer is not None else None
    return found


# --- matching and the table -------------------------------------------------------------------------


def _explains(unit: str, found: tuple, truth: set[tuple]) -> tuple | None:
    """The injected unit that explains a finding's unit, or None (a window explains any window it overlaps)."""
    if unit != "window":
        return found if found in truth else None
    group, start, end = found
    return next((t for t in sorted(truth) if t[0] == group and start < t[2] and t[1] < end), None)


RETRY_SLACK_NS = 5_000_000_000
"""A slow episode's events are handled after it; an injection up to this long after it still explains it."""


def _causes(record: dict, finding_name: str, finding: Finding, causes: Mapping[str, Sighting]) -> bool:
    """Whether ``record``'s fault also causes this finding (its ``also_seen_as``), at the finding's group and time."""
    kind = causes.get(record["fault"])
    whens = [when for name, when in kind.also if name == finding_name] if kind else []
    detail = record.get("detail") or {}
    if not whens or record.get("group") != finding.vantage:
        return False
    if not any(when is None or detail.get(when) for when in whens):
        return False
    if not finding.window:
        return True
    start, end = finding.window
    return start <= (record.get("time_ns") or 0) <= end + RETRY_SLACK_NS


def _by_other_injection(finding_name: str, finding: Finding, records: list[dict], kinds: Sightings) -> bool:
    """Whether an injection of another kind explains a finding (so it is not extra, nor counted as found).

    The listing says which: a group retrying with backoff (``failed_attempt``) falls behind its peers while
    it retries; a subscriber that Redis cut off for an outgrown output buffer loses what the buffer held
    (the ground truth cannot itemize those losses).
    """
    causes = {k.fault: k for k in kinds.kinds}
    return any(_causes(r, finding_name, finding, causes) for r in records)


def _vantages(counts: Counter) -> str:
    ordered = sorted(counts, key=lambda v: (v != BUS, v))
    return ", ".join(f"{v} {counts[v]}" for v in ordered)


def _row(kind: Sighting, truth: set[tuple], found: list[Finding] | None, records: list[dict], kinds: Sightings) -> dict:
    row = {
        "fault": kind.fault,
        "seen as": kind.seen_as,
        "injected": len(truth),
        "where to look": BY_FINDING[kind.seen_as].where,
    }
    if found is None:
        return {**row, "found": None, "missed": None, "extra": None, "found at": "not measured (no answer)"}
    hits: dict[tuple, set[str]] = defaultdict(set)
    extra: set[tuple] = set()
    for finding in found:
        unit = unit_of(finding, kind.unit)
        explained = _explains(kind.unit, unit, truth)
        if explained is not None:
            hits[explained].add(finding.vantage)
        elif not _by_other_injection(kind.seen_as, finding, records, kinds):
            extra.add(unit)
    at = Counter(v for vantages in hits.values() for v in vantages)
    return {**row, "found": len(hits), "missed": len(truth) - len(hits), "extra": len(extra), "found at": _vantages(at)}


def _unscored(fault: str, truth: set[tuple]) -> dict:
    row = {"fault": fault, "seen as": None, "injected": len(truth), "found": None, "missed": None, "extra": None}
    return {**row, "found at": NOT_SCORED, "where to look": ""}


def table(records: list[dict], findings: Mapping[str, dict | None], kinds: Sightings) -> pd.DataFrame:
    """One row per fault kind: injected, found (at any vantage point), missed, extra, and where it was found.

    A kind in the ground truth that the listing does not describe still gets its row, with its injected count.
    """
    truth, found = injected(records, kinds), detected(findings)
    rows = [_row(k, truth[k.fault], found.get(k.seen_as), records, kinds) for k in kinds.kinds]
    listed = {k.fault for k in kinds.kinds}
    rows += [_unscored(fault, units) for fault, units in truth.items() if fault not in listed]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("injected", "found", "missed", "extra"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _what(unit: str, finding: Finding) -> str:
    if unit == "window":
        start, end = finding.window
        return f"{finding.vantage} behind its peers for {(end - start) / 1e9:g} s of publications"
    if unit == "sequence":
        channel, source, pk, sequence = finding.stream
        return f"{channel} {source or ''} {pk or ''} sequence {sequence}".replace("  ", " ")
    if unit == "attempt":
        return f"failed attempt {finding.attempt}"
    return finding.event_id or ""


def event_link(event_id: str | None) -> str | None:
    """The Event page's URL for one event (relative to the dashboard), or None without an id."""
    return f"{EVENT_PAGE}?{urllib.parse.urlencode({'id': event_id})}" if event_id else None


def extras(records: list[dict], findings: Mapping[str, dict | None], kinds: Sightings) -> pd.DataFrame:
    """Every finding that no injection of its kind explains, with a link to its event where it has one."""
    truth, found = injected(records, kinds), detected(findings)
    rows = []
    for k in kinds.kinds:
        for finding in found.get(k.seen_as) or []:
            explained = _explains(k.unit, unit_of(finding, k.unit), truth[k.fault]) is not None
            if not explained and not _by_other_injection(k.seen_as, finding, records, kinds):
                rows.append([k.fault, finding.vantage, _what(k.unit, finding), event_link(finding.event_id)])
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
