"""``python -m collectors check``: assert limits on a collected event flow, for CI pipelines.

It reads ``/api/v1/overview`` from a running collectors, prints one line per figure with its
limit and verdict (with ``--json``, one JSON object for a pipeline to read instead), and exits 0
when every given limit holds, 1 when one fails, 2 when the API cannot be read. A window that
holds no delivery and no bus message fails too ("nothing observed"), unless ``--allow-empty``:
every limit holds trivially over nothing, which is how a pipeline whose telemetry never arrived
would otherwise pass.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request

from collectors import config as cfg
from collectors.ingest import bearer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNREACHABLE = 2

# flag name -> (overview field, what it means)
LIMITS = {
    "max_missing": ("missing", "missing sequence numbers"),
    "max_lost": ("lost", "lost (gaps older than the grace window)"),
    "max_unhandled_duplicates": ("duplicates_processed", "duplicates processed again"),
    "max_p95_ms": ("p95_delivery_ms", "p95 delivery latency, ms"),
    "max_dead_letters": ("dead_letters", "dead letters"),
    "max_malformed": ("malformed", "malformed messages"),
}
SHOWN = ("deliveries", "messages", "duplicates", "redeliveries", "out_of_order")
NOTHING_OBSERVED = "nothing observed: the window holds no deliveries and no bus messages"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The check subcommand's flags."""
    parser.add_argument("--api", help=f"query API base URL (env {cfg.ENV_API}, default {cfg.DEFAULT_API})")
    for name, (_, meaning) in LIMITS.items():
        kind = float if name == "max_p95_ms" else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, metavar="N", help=f"at most N {meaning}")
    parser.add_argument("--grace-s", type=float, help="seconds before an unfilled gap counts as lost (API default 5)")
    parser.add_argument("--channel", help="only this channel")
    parser.add_argument("--group", help="only this consumer group")
    parser.add_argument(
        "--allow-empty", action="store_true", help="pass when the window holds no deliveries and no bus messages"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the readable summary")


def _fetch(api: str, args: argparse.Namespace) -> dict:
    query = {k: v for k, v in (("grace_s", args.grace_s), ("channel", args.channel), ("group", args.group)) if v}
    url = f"{api.rstrip('/')}/api/v1/overview"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url, headers=bearer.header(cfg.token(os.environ)))
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def evaluate(overview: dict, limits: dict) -> list[tuple[str, object, object, bool]]:
    """(field, value, limit, ok) for every given limit; a missing latency (no deliveries) passes."""
    results = []
    for name, limit in limits.items():
        if limit is None:
            continue
        field = LIMITS[name][0]
        value = overview.get(field)
        results.append((field, value, limit, value is None or value <= limit))
    return results


def observed_nothing(overview: dict) -> bool:
    """No delivery and no bus message of any kind in the window (older servers give only bus_messages)."""
    return not overview.get("deliveries") and not overview.get("messages", overview.get("bus_messages"))


def verdict(results: list[tuple[str, object, object, bool]], empty_fails: bool = False) -> str:
    """The last line of the summary: every limit holds, how many failed, or nothing observed."""
    failed = [r for r in results if not r[3]]
    if empty_fails:
        return f"FAILED: {NOTHING_OBSERVED} (--allow-empty accepts that)"
    return f"FAILED: {len(failed)} of {len(results)} limits exceeded" if failed else "ok: every limit holds"


def summary(overview: dict, results: list[tuple[str, object, object, bool]], empty_fails: bool = False) -> str:
    """The readable report printed by the command."""
    lines = ["eventscope check"]
    lines += [f"  {field:<22} {overview.get(field)}" for field in SHOWN]
    for field, value, limit, ok in results:
        shown = "n/a" if value is None else (f"{value:.1f}" if isinstance(value, float) else value)
        lines.append(f"  {field:<22} {shown} (limit {limit}) {'ok' if ok else 'FAILED'}")
    lines.append(verdict(results, empty_fails))
    return "\n".join(lines)


def answer(overview: dict, results: list[tuple[str, object, object, bool]], empty_fails: bool = False) -> dict:
    """The same report as one JSON object (``--json``): ``ok`` is what the exit status says."""
    return {
        "ok": not empty_fails and all(ok for *_, ok in results),
        "verdict": verdict(results, empty_fails),
        "observed_nothing": observed_nothing(overview),
        "figures": {field: overview.get(field) for field in SHOWN},
        "limits": [{"field": f, "value": v, "limit": lim, "ok": ok} for f, v, lim, ok in results],
    }


def run(api: str, args: argparse.Namespace) -> int:
    """Fetch, evaluate, print; return the exit status."""
    as_json = getattr(args, "json", False)
    try:
        overview = _fetch(api, args)
    except (urllib.error.URLError, OSError, ValueError) as exc:  # ConfigError (a bad token) is a ValueError
        error = f"cannot read the overview from {api}: {exc}"
        print(json.dumps({"ok": False, "error": error}) if as_json else error)
        return EXIT_UNREACHABLE
    results = evaluate(overview, {name: getattr(args, name) for name in LIMITS})
    empty_fails = observed_nothing(overview) and not getattr(args, "allow_empty", False)
    if as_json:
        print(json.dumps(answer(overview, results, empty_fails), indent=2))
    else:
        print(summary(overview, results, empty_fails))
    return EXIT_FAILED if empty_fails or any(not ok for *_, ok in results) else EXIT_OK
