"""``./run bench``: run every benchmark in bench/ against the Redis in REDIS_URL."""

from __future__ import annotations

import os
import sys

from bench import sample_throughput


def main() -> int:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        print("REDIS_URL is not set: run benchmarks through ./run bench", file=sys.stderr)
        return 2
    sample_throughput.main(redis_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
