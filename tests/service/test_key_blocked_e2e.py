"""The monitor's own key blocked (a 403 with a reason, as LibertAI answers a key without credits):
the monitor's problem, not the hosts'. Against the simulated network, whose gateway and hosts both
answer the blocked key so."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from monitor.server import serving
from monitor.sim import SimNetwork
from monitor.sim.testing import scenario_of
from tests.service.support import KEY, eventually, get_json, settings_for

pytestmark = pytest.mark.e2e  # the service against the simulated network


async def test_a_blocked_key_leaves_every_host_up_and_readyz_says_why(tmp_path: Path) -> None:
    scenario = scenario_of({"ttft": 2}, {"ttft": 40}, blocked_keys=[KEY])
    with capture_logs() as logs:
        async with (
            SimNetwork(scenario, seed=5) as net,
            serving(settings_for(net, tmp_path)) as svc,
            aiohttp.ClientSession() as http,
        ):

            async def blocked_and_probed() -> dict[str, str] | None:
                async with http.get(svc.url + "/readyz") as resp:
                    body = await resp.json()
                completions = sum(
                    n
                    for (_, _, kind, outcome), n in svc.monitor.probe_counts.items()
                    if kind == "completion" and outcome == "key_blocked"
                )
                return body if resp.status == 503 and completions >= 4 else None

            body = await eventually(blocked_and_probed, timeout=30)
            assert "api_key: blocked: No credits." in json.dumps(body)
            hosts = (await get_json(http, svc.url + "/v1/hosts"))["hosts"]
            assert hosts and {h["state"] for h in hosts} == {"up"}
            metrics = await (await http.get(svc.url + "/metrics")).text()
            assert 'libertai_monitor_key_blocked{reason="No credits."} 1.0' in metrics
    said = [e for e in logs if e["event"].startswith("the API key is blocked")]
    assert len(said) == 1 and said[0]["reason"] == "No credits."
