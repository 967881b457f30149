"""Helpers that run the simulated network and the whole service on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from monitor.config import Settings
from monitor.config_load import load_settings
from monitor.server import Running, serving
from monitor.sim import SimNetwork, load_scenario

KEY = "sk-libertai-test-9f8e7d6c5b4a"

FAST = {
    "DISCOVERY_INTERVAL": "1",
    "PROBE_INTERVAL": "0.5",
    "DOWN_PROBE_INTERVAL": "0.5",
    "COMPLETION_INTERVAL": "1",
    "PROBE_TIMEOUT": "1.5",
    "CONFIRM_DELAY": "0.1",
    "EJECTION_TIME": "1",
    "EJECTION_MAX_TIME": "4",
    "JITTER": "0.05",
    "RETIRE_AFTER": "2",
    "LISTEN": "127.0.0.1:0",
    "ALLOWED_HOSTS": "http://127.0.0.1:*,https://127.0.0.1:*",
    "LOG_FORMAT": "json",
}


def env_for(net: SimNetwork, tmp_path: Path, **extra: str) -> dict[str, str]:
    ca = tmp_path / "sim-ca.pem"
    ca.write_bytes(net.ca_pem)
    env = {f"LIBERTAI_MONITOR_{k}": v for k, v in FAST.items()}
    env["LIBERTAI_MONITOR_GATEWAY_URL"] = net.gateway_url
    env["LIBERTAI_MONITOR_CA_BUNDLE"] = str(ca)
    env["LIBERTAI_MONITOR_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    env["LIBERTAI_API_KEY"] = KEY
    env.update({f"LIBERTAI_MONITOR_{k}": v for k, v in extra.items()})
    return env


def settings_for(net: SimNetwork, tmp_path: Path, **extra: str) -> Settings:
    return load_settings(environ=env_for(net, tmp_path, **extra))


@asynccontextmanager
async def network(preset: str, keys: list[str] | None = None, **params: Any) -> AsyncIterator[SimNetwork]:
    scenario = load_scenario(preset, **params)
    async with SimNetwork(scenario, seed=7, port=0, host="127.0.0.1", keys=keys) as net:
        yield net


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        return await resp.json()


async def eventually(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.2) -> Any:
    """Poll an async or sync check until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"not within {timeout} s; last: {last!r}")


__all__ = ["KEY", "Running", "env_for", "eventually", "get_json", "network", "serving", "settings_for"]
