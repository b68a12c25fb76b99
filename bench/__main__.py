"""``./run bench``: run every benchmark in bench/ (each its own process) against the Redis in REDIS_URL.

``python -m bench [NAME ...]`` runs only the named ones; ``python -m bench NAME --option ...`` passes the
options to that one (``./run bench soak --seconds 60``). A benchmark that fails is reported and the
others still run; the exit status says whether all passed.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
FIRST = ("sample_throughput",)  # the quick ones first; the rest in name order


def benchmarks() -> list[str]:
    """Every module in bench/ that can be run on its own."""
    names = [m.name for m in pkgutil.iter_modules([str(BENCH_DIR)]) if not m.name.startswith("_")]
    return sorted(names, key=lambda name: (name not in FIRST, name))


def main(argv: list[str] | None = None) -> int:
    if not os.environ.get("REDIS_URL"):
        print("REDIS_URL is not set: run benchmarks through ./run bench", file=sys.stderr)
        return 2
    given = argv if argv is not None else sys.argv[1:]
    options_at = next((i for i, arg in enumerate(given) if arg.startswith("-")), len(given))
    wanted, options = given[:options_at], given[options_at:]
    if options and len(wanted) != 1:
        print("options go to one named benchmark: python -m bench NAME [--option ...]", file=sys.stderr)
        return 2
    unknown = set(wanted) - set(benchmarks())
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(benchmarks())}", file=sys.stderr)
        return 2
    failed = []
    for name in [n for n in benchmarks() if not wanted or n in wanted]:
        print(f"== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}", *options], cwd=BENCH_DIR.parent).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
