"""The schema registry: one JSON Schema per (event type, version), kept as files in the repo.

Producers validate before PUBLISH and consumers validate on receipt, so a producer bug is caught at
its source and a bad event that slips through (a poison message) is dead-lettered with the
validation error instead of crashing a handler. ``dataschema`` names the schema and its version:
``urn:eventscope:sample:schema:{type}:{version}``. Consumers read the newest version; older ones are
upcast (``upcast``) so handlers see one shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_URI_PREFIX = "urn:eventscope:sample:schema:"
DEFAULT_CURRENCY = "EUR"  # v1 orders had no currency: the shop only sold in euros then


ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})
COMPILED_KEYWORDS = frozenset(
    {"type", "required", "properties", "items", "minItems", "minLength", "minimum", "pattern", "additionalProperties"}
)
"""The JSON Schema subset ``compile_check`` turns into plain Python; any other keyword uses jsonschema alone."""

Check = Callable[[object], bool]


class SchemaError(ValueError):
    """An event does not match its schema, or names no known schema; the message says which and why."""


def schema_uri(event_type: str, version: int) -> str:
    """The ``dataschema`` value for (type, version)."""
    return f"{SCHEMA_URI_PREFIX}{event_type}:{version}"


def version_of(event: dict) -> int | None:
    """The schema version named by the event's ``dataschema``, or None when absent or foreign."""
    uri = event.get("dataschema")
    if not isinstance(uri, str) or not uri.startswith(SCHEMA_URI_PREFIX):
        return None
    _, _, version = uri.rpartition(":")
    return int(version) if version.isdigit() else None


def _order_placed_v1_to_v2(data: dict) -> dict:
    lines = data.get("lines") or []
    total = int(data.get("total_cents", 0))
    units = sum(int(line.get("qty", 1)) for line in lines) or 1
    return {
        "order_id": data.get("order_id"),
        "user_id": data.get("user_id"),
        "lines": [{**line, "unit_price_cents": total // units} for line in lines],
        "total": {"amount_cents": total, "currency": DEFAULT_CURRENCY},
    }


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


TYPE_CHECKS: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def compile_check(schema: dict) -> Check | None:
    """A fast yes/no check equivalent to the schema, or None when it uses keywords outside the subset.

    jsonschema is exact but slow (hundreds of microseconds per event); every event is validated at
    publish and at each consumer, so the common case runs compiled and jsonschema explains failures.
    """
    if not set(schema) <= COMPILED_KEYWORDS | ANNOTATIONS or schema.get("additionalProperties", True) is not True:
        return None
    checks: list[Check] = []
    if "type" in schema:
        if schema["type"] not in TYPE_CHECKS:
            return None
        checks.append(TYPE_CHECKS[schema["type"]])
    properties = {}
    for name, sub in schema.get("properties", {}).items():
        properties[name] = compile_check(sub)
        if properties[name] is None:
            return None
    items = compile_check(schema["items"]) if "items" in schema else None
    if "items" in schema and items is None:
        return None
    checks.extend(_keyword_checks(schema, properties, items))
    return lambda value: all(check(value) for check in checks)


def _keyword_checks(schema: dict, properties: dict[str, Check], items: Check | None) -> list[Check]:
    checks: list[Check] = []
    required = tuple(schema.get("required", ()))
    if required:
        checks.append(lambda v: not isinstance(v, dict) or all(name in v for name in required))
    if properties:
        checks.append(
            lambda v: not isinstance(v, dict) or all(check(v[n]) for n, check in properties.items() if n in v)
        )
    if items is not None:
        checks.append(lambda v: not isinstance(v, list) or all(items(item) for item in v))
    if "minItems" in schema:
        checks.append(lambda v, n=schema["minItems"]: not isinstance(v, list) or len(v) >= n)
    if "minLength" in schema:
        checks.append(lambda v, n=schema["minLength"]: not isinstance(v, str) or len(v) >= n)
    if "minimum" in schema:
        checks.append(lambda v, n=schema["minimum"]: not TYPE_CHECKS["number"](v) or v >= n)
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])
        checks.append(lambda v: not isinstance(v, str) or pattern.search(v) is not None)
    return checks


UPCASTERS: dict[tuple[str, int], Callable[[dict], dict]] = {
    ("shop.order.placed", 1): _order_placed_v1_to_v2,
}
"""(type, version) -> a function turning that version's data into the next version's."""


class SchemaRegistry:
    """All schemas under ``SCHEMA_DIR``, compiled once; files are named ``{type}.v{version}.json``."""

    def __init__(self, directory: Path = SCHEMA_DIR):
        self._validators: dict[tuple[str, int], Draft202012Validator] = {}
        self._checks: dict[tuple[str, int], Check] = {}
        for path in sorted(directory.glob("*.v*.json")):  # contracts.json beside them declares the consumers
            event_type, _, version = path.stem.rpartition(".v")
            schema = json.loads(path.read_text())
            Draft202012Validator.check_schema(schema)
            validator = Draft202012Validator(schema)
            self._validators[(event_type, int(version))] = validator
            self._checks[(event_type, int(version))] = compile_check(schema) or validator.is_valid

    def versions(self, event_type: str) -> list[int]:
        """Known versions of a type, oldest first."""
        return sorted(v for t, v in self._validators if t == event_type)

    def latest(self, event_type: str) -> int:
        versions = self.versions(event_type)
        if not versions:
            raise SchemaError(f"no schema registered for type {event_type!r}")
        return versions[-1]

    def validate(self, event: dict) -> int:
        """Check the event's data against its schema; return the version or raise SchemaError."""
        event_type = event.get("type")
        version = version_of(event)
        if version is None:
            raise SchemaError(f"{event_type}: dataschema missing or not from this registry")
        validator = self._validators.get((event_type, version))
        if validator is None:
            raise SchemaError(f"{event_type} v{version}: no such schema in the registry")
        if self._checks[(event_type, version)](event.get("data")):
            return version
        error = next(validator.iter_errors(event.get("data")), None)
        if error is None:
            return version  # only if the compiled check and jsonschema disagree; jsonschema is the authority
        where = "/".join(str(part) for part in error.absolute_path) or "data"
        raise SchemaError(f"{event_type} v{version}: {where}: {error.message}")

    def upcast(self, event: dict) -> dict:
        """The event with its data raised to the latest version of its type (a new dict when changed)."""
        event_type = event["type"]
        version = version_of(event) or self.latest(event_type)
        data = event.get("data")
        while (event_type, version) in UPCASTERS:
            data = UPCASTERS[(event_type, version)](data)
            version += 1
        if data is event.get("data"):
            return event
        return {**event, "data": data, "dataschema": schema_uri(event_type, version)}
