"""The sample system's command line, run as subprocesses: the dashboard never imports sample_system.

Commands run with this interpreter (``sys.executable -m sample_system ...``) from the repository root,
with the dashboard's own environment, so REDIS_URL and OTEL_EXPORTER_OTLP_ENDPOINT set by ``./run demo``
reach them. Without an OTLP endpoint, spans go to the collectors the dashboard reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dashboard import controls
from dashboard.client import ENV_TOKEN, api_base

ROOT = Path(__file__).resolve().parent.parent
ENV_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
COMMAND_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Listing:
    """What a ``... --json`` listing returned, or why it could not be read."""

    items: list[dict] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class Outcome:
    """The result of a one-shot command: what it printed (both streams, for people) and its standard output alone."""

    ok: bool
    output: str
    stdout: str = ""


def command(*args: str) -> list[str]:
    """The argv of ``python -m sample_system ARGS`` with this interpreter."""
    return [sys.executable, "-m", "sample_system", *args]


def environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The dashboard's environment for a sample-system command, with spans sent to the collectors by default."""
    env = dict(environ)
    env.setdefault(ENV_OTLP_ENDPOINT, api_base(environ))
    if environ.get(ENV_TOKEN):  # collectors that require a token require it of the exporters too
        env.setdefault(ENV_OTLP_HEADERS, f"Authorization=Bearer%20{environ[ENV_TOKEN]}")
    env["PYTHONUNBUFFERED"] = "1"  # progress lines must reach the log as they are printed
    return env


def run(*args: str, timeout: float = COMMAND_TIMEOUT_S) -> Outcome:
    """Run one short command to its end; never raises."""
    try:
        done = subprocess.run(
            command(*args), cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Outcome(False, str(exc))
    output = (done.stdout.strip() + "\n" + done.stderr.strip()).strip()
    return Outcome(done.returncode == 0, output, done.stdout)


def parse_listing(stdout: str) -> list[dict] | None:
    """The objects of a ``--json`` listing: its whole standard output is one JSON list; None when it is not."""
    try:
        items = json.loads(stdout)
    except ValueError:
        return None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else None


def _listing(*args: str) -> Listing:
    outcome = run(*args, "--json")
    shown = f"`python -m sample_system {' '.join(args)} --json`"
    if not outcome.ok:
        last = outcome.output.strip().splitlines()[-1:] or ["no output"]
        return Listing(error=f"{shown} failed: {last[0]}")
    items = parse_listing(outcome.stdout)
    if items is None:
        return Listing(error=f"{shown} did not print a JSON list")
    return Listing(items=items)


def scenarios() -> Listing:
    """``scenario list --json``: name, title, description, what_to_look_for, seconds."""
    return _listing("scenario", "list")


def faults() -> Listing:
    """``faults --json``: each kind of ground truth and the eventscope finding that shows it (``seen_as``, ``unit``)."""
    return _listing("faults")


def dlq_list() -> Listing:
    """``dlq list --json``: the sample shop's dead-letter entries."""
    return _listing("dlq", "list")


def dlq_redrive(entry_id: str) -> Outcome:
    """``dlq redrive ENTRY_ID``: publish the original event to its channel again (only when controls are on)."""
    if not controls.allowed():
        return Outcome(False, "redrive is off: " + controls.ENV_CONTROLS + " is not set to 1")
    return run("dlq", "redrive", entry_id)


def entry_id(entry: Mapping[str, object]) -> str:
    """A dead-letter entry's id, whatever the listing calls it."""
    return str(entry.get("entry_id") or entry.get("id") or "")


def entry_label(entry: Mapping[str, object]) -> str:
    """One line describing a dead-letter entry."""
    parts = [entry_id(entry)]
    for key in ("group", "channel", "event_id", "reason"):
        if entry.get(key):
            parts.append(f"{key}: {entry[key]}")
    return " · ".join(parts)
