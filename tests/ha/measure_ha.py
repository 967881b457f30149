"""Two monitor processes on one PostgreSQL database (a throw-away server, tests/pg.py) against the
simulator: how far the follower's answers lag the leader's, and how long a takeover takes after a
SIGKILL of the leader, end to end (as a client of /v1/hosts and /readyz sees them).

    cd /work/wt/i && /work/main/.venv/bin/python -m tests.ha.measure_ha --seconds 30 --kills 5

Lag: both monitors' /v1/hosts are read every `--every` seconds; a (model, host)'s new
`last_probe_at` is timed when each monitor first shows it; the lag is the follower's time minus
the leader's (the leader's writer flush, the follower's poll, both publishers, and the reading
interval). Failover: from the SIGKILL to the survivor's /readyz saying "leader"; the killed one is
started again (it follows) before the next kill.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from monitor.core.percentile import percentile_of_sorted
from tests.ha.monitors import start_monitor, wait_role
from tests.pg import PgServer, find_bin_dir
from tests.service.support import get_json, network
from tests.service.test_process import Service


async def _seen(http: aiohttp.ClientSession, svc: Service) -> dict[tuple[str, str], str]:
    body = await get_json(http, svc.url + "/v1/hosts")
    return {(h["model"], h["url"]): h["last_probe_at"] for h in body["hosts"] if h["last_probe_at"]}


async def lag(
    http: aiohttp.ClientSession, leader: Service, follower: Service, seconds: float, every: float
) -> list[float]:
    first: dict[tuple[str, str, str], float] = {}
    lags: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        lead, follow = await asyncio.gather(_seen(http, leader), _seen(http, follower))
        now = time.monotonic()
        for (model, host), at in lead.items():
            first.setdefault((model, host, at), now)
        for (model, host), at in follow.items():
            t0 = first.pop((model, host, at), None)
            if t0 is not None:
                lags.append(now - t0)
        await asyncio.sleep(every)
    return lags


async def measure(seconds: float, kills: int, every: float) -> None:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries (Debian package `postgresql`)")
    server = PgServer(bin_dir)
    server.start()
    tmp = Path(tempfile.mkdtemp(prefix="measure-ha-"))
    try:
        url = server.new_database()
        async with network("demo") as net, aiohttp.ClientSession() as http:
            monitors = [start_monitor(net, tmp, "a", url)]
            await wait_role(http, monitors[0], "leader")
            monitors.append(start_monitor(net, tmp, "b", url))
            await wait_role(http, monitors[1], "follower")
            try:
                await asyncio.sleep(3)  # let the follower's first reads settle
                lags = sorted(await lag(http, monitors[0], monitors[1], seconds, every))
                if lags:
                    p50, p99 = percentile_of_sorted(lags, 50), percentile_of_sorted(lags, 99)
                    n, top = len(lags), lags[-1]
                    print(f"follower lag over {n} results: p50 {p50:.3f} s, p99 {p99:.3f} s, max {top:.3f} s")
                takeovers: list[float] = []
                for i in range(kills):
                    leader, follower = monitors
                    leader.stop(signal.SIGKILL)
                    killed = time.monotonic()
                    takeovers.append(await wait_role(http, follower, "leader", timeout=30) - killed)
                    restarted = start_monitor(net, tmp, f"r{i}", url)
                    await wait_role(http, restarted, "follower")
                    monitors = [follower, restarted]
                print("takeover seconds:", " ".join(f"{t:.3f}" for t in takeovers))
                if takeovers:
                    print(f"median {statistics.median(takeovers):.3f} s, max {max(takeovers):.3f} s")
            finally:
                for svc in monitors:
                    if svc.proc is not None and svc.proc.poll() is None:
                        svc.stop()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--every", type=float, default=0.05)
    args = parser.parse_args()
    asyncio.run(measure(args.seconds, args.kills, args.every))


if __name__ == "__main__":
    main()
