"""Command line of the sample shop.

``run`` starts every service with a steady load (optionally with faults); ``scenario list|run``
runs a named teaching scenario; ``dlq list|redrive`` inspects and replays the dead-letter queue;
``faults`` lists the named faults; ``accounts balance`` replays the event store.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import signal
import sys
import threading

import redis

from sample_system import cluster, comparison, deadletters, faults, scenarios, telemetry
from sample_system import config as cfg
from sample_system.bus import client_name
from sample_system.redrive import redrive
from sample_system.runner import ContinuousRunner
from sample_system.services import accounts
from sample_system.shop import CONSUMER_GROUPS, LOAD
from sample_system.truth import GroundTruth

CLI_CLIENT_NAME = client_name("cli")


def _redis_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help=f"Redis (env {cfg.ENV_REDIS_URL}, default {cfg.DEFAULT_REDIS_URL})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sample_system", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run every service in this process with a steady load")
    _redis_flag(run)
    run.add_argument("--rate", type=float, help=f"commands per second, 0 = flat out (env {cfg.ENV_RATE})")
    run.add_argument("--seed", type=int, help=f"load generator seed (env {cfg.ENV_SEED})")
    run.add_argument("--tracing", choices=("on", "off"), help=f"export spans or not (env {cfg.ENV_TRACING})")
    run.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    run.add_argument("--burst-every", type=float, dest="burst_every_s", help=f"env {cfg.ENV_BURST_EVERY_S}")
    run.add_argument("--burst-size", type=int, help=f"orders per burst (env {cfg.ENV_BURST_SIZE})")
    run.add_argument("--v1-share", type=float, help=f"share of OrderPlaced v1 (env {cfg.ENV_V1_SHARE})")
    run.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[:k=v,...]",
        help=f"switch a fault on (repeatable; env {faults.ENV_PREFIX}<NAME>); see the faults command",
    )
    run.add_argument("--truth", help="append ground truth (JSON lines) to this file")
    run.add_argument(
        "--sync",
        action="store_true",
        help="also run the synchronous shop (services over HTTP, services sync-*) under the same seeded load",
    )
    run.add_argument(
        "--services",
        default=",".join((LOAD, *CONSUMER_GROUPS)),
        help=f"comma-separated services to run in this process (default all: {LOAD} and every consumer group); "
        "run one process per service by starting this command once per name",
    )

    commands.add_parser("faults", help="list the named faults and their parameters").add_argument(
        "--json", action="store_true"
    )

    scenario = commands.add_parser("scenario", help="teaching scenarios").add_subparsers(dest="action", required=True)
    scenario.add_parser("list", help="the catalogue").add_argument("--json", action="store_true")
    run_one = scenario.add_parser("run", help="run one scenario against Redis, exporting spans over OTLP")
    run_one.add_argument("name", choices=sorted(scenarios.CATALOGUE))
    run_one.add_argument("--seconds", type=float)
    run_one.add_argument("--seed", type=int, default=cfg.DEFAULT_SEED)
    run_one.add_argument("--truth", help="write ground truth (JSON lines) to this file")
    run_one.add_argument(
        "--variant",
        choices=comparison.VARIANTS,
        default=comparison.PUBSUB,
        help="sync_vs_events: how shipping reads its channel (Pub/Sub, or a Redis Stream with a consumer group)",
    )
    run_one.add_argument("--results", help="sync_vs_events: write every order and span tally (JSON) to this file")
    run_one.add_argument(
        "--json", action="store_true", help="print the summary alone, as JSON (progress lines go to stderr)"
    )
    _redis_flag(run_one)

    dlq = commands.add_parser("dlq", help="the dead-letter queue").add_subparsers(dest="action", required=True)
    listing = dlq.add_parser("list", help="dead letters, oldest first")
    listing.add_argument("--json", action="store_true")
    _redis_flag(listing)
    redrive = dlq.add_parser("redrive", help="republish a dead letter's original event to its channel")
    redrive.add_argument("entry_id")
    _redis_flag(redrive)

    account = commands.add_parser("accounts", help="the event-sourced wallets").add_subparsers(
        dest="action", required=True
    )
    balance = account.add_parser("balance", help="replay the event store: a balance now or at a past moment")
    balance.add_argument("account")
    balance.add_argument("--at", help="RFC 3339 time or Unix milliseconds (default: now)")
    _redis_flag(balance)
    return parser


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def cmd_run(args: argparse.Namespace) -> int:
    config = cfg.load_config(
        os.environ,
        redis_url=args.redis_url,
        rate=args.rate,
        seed=args.seed,
        tracing=args.tracing,
        burst_every_s=args.burst_every_s,
        burst_size=args.burst_size,
        v1_share=args.v1_share,
    )
    services = [name.strip() for name in args.services.split(",") if name.strip()]
    unknown = set(services) - {LOAD, *CONSUMER_GROUPS}
    if unknown or not services:
        choices = ", ".join((LOAD, *CONSUMER_GROUPS))
        raise ValueError(f"--services: unknown {', '.join(sorted(unknown)) or 'empty list'}; choose from {choices}")
    settings = faults.load_settings(os.environ, args.fault)
    truth = GroundTruth(args.truth)
    stop = _stop_on_signals()
    if args.seconds:
        threading.Timer(args.seconds, stop.set).start()
    try:
        totals = ContinuousRunner(config, services, settings, truth, _progress, sync=args.sync).run(stop)
    finally:
        truth.close()
    issued = totals.issued
    print(
        f"sample system: placed {issued['place_order']} orders ({dict(issued)}); deliveries {dict(totals.handled)}"
        f"; shops {totals.shops}, paused {totals.pauses} time(s) for scenarios",
        flush=True,
    )
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    catalogue = faults.describe()
    if args.json:
        print(json.dumps(catalogue, indent=2))
        return 0
    for fault in catalogue:
        params = ",".join(
            f"{k}={v:g}" if isinstance(v, float | int) else f"{k}={v}" for k, v in fault["defaults"].items()
        )
        switch = f"{fault['env']}; defaults {params or 'none'}" if fault["switchable"] else "recorded only"
        print(f"{fault['name']} ({switch}; seen as {fault['seen_as']} per {fault['unit']})")
        print(f"    {fault['description']}")
    return 0


def cmd_scenario(args: argparse.Namespace) -> int:
    if args.action == "list":
        catalogue = scenarios.describe()
        if args.json:
            print(json.dumps(catalogue, indent=2))
        else:
            for item in catalogue:
                print(f"{item['name']:<24} {item['seconds']:>4g}s  {item['title']}")
        return 0
    redis_url = args.redis_url or os.environ.get(cfg.ENV_REDIS_URL, cfg.DEFAULT_REDIS_URL)
    progress = _progress_to_stderr if args.json else _progress
    summary = scenarios.run_scenario(
        args.name,
        args.seconds,
        args.seed,
        args.truth,
        redis_url,
        _stop_on_signals(),
        progress=progress,
        variant=args.variant,
        results_path=args.results,
    )
    if args.json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    else:
        print(f"scenario {args.name}: done {json.dumps(summary, sort_keys=True)}", flush=True)
    return 0


def _progress(line: str) -> None:
    print(line, flush=True)


def _progress_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _client(args: argparse.Namespace) -> redis.Redis:
    url = args.redis_url or os.environ.get(cfg.ENV_REDIS_URL, cfg.DEFAULT_REDIS_URL)
    return cluster.connect(url, cfg.load_config(os.environ).redis_cluster, client_name=CLI_CLIENT_NAME)


def cmd_dlq(args: argparse.Namespace) -> int:
    queue = deadletters.DeadLetterQueue(_client(args))
    if args.action == "list":
        entries = queue.entries()
        if args.json:
            print(json.dumps(entries, indent=2))
        for entry in [] if args.json else entries:
            print(
                f"{entry['entry_id']}  {entry['group']:<14} {entry['channel']:<14} "
                f"attempts={entry['attempts']} {entry['event_id']}  {entry['reason']}"
            )
        return 0
    return redrive(queue, args.entry_id, _progress)


def cmd_accounts(args: argparse.Namespace) -> int:
    at_ms = _moment_ms(args.at) if args.at else None
    balance = accounts.balance_at(_client(args), args.account, at_ms)
    when = args.at or "now"
    if balance is None:
        print(f"{args.account}: no account at {when}")
        return 1
    print(f"{args.account}: {balance / 100:.2f} at {when} (replayed from {accounts.EVENT_STORE})")
    return 0


def _moment_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


COMMANDS = {"run": cmd_run, "faults": cmd_faults, "scenario": cmd_scenario, "dlq": cmd_dlq, "accounts": cmd_accounts}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # a scenario's terminal shows its progress lines; the services' own logs would drown them
    telemetry.configure_logging(logging.WARNING if args.command == "scenario" else logging.INFO)
    try:
        return COMMANDS[args.command](args)
    except (cfg.ConfigError, faults.FaultError, scenarios.ScenarioError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except redis.ConnectionError as exc:
        print(f"error: cannot reach Redis: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
