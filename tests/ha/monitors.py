"""Monitor processes on one PostgreSQL database for the HA tests and measurements: start them
against the simulator, ask them their role, count their probes and the simulator's requests."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from monitor.sim import SimNetwork
from tests.service.support import env_for, eventually, get_json
from tests.service.test_process import Service

_PROBES = re.compile(r"^libertai_monitor_probes_total\{[^}]*\} (\S+)$", re.M)
_ROWS = re.compile(r"^libertai_monitor_db_rows_written_total (\S+)$", re.M)


def start_monitor(
    net: SimNetwork, tmp_path: Path, name: str, db_url: str, vantage: str = "default", **extra: str
) -> Service:
    """`python -m monitor run` on `db_url` as `vantage`, with settings `extra`; its log in
    tmp_path/NAME.log."""
    env = env_for(net, tmp_path, DATABASE_URL=db_url, VANTAGE=vantage, **extra)
    svc = Service(env, tmp_path / f"{name}.log")
    svc.start()
    return svc


async def role_of(http: aiohttp.ClientSession, svc: Service) -> str | None:
    """The role `/readyz` says, None while it does not answer."""
    try:
        async with http.get(svc.url + "/readyz") as r:
            body = await r.json()
    except (aiohttp.ClientError, ValueError):
        return None
    served_by = body.get("served_by") or {}
    role = served_by.get("role")
    return str(role) if role is not None else None


async def wait_role(http: aiohttp.ClientSession, svc: Service, role: str, timeout: float = 30) -> float:
    """Wait until `svc` has `role`; the monotonic time it was first seen."""

    async def has() -> bool:
        return await role_of(http, svc) == role

    await eventually(has, timeout=timeout, every=0.05)
    return time.monotonic()


async def probes_made(http: aiohttp.ClientSession, svc: Service) -> int:
    """Probes `svc` made so far (its libertai_monitor_probes_total series, summed)."""
    async with http.get(svc.url + "/metrics") as r:
        text = await r.text()
    return int(sum(float(v) for v in _PROBES.findall(text)))


async def rows_written(http: aiohttp.ClientSession, svc: Service) -> int:
    async with http.get(svc.url + "/metrics") as r:
        text = await r.text()
    found = _ROWS.search(text)
    return int(float(found.group(1))) if found else 0


def host_requests(truth: dict[str, Any]) -> int:
    """Requests the simulated hosts received directly (every probe that reached one)."""
    return sum(c["total"] for h in truth["hosts"] for c in h["requests"].values())


async def best_of(http: aiohttp.ClientSession, url: str) -> dict[str, str | None]:
    body = await get_json(http, url)
    return {m: v["host"] for m, v in body["models"].items()}
