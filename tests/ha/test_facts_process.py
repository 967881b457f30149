"""Process level, on a real PostgreSQL server and the simulator's `impostor` network: a follower
replica shows what its leader's rare probes found (identity verdicts, paths, throughput) and never
routes to the host serving another model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.ha.monitors import start_monitor, wait_role
from tests.service.support import eventually, get_json, network
from tests.service.test_process import Service

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]

MODEL = "impostor-model"
# The rare probes soon after first sight (else within 30 s), so that the test sees them in its time.
RARE_SOON = {"THROUGHPUT_INTERVAL": "2", "IDENTITY_INTERVAL": "2", "PATHS_INTERVAL": "2"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def _facts(body: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        h["url"]: (h["identity"], h["paths"], h["paths_refused"], h["tokens_per_s"])
        for h in body["hosts"]
        if h["model"] == MODEL
    }


def _complete(found: dict[str, tuple[Any, ...]], impostor: str) -> bool:
    """Every fact known: the impostor found out (an honest host's verdict may pass through
    `unknown` for a moment as fingerprints come in), paths and throughput of every host."""
    return (
        len(found) == 4
        and all((f[0] == "mismatch") == (url == impostor) for url, f in found.items())
        and all(f[1] is not None and f[3] is not None for f in found.values())
    )


async def test_a_follower_replica_shows_its_leaders_facts_and_routes_around_the_impostor(
    pg_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("impostor") as net:
        impostor = net.host_url("impostor")
        leader = start_monitor(net, tmp_path, "a", pg_url, **RARE_SOON)
        follower = None
        try:
            await wait_role(http, leader, "leader")
            follower = start_monitor(net, tmp_path, "b", pg_url, **RARE_SOON)
            await wait_role(http, follower, "follower")
            seen: list[Any] = []

            for svc, timeout in ((leader, 60), (follower, 30)):  # generous: CI machines are busy

                async def found_all(svc: Service = svc) -> bool:
                    found = _facts(await get_json(http, svc.url + "/v1/hosts"))
                    seen[:] = [found]
                    return _complete(found, impostor)

                try:
                    await eventually(found_all, timeout=timeout)
                except AssertionError:
                    raise AssertionError(f"{svc.log.stem} shows {seen}") from None
            best = await get_json(http, f"{follower.url}/v1/best/{MODEL}")
        finally:
            for running in (follower, leader):
                if running is not None and running.proc is not None and running.proc.poll() is None:
                    running.stop()
    assert best["host"] is not None and best["host"] != impostor
    assert impostor not in best["fallbacks"]
