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


async def test_a_follower_replica_shows_its_leaders_facts_and_routes_around_the_impostor(
    pg_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("impostor") as net:
        impostor = net.host_url("impostor")
        leader = start_monitor(net, tmp_path, "a", pg_url, **RARE_SOON)
        follower = None
        try:
            await wait_role(http, leader, "leader")
            follower = start_monitor(
                net, tmp_path, "b", pg_url, THROUGHPUT_INTERVAL="2", IDENTITY_INTERVAL="2"
            )
            await wait_role(http, follower, "follower")

            seen: list[Any] = []

            async def leader_found_all() -> dict[str, tuple[Any, ...]] | None:
                found = _facts(await get_json(http, leader.url + "/v1/hosts"))
                seen[:] = [found]
                complete = len(found) == 4 and found.get(impostor, ("",))[0] == "mismatch"
                complete = complete and all(f[1] is not None and f[3] is not None for f in found.values())
                return found if complete else None

            try:
                found = await eventually(leader_found_all, timeout=15)
            except AssertionError:
                raise AssertionError(f"the leader found {seen}") from None

            async def follower_shows_them() -> bool:
                shown = _facts(await get_json(http, follower.url + "/v1/hosts"))
                # Throughput is measured again every 2 s: the follower shows one, maybe not the newest.
                same = {u: f[:3] for u, f in shown.items()} == {u: f[:3] for u, f in found.items()}
                return same and all(f[3] is not None for f in shown.values())

            await eventually(follower_shows_them, timeout=10)
            best = await get_json(http, f"{follower.url}/v1/best/{MODEL}")
        finally:
            for svc in (follower, leader):
                if svc is not None and svc.proc is not None and svc.proc.poll() is None:
                    svc.stop()
    assert best["host"] is not None and best["host"] != impostor
    assert impostor not in best["fallbacks"]
