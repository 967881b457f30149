"""One gateway in front of several simulator processes (`python -m bench.gateway URL ...`).

A simulator process holds one listening socket per host plus the accepted connections, so at 10,000
hosts a single process runs out of file descriptors under a hard limit of 20,000 (which a process
cannot raise). The benchmarks then split the network over several simulators and put this in front:
`GET /libertai/models` merges their lists, `GET /libertai/auth/check` asks the first one, and
`GET /_sim/hosts` merges their ground truths. Prints `gateway: URL` once listening.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import aiohttp
from aiohttp import web


async def serve(upstreams: list[str]) -> None:
    http = aiohttp.ClientSession()

    async def fetch(url: str) -> Any:
        async with http.get(url) as r:
            return await r.json()

    async def models(request: web.Request) -> web.Response:
        merged: dict[str, dict[str, list[str]]] = {}
        for part in await asyncio.gather(*(fetch(f"{u}/libertai/models") for u in upstreams)):
            for model, entry in part.items():
                merged.setdefault(model, {"servers": []})["servers"].extend(entry["servers"])
        return web.json_response(merged)

    async def auth(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        async with http.get(f"{upstreams[0]}/libertai/auth/check", headers=headers) as r:
            return web.Response(status=r.status, body=await r.read(), content_type=r.content_type)

    async def truth(request: web.Request) -> web.Response:
        parts = await asyncio.gather(*(fetch(f"{u}/_sim/hosts") for u in upstreams))
        merged = dict(parts[0])
        merged["hosts"] = [h for p in parts for h in p["hosts"]]
        return web.json_response(merged)

    app = web.Application()
    app.router.add_get("/libertai/models", models)
    app.router.add_get("/libertai/auth/check", auth)
    app.router.add_get("/_sim/hosts", truth)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"gateway: http://127.0.0.1:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()
    await http.close()


def main() -> int:
    asyncio.run(serve(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
