"""Reading a schema registry directory: JSON Schema files and the consumer groups' declarations.

The collectors never import the system they observe, so a registry is plain files any team can write
(docs/contracts.md): ``{type}.v{version}.json``, one JSON Schema per event type and version for the
event's ``data``, and ``contracts.json``, what each consumer group accepts. Nothing in a file ends the
reading: a file that is not JSON, a schema that is not a valid JSON Schema, a declaration of the wrong
shape is a problem recorded with its reason, and the rest of the registry is used.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path

import referencing
from jsonschema import Draft202012Validator, SchemaError, validators
from jsonschema.protocols import Validator

DECLARATIONS_FILE = "contracts.json"
SCHEMA_FILE = re.compile(r"^(?P<type>.+)\.v(?P<version>[0-9]{1,9})\.json$")
MAX_FILE_BYTES = 1_000_000
MAX_FILES = 10_000
MAX_VERSION_LISTED = 10**9
"""Largest version a declaration may name (file names hold at most nine digits)."""

DECLARATIONS_SCHEMA = {
    "type": "object",
    "properties": {
        "consumers": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["accepts"],
                "properties": {
                    "accepts": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION_LISTED},
                        },
                    },
                    "description": {"type": "string"},
                },
                "additionalProperties": False,
            },
        },
        "external": {"type": "object", "additionalProperties": {"type": "string"}},
        "$comment": {"type": "string"},
    },
    "required": ["consumers"],
    "additionalProperties": False,
}
"""The shape of ``contracts.json``: checked before it is used, so a wrong shape is a problem, not a crash."""

Key = tuple[str, int]


class RegistryError(ValueError):
    """The registry cannot be read at all (no such directory); the message names the path."""


@dataclasses.dataclass(frozen=True)
class Registry:
    """Schemas by (type, version), each consumer group's accepted versions by type, and what could not be used."""

    schemas: Mapping[Key, dict | bool]
    validators: Mapping[Key, Validator]
    consumers: Mapping[str, Mapping[str, frozenset[int]]]
    external: Mapping[str, str]
    problems: tuple[tuple[str, str], ...]
    """(file name, why it was not used)."""
    declared: bool = True
    """contracts.json was found and usable."""

    @functools.cached_property
    def _by_type(self) -> dict[str, list[int]]:
        by_type: dict[str, list[int]] = {}
        for event_type, version in sorted(self.schemas):
            by_type.setdefault(event_type, []).append(version)
        return by_type

    def versions(self, event_type: str) -> list[int]:
        """The registered versions of a type, oldest first."""
        return list(self._by_type.get(event_type, ()))

    def types(self) -> list[str]:
        return sorted(self._by_type)


def load(directory: str | Path) -> Registry:
    """Read a registry directory; raise RegistryError only when it is not a readable directory."""
    root = Path(directory)
    if not root.is_dir():
        raise RegistryError(f"registry {str(directory)!r} is not a directory")
    problems: list[tuple[str, str]] = []
    schemas: dict[Key, dict | bool] = {}
    checkers: dict[Key, Validator] = {}
    for path in sorted(root.iterdir())[:MAX_FILES]:
        if path.name == DECLARATIONS_FILE or path.suffix != ".json":
            continue
        _add_schema(path, schemas, checkers, problems)
    consumers, external, declared = _declarations(root / DECLARATIONS_FILE, problems)
    return Registry(schemas, checkers, consumers, external, tuple(problems), declared)


def _read_json(path: Path) -> object:
    """The file's JSON value; ValueError with a plain reason when it cannot be read or parsed."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def _add_schema(path: Path, schemas: dict, checkers: dict, problems: list) -> None:
    named = SCHEMA_FILE.match(path.name)
    if named is None:
        problems.append((path.name, "not named {type}.v{version}.json"))
        return
    try:
        schema = _read_json(path)
        checker = compile_schema(schema)
    except ValueError as exc:
        problems.append((path.name, str(exc)))
        return
    key = (named["type"], int(named["version"]))
    schemas[key] = schema
    checkers[key] = checker


def compile_schema(schema: object) -> Validator:
    """A validator for a JSON Schema (its ``$schema`` picks the draft, 2020-12 by default); ValueError when the
    schema is not one. References resolve within the schema only: nothing is fetched from the network."""
    if not isinstance(schema, dict | bool):
        raise ValueError(f"not a JSON Schema: a schema is an object or a boolean, not {type(schema).__name__}")
    try:
        cls = validators.validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "the top"
        raise ValueError(f"not a valid JSON Schema at {where}: {exc.message}") from None
    except RecursionError:
        raise ValueError("not a usable JSON Schema: nested too deeply") from None
    return cls(schema, registry=referencing.Registry())


def _declarations(path: Path, problems: list) -> tuple[dict, dict, bool]:
    if not path.exists():
        problems.append((DECLARATIONS_FILE, "missing: no consumer group declares what it accepts"))
        return {}, {}, False
    try:
        value = _read_json(path)
    except ValueError as exc:
        problems.append((DECLARATIONS_FILE, str(exc)))
        return {}, {}, False
    error = next(Draft202012Validator(DECLARATIONS_SCHEMA).iter_errors(value), None)
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "the top"
        problems.append((DECLARATIONS_FILE, f"wrong shape at {where}: {error.message}"))
        return {}, {}, False
    consumers = {
        group: {event_type: frozenset(versions) for event_type, versions in entry["accepts"].items()}
        for group, entry in value["consumers"].items()
    }
    return consumers, dict(value.get("external", {})), True
