"""The whole service against the simulated network, checked through its HTTP API and the
simulator's ground truth (what each host received, and what the right answer was)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.server import serving
from tests.service.support import KEY, eventually, get_json, network, settings_for

pytestmark = pytest.mark.e2e  # the service against the simulated network


def _time_dependent(host: dict[str, Any]) -> bool:
    b = host["behaviour"]
    return bool(b.get("flap") or b.get("down_windows")) or not isinstance(b.get("listed", True), bool)


def _wrong_states(truth: dict[str, Any], hosts: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """Hosts whose reported state or reason is not what the simulator says is right."""
    seen = {(h["model"], h["url"]): (h["state"], h["reason"]) for h in hosts}
    wrong: dict[tuple[str, str], Any] = {}
    for host in truth["hosts"]:
        if not host["listed"] or _time_dependent(host) or host["url"].startswith("http://localhost"):
            continue
        url = host["url"].lower().rstrip("/")
        for model, exp in host.get("expected", {}).items():
            state, reason = seen.get((model, url), (None, None))
            if state != exp["state"] or reason not in exp["acceptable_reasons"]:
                wrong[(model, url)] = ((state, reason), (exp["state"], exp["acceptable_reasons"]))
    return wrong


async def test_demo_best_host_is_the_fastest_healthy_host(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("demo") as net, serving(settings_for(net, tmp_path)) as svc:
        truth = net.ground_truth()
        expected = {m: h for m, h in truth["expected_best"].items() if h}
        assert expected, "the demo preset names a right answer"

        async def matches() -> bool:
            best = await get_json(http, svc.url + "/v1/best")
            return all(best["models"].get(m, {}).get("host") == h for m, h in expected.items())

        await eventually(matches, timeout=30)


async def test_chaos_every_host_has_the_state_and_reason_the_simulator_expects(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("chaos") as net, serving(settings_for(net, tmp_path)) as svc:
        downs = sum(
            1 for h in net.ground_truth()["hosts"] for e in h["expected"].values() if e["state"] == "down"
        )
        assert downs >= 15, "chaos has one host per failure mode"

        async def wrong() -> dict[tuple[str, str], Any]:
            hosts = (await get_json(http, svc.url + "/v1/hosts"))["hosts"]
            return _wrong_states(net.ground_truth(), hosts)

        try:
            await eventually(lambda: _empty(wrong()), timeout=30)
        except AssertionError:
            raise AssertionError(f"(seen, expected): {await wrong()}") from None


async def _empty(pending: Any) -> bool:
    return not await pending


async def test_key_never_reaches_an_untrusted_host_or_a_redirect_target(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("chaos") as net, serving(settings_for(net, tmp_path)) as svc:
        await eventually(lambda: svc.monitor.probe_counts.total() > 60, timeout=30)
        truth = net.ground_truth()
        hosts = (await get_json(http, svc.url + "/v1/hosts"))["hosts"]
        untrusted = {h["url"] for h in hosts if h["state"] == "untrusted"}
        assert untrusted, "chaos lists a host outside the allow-list"
        for host in truth["hosts"]:
            if host["url"] in untrusted or host["name"].startswith("sink"):
                assert not host["saw_key"], f"{host['name']} received the key"
                assert sum(p.get("any_auth", 0) for p in host["requests"].values()) == 0
        # The key did reach the trusted hosts: the check above is not vacuous.
        assert any(h["saw_key"] for h in truth["hosts"])


async def test_image_model_gets_no_completion_and_no_host_sees_a_thinking_id(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("demo") as net, serving(settings_for(net, tmp_path)) as svc:
        await eventually(lambda: svc.monitor.probe_counts.total() > 40, timeout=30)
        best = await get_json(http, svc.url + "/v1/best")
        thinking = [m for m in best["models"] if m.endswith("-thinking")]
        assert thinking, "the thinking aliases are reported as models of their own"
        truth = net.ground_truth()
        image_hosts = [h for h in truth["hosts"] if any("image" in m for m in h["models"])]
        assert image_hosts
        for host in image_hosts:
            posts = {p: c for p, c in host["requests"].items() if p.startswith("/v1/")}
            assert posts == {} or all(c["total"] == 0 for c in posts.values()), posts
        for host in truth["hosts"]:
            assert not [m for m in host["models_requested"] if m.endswith("-thinking")]


async def test_answers_are_kept_while_the_gateway_fails(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with network("demo") as net, serving(settings_for(net, tmp_path)) as svc:
        await eventually(
            lambda: sum(1 for m in svc.monitor.snapshot.models.values() if m.best) >= 3, timeout=30
        )
        before = await get_json(http, svc.url + "/libertai/models")
        for fault in ("500", "html", "invalid_json", "hang"):
            net.set_gateway(fault=fault)
            runs = svc.monitor.discovery.runs_failed
            await eventually(lambda r=runs: svc.monitor.discovery.runs_failed > r, timeout=10)  # type: ignore[misc]
            after = await get_json(http, svc.url + "/libertai/models")
            assert {m: set(v["servers"]) for m, v in after.items()} == {
                m: set(v["servers"]) for m, v in before.items()
            }, fault
        metrics = await (await http.get(svc.url + "/metrics")).text()
        assert "libertai_monitor_discovery_success 0.0" in metrics
        net.set_gateway(fault="ok")


async def test_rejected_key_makes_readyz_fail_and_is_reported(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("demo", keys=["some-other-key"]) as net, serving(settings_for(net, tmp_path)) as svc:

        async def metrics() -> str:
            return await (await http.get(svc.url + "/metrics")).text()

        text = await eventually(lambda: _has(metrics(), "libertai_monitor_gateway_key_ok 0.0"), timeout=10)
        assert KEY not in text
        async with http.get(svc.url + "/readyz") as resp:
            body = await resp.json()
        assert resp.status == 503
        assert "api_key: rejected by the gateway" in body["detail"]


async def _has(text: Any, needle: str) -> str | None:
    value = await text
    return value if needle in value else None


async def test_restart_keeps_history_and_best_hosts(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with network("demo") as net:
        settings = settings_for(net, tmp_path)
        async with serving(settings) as svc:
            await eventually(lambda: svc.monitor.probe_counts.total() > 60, timeout=30)
        before = {m: v.best for m, v in svc.monitor.snapshot.models.items()}  # the state it stopped with
        assert sum(1 for h in before.values() if h) >= 3
        net.set_gateway(fault="hang")  # the restarted service must answer from its own memory
        # Longer intervals now: every host was probed moments ago, so none is due again yet.
        slower = settings_for(net, tmp_path, PROBE_INTERVAL="30", COMPLETION_INTERVAL="30")
        async with serving(slower) as svc:
            after = (await get_json(http, svc.url + "/v1/best"))["models"]
            assert {m: v["host"] for m, v in after.items()} == before
            hosts = (await get_json(http, svc.url + "/v1/hosts"))["hosts"]
            assert sum(h["samples"] for h in hosts) > 0
        net.set_gateway(fault="ok")


async def test_history_answers_a_time_series(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with network("demo") as net, serving(settings_for(net, tmp_path)) as svc:
        await eventually(lambda: svc.monitor.probe_counts.total() > 40, timeout=30)
        await svc.monitor.store.flush()  # type: ignore[union-attr]
        model = next(m for m, v in svc.monitor.snapshot.models.items() if v.best)
        data = await get_json(http, f"{svc.url}/v1/history/{model}?since=10m&step=60")
        assert data["points"], data
        point = data["points"][-1]
        assert point["probes"] >= point["ok"] >= 0 and 0 <= point["availability"] <= 1
        async with http.get(f"{svc.url}/v1/history/{model}?since=soon") as resp:
            assert resp.status == 422 and "detail" in await resp.json()
        async with http.get(f"{svc.url}/v1/history/no-such-model") as resp:
            assert resp.status == 404
