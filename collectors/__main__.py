"""Command line: ``python -m collectors serve|report|check|contracts``. Flags fall back to env vars (docs/api.md)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.request

from collectors import check
from collectors import config as cfg
from collectors.contracts import command
from collectors.ingest import bearer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m collectors", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the collectors: OTLP receiver, bus tap, store, query API")
    serve.add_argument(
        "--listen", help=f"host:port for OTLP/HTTP and the API (env {cfg.ENV_LISTEN}, {cfg.DEFAULT_LISTEN})"
    )
    serve.add_argument("--redis-url", help=f"Redis to tap (env {cfg.ENV_REDIS_URL}); no tap without it")
    serve.add_argument(
        "--store",
        help=f"a DuckDB file (duckdb:PATH), chdb:DIR, or clickhouse://[user[:password]@]HOST:PORT/DB "
        f"(env {cfg.ENV_STORE}, default {cfg.DEFAULT_STORE})",
    )
    serve.add_argument("--tap-patterns", help=f"comma-separated PSUBSCRIBE patterns (env {cfg.ENV_TAP_PATTERNS}, '*')")
    serve.add_argument(
        "--redis-cluster",
        action="store_const",
        const="1",
        help=f"the Redis URL names a node of a Redis Cluster: tap and poll every node (env {cfg.ENV_REDIS_CLUSTER}=1)",
    )
    serve.add_argument(
        "--tap-shard-channels",
        help=f"comma-separated sharded channels to SSUBSCRIBE from the start (env {cfg.ENV_TAP_SHARD_CHANNELS})",
    )
    serve.add_argument(
        "--grpc-listen",
        help=f"host:port for OTLP/gRPC, or '{cfg.GRPC_OFF}' (env {cfg.ENV_GRPC_LISTEN}, {cfg.DEFAULT_GRPC_LISTEN})",
    )
    serve.add_argument(
        "--broker-poll-s", help=f"broker stats poll interval, 0 = off (env {cfg.ENV_BROKER_POLL_S}, default 5)"
    )
    serve.add_argument(
        "--retention-age-s", help=f"drop traces older than this, 0 = keep (env {cfg.ENV_RETENTION_AGE_S}, 0)"
    )
    serve.add_argument(
        "--retention-max-spans",
        help=f"keep at most this many spans, oldest traces go first, 0 = no limit (env {cfg.ENV_RETENTION_MAX_SPANS})",
    )
    serve.add_argument("--registry", help=f"schema registry directory for /api/v1/contracts (env {cfg.ENV_REGISTRY})")
    report = commands.add_parser("report", help="print the report JSON from a running collectors")
    report.add_argument("--api", help=f"query API base URL (env {cfg.ENV_API}, default {cfg.DEFAULT_API})")
    check.add_arguments(commands.add_parser("check", help="assert limits on the collected flow (for CI)"))
    command.add_arguments(
        commands.add_parser("contracts", help="check the observed events against a schema registry (for CI)")
    )
    return parser


def _report(api: str) -> int:
    try:
        request = urllib.request.Request(f"{api}/api/v1/report", headers=bearer.header(cfg.token(os.environ)))
        with urllib.request.urlopen(request, timeout=30) as response:
            print(json.dumps(json.load(response), indent=2))
        return 0
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"cannot read the report from {api}: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "check":
        return check.run(cfg.api_url(os.environ, args.api), args)
    if args.command == "contracts":
        return command.run(cfg.api_url(os.environ, args.api), args)
    if args.command == "report":
        return _report(cfg.api_url(os.environ, args.api))
    try:
        config = cfg.load_config(
            os.environ,
            listen=args.listen,
            redis_url=args.redis_url,
            store=args.store,
            tap_patterns=args.tap_patterns,
            redis_cluster=args.redis_cluster,
            tap_shard_channels=args.tap_shard_channels,
            grpc_listen=args.grpc_listen,
            broker_poll_s=args.broker_poll_s,
            retention_age_s=args.retention_age_s,
            retention_max_spans=args.retention_max_spans,
            registry=args.registry,
        )
    except cfg.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    from collectors.serving.server import serve
    from collectors.storage import spec
    from collectors.storage.clickhouse.client import ClickHouseError

    try:
        serve(config)
    except ClickHouseError as exc:  # the store named cannot be opened: say so, no traceback
        print(f"cannot open the store {spec.parse(config.store_path).describe()}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
