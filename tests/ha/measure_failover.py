"""Failover time over N SIGKILLs of the leader (a throw-away PostgreSQL server, tests/pg.py).

cd /work/wt/g && /work/main/.venv/bin/python -m tests.ha.measure_failover --kills 5 --retry-s 1.0
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from tests.ha.lock_holder import takeover_once
from tests.pg import PgServer, find_bin_dir


async def measure(kills: int, retry_s: float) -> list[float]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries (Debian package `postgresql`)")
    server = PgServer(bin_dir)
    server.start()
    try:
        url = server.new_database()
        return [await takeover_once(url, retry_s=retry_s) for _ in range(kills)]
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--retry-s", type=float, default=1.0)
    args = parser.parse_args()
    times = asyncio.run(measure(args.kills, args.retry_s))
    print("takeover seconds:", " ".join(f"{t:.3f}" for t in times))
    print(f"median {statistics.median(times):.3f} s, max {max(times):.3f} s (retry_s={args.retry_s})")


if __name__ == "__main__":
    main()
