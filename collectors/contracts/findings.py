"""Holding what was observed against the registry and the declarations: the findings, as plain data.

Pure: an observed flow (``collectors/contracts/observed.py``'s answer: publications, deliveries and
payloads, each with its event type and schema version) and a ``Registry`` in, findings out. One
cause is one finding: an unknown type is reported once, with every producer, channel and consumer
group that touched it, and not again as a version nobody accepts or a type nobody consumes; a
schema violation is one finding per (type, version, place in the data, rule broken), counting the
events that broke it. docs/contracts.md defines each kind.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

from jsonschema.exceptions import best_match

from collectors.contracts.registry import Registry

REGISTRY = "registry"
DECLARATION = "declaration"
UNKNOWN_TYPE = "unknown_type"
UNKNOWN_VERSION = "unknown_version"
SCHEMA_VIOLATION = "schema_violation"
NOT_ACCEPTED = "not_accepted"
UNDECLARED_CONSUMER = "undeclared_consumer"
UNCONSUMED = "unconsumed"
KINDS = (
    REGISTRY,
    DECLARATION,
    UNKNOWN_TYPE,
    UNKNOWN_VERSION,
    SCHEMA_VIOLATION,
    NOT_ACCEPTED,
    UNDECLARED_CONSUMER,
    UNCONSUMED,
)
"""Every kind of finding, in the order they are listed."""
MEANINGS = {
    REGISTRY: "a registry file that could not be used",
    DECLARATION: "a consumer group accepts a schema the registry does not hold",
    UNKNOWN_TYPE: "an event type the registry does not know",
    UNKNOWN_VERSION: "a schema version the registry does not hold",
    SCHEMA_VIOLATION: "event data its schema does not allow",
    NOT_ACCEPTED: "a consumer group received a type or version it does not accept",
    UNDECLARED_CONSUMER: "a consumer group that declares nothing",
    UNCONSUMED: "a type published that no consumer group accepts",
}
MAX_SHOWN = 160
"""Longest name or message placed in a finding as is; longer ones are cut, with their length said."""
MAX_FINDINGS = 1000


def shown(value: object) -> str:
    """A name or message fit to print: control characters escaped, cut past MAX_SHOWN with its length said."""
    text = value if isinstance(value, str) else str(value)
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


@dataclasses.dataclass
class Finding:
    kind: str
    type: str | None = None
    version: int | None = None
    who: set[str] = dataclasses.field(default_factory=set)
    channels: set[str] = dataclasses.field(default_factory=set)
    count: int = 0
    example_event_id: str | None = None
    detail: str = ""

    def add(self, row: dict, who: str | None = None) -> None:
        self.count += int(row.get("count") or 1)
        if who:
            self.who.add(who)
        if row.get("channel"):
            self.channels.add(row["channel"])
        self.example_event_id = self.example_event_id or row.get("example_event_id") or row.get("event_id")

    def answer(self) -> dict:
        return {
            "kind": self.kind,
            "type": None if self.type is None else shown(self.type),
            "version": self.version,
            "who": sorted(shown(w) for w in self.who),
            "channels": sorted(shown(c) for c in self.channels),
            "count": self.count,
            "example_event_id": None if self.example_event_id is None else shown(self.example_event_id),
            "detail": self.detail,
        }


class _Findings(dict):
    """Findings by their identity, created on first sight."""

    def at(self, key: tuple, kind: str, event_type: str | None = None, version: int | None = None) -> Finding:
        if key not in self:
            self[key] = Finding(kind, event_type, version)
        return self[key]


def check(registry: Registry, observed: dict) -> list[dict]:
    """Every finding, ordered by kind, then type, version and who."""
    found = _Findings()
    _registry_problems(registry, found)
    publications, deliveries = observed.get("publications", []), observed.get("deliveries", [])
    _unknown(registry, publications, deliveries, found)
    _violations(registry, observed.get("payloads", []), found)
    if registry.declared:
        _acceptance(registry, deliveries, found)
        _unconsumed(registry, publications, found)
    ordered = sorted(found.values(), key=_order)
    return [finding.answer() for finding in ordered[:MAX_FINDINGS]]


def _order(finding: Finding) -> tuple:
    return (KINDS.index(finding.kind), finding.type or "", finding.version or 0, sorted(finding.who), finding.detail)


def _registry_problems(registry: Registry, found: _Findings) -> None:
    for name, why in registry.problems:
        finding = found.at((REGISTRY, name), REGISTRY)
        finding.count, finding.detail = 1, f"{shown(name)}: {shown(why)}"
    for group, accepts in registry.consumers.items():
        for event_type, versions in accepts.items():
            missing = sorted(v for v in versions if (event_type, v) not in registry.schemas)
            if missing:
                finding = found.at((DECLARATION, group, event_type), DECLARATION, event_type)
                finding.who.add(group)
                finding.detail = f"{shown(group)} accepts {shown(event_type)} {_versions(missing)}: not in the registry"


def _versions(versions: Iterable[int]) -> str:
    return ", ".join(f"v{v}" for v in sorted(versions))


def _known(registry: Registry, event_type: str, version: int | None) -> bool:
    return (event_type, version) in registry.schemas if version is not None else bool(registry.versions(event_type))


def _unknown(registry: Registry, publications: list[dict], deliveries: list[dict], found: _Findings) -> None:
    sides = [(row, row.get("producer")) for row in publications] + [(row, row.get("group")) for row in deliveries]
    for row, who in sides:
        event_type, version = row.get("type"), row.get("version")
        if event_type is None:
            continue
        if not registry.versions(event_type):
            finding = found.at((UNKNOWN_TYPE, event_type), UNKNOWN_TYPE, event_type)
        elif version is not None and (event_type, version) not in registry.schemas:
            finding = found.at((UNKNOWN_VERSION, event_type, version), UNKNOWN_VERSION, event_type, version)
        else:
            continue
        finding.add(row, who)
    for finding in found.values():
        if finding.kind == UNKNOWN_TYPE:
            finding.detail = f"{shown(finding.type)} has no schema in the registry"
        elif finding.kind == UNKNOWN_VERSION:
            known = _versions(registry.versions(finding.type))
            finding.detail = f"{shown(finding.type)} v{finding.version} is not in the registry (it holds {known})"


def _violations(registry: Registry, payloads: list[dict], found: _Findings) -> None:
    for row in payloads:
        event_type, version = row.get("type"), row.get("version")
        if event_type is None or not _known(registry, event_type, version):
            continue
        version = version if version is not None else registry.versions(event_type)[-1]
        where, rule, message = _first_error(registry, (event_type, version), row.get("data"))
        if where is None:
            continue
        finding = found.at((SCHEMA_VIOLATION, event_type, version, where, rule), SCHEMA_VIOLATION, event_type, version)
        finding.add(row, row.get("producer"))
        finding.detail = finding.detail or f"{shown(event_type)} v{version}: {where}: {shown(message)}"


def _first_error(registry: Registry, key: tuple[str, int], data: str | None) -> tuple[str | None, str, str]:
    """(place in the data, rule, message) of the most relevant error, or (None, '', '') when the data is valid."""
    try:
        value = None if data is None else json.loads(data)
        error = best_match(registry.validators[key].iter_errors(value))
    except Exception as exc:  # a schema or a payload that breaks validation is a finding, never a crash
        return "data", "unchecked", f"could not be checked: {type(exc).__name__}: {exc}"
    if error is None:
        return None, "", ""
    where = "/".join(["data", *(str(part) for part in error.absolute_path)])
    return where, str(error.validator), error.message


def _acceptance(registry: Registry, deliveries: list[dict], found: _Findings) -> None:
    for row in deliveries:
        group, event_type, version = row.get("group"), row.get("type"), row.get("version")
        if group is None or event_type is None or not _known(registry, event_type, version):
            continue
        accepts = registry.consumers.get(group)
        if accepts is None:
            finding = found.at((UNDECLARED_CONSUMER, group), UNDECLARED_CONSUMER)
            finding.add(row, group)
            finding.detail = f"{shown(group)} receives events and is not in contracts.json"
            continue
        accepted = accepts.get(event_type)
        if accepted is not None and (version is None or version in accepted):
            continue
        finding = found.at((NOT_ACCEPTED, group, event_type, version), NOT_ACCEPTED, event_type, version)
        finding.add(row, group)
        received = f"{shown(event_type)} v{version}" if version is not None else shown(event_type)
        said = f"accepts only {_versions(accepted)}" if accepted else "does not declare the type"
        finding.detail = f"{shown(group)} receives {received} and {said}"


def _unconsumed(registry: Registry, publications: list[dict], found: _Findings) -> None:
    accepted = {event_type for accepts in registry.consumers.values() for event_type in accepts}
    for row in publications:
        event_type = row.get("type")
        if event_type is None or not registry.versions(event_type):
            continue
        if event_type in accepted or event_type in registry.external:
            continue
        finding = found.at((UNCONSUMED, event_type), UNCONSUMED, event_type)
        finding.add(row, row.get("producer"))
        finding.detail = f"{shown(event_type)} is published and no consumer group accepts it"


def summary_counts(findings: list[dict]) -> dict[str, int]:
    """How many findings of each kind (every kind listed, zeros included)."""
    return {kind: sum(1 for f in findings if f["kind"] == kind) for kind in KINDS}


def report(registry: Registry, observed: dict, registry_path: str) -> dict:
    """The contracts answer: ``ok`` (no finding), the findings, their counts by kind, and what was checked."""
    findings = check(registry, observed)
    return {
        "ok": not findings,
        "registry": {
            "path": registry_path,
            "schemas": len(registry.schemas),
            "types": len(registry.types()),
            "consumer_groups": sorted(registry.consumers),
            "accepts": {
                group: {event_type: sorted(versions) for event_type, versions in sorted(accepts.items())}
                for group, accepts in sorted(registry.consumers.items())
            },
        },
        "counts": summary_counts(findings),
        "findings": findings,
        "observed": {
            "publications": sum(int(row.get("count") or 0) for row in observed.get("publications", [])),
            "deliveries": sum(int(row.get("count") or 0) for row in observed.get("deliveries", [])),
            "messages": observed.get("messages", 0),
            "messages_checked": observed.get("messages_checked", 0),
        },
    }
