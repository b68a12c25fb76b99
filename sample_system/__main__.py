"""Command line: ``python -m sample_system run`` starts the shop and its load generator."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from sample_system import config as cfg
from sample_system import storefront
from sample_system.shop import Shop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sample_system", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run every service in this process with a steady load")
    run.add_argument("--redis-url", help=f"Redis (env {cfg.ENV_REDIS_URL}, default {cfg.DEFAULT_REDIS_URL})")
    run.add_argument("--rate", type=float, help=f"orders per second, 0 = flat out (env {cfg.ENV_RATE})")
    run.add_argument("--seed", type=int, help=f"load generator seed (env {cfg.ENV_SEED})")
    run.add_argument("--tracing", choices=("on", "off"), help=f"export spans or not (env {cfg.ENV_TRACING})")
    run.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = cfg.load_config(
            os.environ, redis_url=args.redis_url, rate=args.rate, seed=args.seed, tracing=args.tracing
        )
    except cfg.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.seconds:
        threading.Timer(args.seconds, stop.set).start()
    with Shop(config) as shop:
        print(f"sample system: placing {config.rate:g} orders/s on {config.redis_url}", flush=True)
        count = storefront.drive(shop.orders.place_order, config.rate, config.seed, stop)
    print(f"sample system: placed {count} orders", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
