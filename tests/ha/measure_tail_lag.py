"""Follower lag: how long after the leader submits a result a follower polling `ResultTail` reads it
(a throw-away PostgreSQL server, tests/pg.py). The lag is the leader's writer flush interval plus the
follower's poll interval at most, plus the query.

    cd /work/wt/g && /work/main/.venv/bin/python -m tests.ha.measure_tail_lag --seconds 20 --rate 200
"""

from __future__ import annotations

import argparse
import asyncio
import time

from monitor.core.percentile import percentile_of_sorted
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.store import Store
from monitor.store.tail import ResultTail, TailCursor
from tests.pg import PgServer, find_bin_dir


async def measure(url: str, seconds: float, rate: float, poll_s: float, flush_s: float) -> list[float]:
    store = await Store.open(url, flush_interval_s=flush_s)
    await store.upgrade()
    store.start_writer()
    submitted: dict[tuple[str, float], float] = {}
    lags: list[float] = []
    tail = ResultTail(store.engine, TailCursor.starting_at(time.time() - 1))

    async def leader() -> None:
        n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now = time.time()
            host = f"https://h{n % 5000}.example"
            r = ProbeResult(
                "llama-3", host, ProbeKind.HEALTH, Outcome.OK, round(now, 3), 200, 3.0, None, 40.0
            )
            submitted[(host, r.started_at)] = time.monotonic()
            store.submit(r)
            n += 1
            await asyncio.sleep(1 / rate)

    async def follower() -> None:
        while True:
            for r in await tail.read():
                sent = submitted.get((r.host, r.started_at))
                if sent is not None:
                    lags.append(time.monotonic() - sent)
            if not tail.more:
                await asyncio.sleep(poll_s)

    f = asyncio.create_task(follower())
    await leader()
    await store.flush()
    await asyncio.sleep(poll_s * 2)
    f.cancel()
    await asyncio.gather(f, return_exceptions=True)
    await store.close(grace_s=2)
    print(f"results submitted {len(submitted)}, read by the follower {len(lags)}")
    return lags


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=200, help="results per second written by the leader")
    parser.add_argument("--poll-s", type=float, default=0.5)
    parser.add_argument("--flush-s", type=float, default=1.0, help="the leader's writer flush interval")
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries (Debian package `postgresql`)")
    server = PgServer(bin_dir)
    server.start()
    try:
        lags = asyncio.run(measure(server.new_database(), args.seconds, args.rate, args.poll_s, args.flush_s))
    finally:
        server.stop()
    lags.sort()
    p50, p99 = percentile_of_sorted(lags, 50) or 0.0, percentile_of_sorted(lags, 99) or 0.0
    print(f"follower lag p50 {p50:.3f} s, p99 {p99:.3f} s, max {lags[-1]:.3f} s (poll {args.poll_s} s)")


if __name__ == "__main__":
    main()
