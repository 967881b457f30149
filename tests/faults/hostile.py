"""A hostile LibertAI gateway, and a host that counts who sent it the key, on loopback.

The gateway serves whatever listing it is given (`set_listing`), including what a JSON parser
lets through and a careless service would not survive: lone surrogates, control characters,
braces and slashes in ids, 100,000 servers. `/libertai/auth/check` accepts any key.

    python -m tests.faults.hostile SERVERS [MODELS] [--trusted]

runs the gateway alone, listing SERVERS servers over MODELS models (`big_listing`) and prints
its URL: the measuring scripts start it in another process, so that serving the listing does not
count as the monitor's own stall.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

KEY_HEADER = "Authorization"


def big_listing(servers: int, models: int, port: int = 9, *, trusted: bool = False) -> dict[str, Any]:
    """SERVERS distinct host URLs over MODELS models.

    Untrusted (for an allow-list of `http://127.0.0.1:*`): loopback addresses 127.x.y.z at `port`,
    listed and ranked but never probed. Trusted: 127.0.0.1 itself at distinct ports (1025 up,
    over http then https: 129,022 at most), all probed; nothing listens on nearly all of them,
    so their probes are refused at once and they go down."""
    per_model = max(1, servers // models)
    urls = _trusted_urls(per_model * models) if trusted else _untrusted_urls(per_model * models, port)
    return {f"model-{m}": {"servers": urls[m * per_model : (m + 1) * per_model]} for m in range(models)}


def _untrusted_urls(n: int, port: int) -> list[str]:
    return [f"http://127.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:{port}" for i in range(256, 256 + n)]


def _trusted_urls(n: int) -> list[str]:
    ports = range(1025, 65536)
    urls = [f"{scheme}://127.0.0.1:{p}" for scheme in ("http", "https") for p in ports]
    if n > len(urls):
        raise ValueError(f"at most {len(urls)} trusted servers")
    return urls[:n]


def raw_listing(listing: dict[str, Any]) -> bytes:
    """The listing as JSON, with `\\ud800`-style escapes kept (json.dumps writes lone surrogates
    as escapes, which the monitor's parser decodes back into lone surrogates)."""
    return json.dumps(listing).encode()


@dataclass
class Gateway:
    """The gateway app; `requests` counts what it served."""

    body: bytes = b"{}"
    requests: dict[str, int] = field(default_factory=dict)

    def set_listing(self, listing: dict[str, Any] | bytes) -> None:
        self.body = listing if isinstance(listing, bytes) else raw_listing(listing)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/libertai/models", self._models)
        app.router.add_route("*", "/libertai/auth/check", self._auth)
        return app

    def _count(self, path: str) -> None:
        self.requests[path] = self.requests.get(path, 0) + 1

    async def _models(self, request: web.Request) -> web.Response:
        self._count("models")
        return web.Response(body=self.body, content_type="application/json")

    async def _auth(self, request: web.Request) -> web.Response:
        self._count("auth")
        return web.json_response({"ok": True})


@dataclass
class KeyTrap:
    """A host that answers health probes and counts requests and those that carried a key."""

    requests: int = 0
    with_key: int = 0
    keys: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        return app

    async def _any(self, request: web.Request) -> web.Response:
        self.requests += 1
        key = request.headers.get(KEY_HEADER) or request.headers.get("X-Api-Key")
        if key:
            self.with_key += 1
            self.keys.append(key)
        return web.json_response({"status": "ok"})


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])


async def _main(servers: int, models: int, trusted: bool) -> None:
    gateway = Gateway()
    gateway.set_listing(big_listing(servers, models, trusted=trusted))
    runner, port = await serve(gateway.app())
    print(f"http://127.0.0.1:{port}", flush=True)
    try:
        # Until the parent closes our stdin (or dies): an orphaned gateway never lingers.
        await asyncio.to_thread(sys.stdin.read)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(
        _main(
            int(args[0]) if args else 100_000,
            int(args[1]) if len(args) > 1 else 10,
            "--trusted" in sys.argv,
        )
    )
