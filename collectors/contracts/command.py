"""``python -m collectors contracts``: hold the observed events to a schema registry, for CI pipelines.

With ``--registry PATH`` (or EVENTSCOPE_REGISTRY) the registry is read here and the observed flow comes
from ``/api/v1/contracts/observed``; without, the collectors' own registry answers ``/api/v1/contracts``.
Prints one line per finding (``--json``: one JSON object), and exits 0 when there is none, 1 when there
are findings, 2 when the API or the registry cannot be read or the flags do not fit. ``--asyncapi FILE``
also writes the AsyncAPI 3.0 document of the registry and the observed flow.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from collectors import config as cfg
from collectors.contracts import asyncapi, findings, observed
from collectors.contracts import registry as contract_registry
from collectors.ingest import bearer

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_UNUSABLE = 2


class Unusable(Exception):
    """The check cannot run: the message says why (exit 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The contracts subcommand's flags."""
    parser.add_argument("--api", help=f"query API base URL (env {cfg.ENV_API}, default {cfg.DEFAULT_API})")
    parser.add_argument(
        "--registry",
        help=f"schema registry directory (env {cfg.ENV_REGISTRY}); default: the one the collectors were started with",
    )
    parser.add_argument(
        "--payloads",
        type=int,
        metavar="N",
        help=f"distinct payloads validated per channel, type and dataschema (default {observed.DEFAULT_PAYLOADS})",
    )
    parser.add_argument("--since-ns", type=int, metavar="NS", help="only what was observed from this time on")
    parser.add_argument("--asyncapi", metavar="FILE", help="also write the AsyncAPI 3.0 document (JSON) to FILE")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the readable summary")


def _get(api: str, path: str, args: argparse.Namespace) -> dict:
    query = {k: v for k, v in (("payloads", args.payloads), ("since_ns", args.since_ns)) if v is not None}
    url = f"{api.rstrip('/')}/api/v1/{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(url, headers=bearer.header(cfg.token(os.environ)))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        said = exc.read()[:300].decode(errors="replace")
        raise Unusable(f"cannot read {path} from {api}: HTTP {exc.code}: {said}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # ConfigError (a bad token) is a ValueError
        raise Unusable(f"cannot read {path} from {api}: {exc}") from None


def _answer(api: str, args: argparse.Namespace) -> dict:
    """The contracts report: checked here against a local registry, or by the collectors against theirs."""
    path = cfg.registry_path(os.environ, args.registry)
    if args.payloads is not None and not 0 <= args.payloads <= observed.MAX_PAYLOADS:
        raise Unusable(f"--payloads must be from 0 to {observed.MAX_PAYLOADS}")
    if path is None:
        if args.asyncapi:
            raise Unusable("--asyncapi needs --registry PATH (or EVENTSCOPE_REGISTRY): the schemas are read here")
        answer = _get(api, "contracts", args)
        if answer.get("registry") is None:
            raise Unusable(f"{answer.get('note', 'no registry')}; or give --registry PATH")
        return answer
    try:
        loaded = contract_registry.load(path)
    except contract_registry.RegistryError as exc:
        raise Unusable(str(exc)) from None
    seen = _get(api, "contracts/observed", args)
    if args.asyncapi:
        _write(Path(args.asyncapi), asyncapi.document(loaded, seen))
    return findings.report(loaded, seen, path)


def _write(target: Path, document: dict) -> None:
    try:
        target.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise Unusable(f"cannot write {target}: {exc.strerror or exc}") from None


def _where(finding: dict) -> str:
    parts = []
    if finding["who"]:
        parts.append(", ".join(finding["who"]))
    if finding["channels"]:
        parts.append("on " + ", ".join(finding["channels"]))
    if finding["count"]:
        parts.append(f"{finding['count']} seen")
    if finding["example_event_id"]:
        parts.append(f"e.g. event {finding['example_event_id']}")
    return f" [{'; '.join(parts)}]" if parts else ""


def verdict(answer: dict) -> str:
    """The summary's last line."""
    count = len(answer["findings"])
    if not count:
        return "ok: every observed event keeps its contract"
    return f"FAILED: {count} contract finding{'' if count == 1 else 's'}"


def summary(answer: dict) -> str:
    """The readable report printed by the command."""
    registry, seen = answer["registry"], answer["observed"]
    lines = [
        f"eventscope contracts: registry {registry['path']} ({registry['schemas']} schemas of {registry['types']} "
        f"types, {len(registry['consumer_groups'])} consumer groups declared)",
        f"  observed: {seen['publications']} publications, {seen['deliveries']} deliveries, {seen['messages']} bus "
        f"messages ({seen['messages_checked']} payloads validated)",
    ]
    for kind, count in answer["counts"].items():
        if count:
            lines.append(f"  {kind:<20} {count}  ({findings.MEANINGS[kind]})")
    lines += [f"  {f['kind']}: {f['detail']}{_where(f)}" for f in answer["findings"]]
    lines.append(verdict(answer))
    return "\n".join(lines)


def run(api: str, args: argparse.Namespace) -> int:
    """Fetch, check, print; return the exit status."""
    try:
        answer = _answer(api, args)
    except Unusable as exc:
        print(json.dumps({"ok": False, "error": str(exc)}) if args.json else f"eventscope contracts: {exc}")
        return EXIT_UNUSABLE
    print(json.dumps({**answer, "verdict": verdict(answer)}, indent=2) if args.json else summary(answer))
    return EXIT_FINDINGS if answer["findings"] else EXIT_OK
