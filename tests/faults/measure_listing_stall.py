"""Measure the worst event-loop stall while a huge gateway listing is fetched, parsed and applied.

    python -m tests.faults.measure_listing_stall [SERVERS]   # default 100,000

Serves a listing of SERVERS host URLs (ten models) on loopback, then runs what a discovery poll
does with it in the service, collections paced by `monitor.runtime` (`fetch_models`, then
`apply_listing` on the loop twice: the first listing and an unchanged
poll) while a ticker measures the longest gap between its turns of the loop. Not a test: it prints
figures (a timing bound would depend on how busy the machine is).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from aiohttp import web

from monitor.core.membership import Membership, apply_listing
from monitor.core.urls import AllowList
from monitor.probe.discovery import ListingWarnings, fetch_models
from monitor.probe.http import make_session
from monitor.runtime import pace_gc
from monitor.slices import run_in_slices

TICK_S = 0.002


def listing(servers: int) -> bytes:
    per_model = servers // 10
    body = {
        f"model-{m}": {"servers": [f"https://h{m}-{i}.libertai.io" for i in range(per_model)]}
        for m in range(10)
    }
    return json.dumps(body).encode()


async def measure(servers: int) -> None:
    body = listing(servers)
    app = web.Application()

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get("/libertai/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    worst = 0.0
    running = True

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while running:
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            worst, last = max(worst, now - last - TICK_S), now

    tick = asyncio.create_task(ticker())
    pacer = asyncio.create_task(pace_gc())  # as the service runs: collections on the clock
    allow = AllowList.parse("https://*.libertai.io")
    membership = Membership()
    print(f"{servers} servers, listing of {len(body)} bytes")
    async with make_session(ca_bundle=None, limit=4, user_agent="measure") as session:
        for poll in range(2):
            worst = 0.0
            t0 = time.perf_counter()
            result = await fetch_models(
                session, url, 60, max_bytes=len(body) + 1, listing_warnings=ListingWarnings()
            )
            fetched = time.perf_counter() - t0
            fetch_stall, worst = worst, 0.0
            assert result.models is not None, result.error
            membership, changes = await run_in_slices(
                apply_listing(membership, result.models, allow, 1000.0 + poll, 600), 0.0
            )
            took = time.perf_counter() - t0
            print(
                f"poll {poll}: fetch+parse {fetched:.2f} s, applied {took:.2f} s, {len(changes)} changes, "
                f"worst loop stall {fetch_stall * 1000:.0f} ms fetching, {worst * 1000:.0f} ms applying"
            )
    running = False
    pacer.cancel()
    await asyncio.gather(tick, pacer, return_exceptions=True)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
