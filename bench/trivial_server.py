"""The ceiling of benchmark 4: a trivial aiohttp server on the same machine (run in its own process).

`GET /` answers a small fixed JSON; `GET /big` answers the bytes of the file given with `--body`
(a copy of the monitor's /v1/best answer, so the same size goes over the wire). Access log off, as
the monitor's. Prints `ready PORT` once listening; stops on SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from aiohttp import web


async def serve(port: int, body: bytes) -> None:
    async def root(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {port}", flush=True)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--body", type=Path, help="file whose bytes /big answers")
    args = p.parse_args()
    body = args.body.read_bytes() if args.body else b"{}"
    asyncio.run(serve(args.port, body))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
