"""Ground truth: what each host received, with and without the key, and what the right answer is."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from monitor.core.clock import FakeClock
from monitor.core.results import Outcome
from monitor.sim import load_scenario
from monitor.sim.testing import AUTH, StartNet, chat_body, scenario_of


def by_name(truth: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in truth["hosts"]}


async def test_requests_are_counted_per_path_with_and_without_the_key(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    url = net.host_url("h0")
    for _ in range(3):
        async with http.get(f"{url}/health/m"):
            pass
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH):
        pass
    async with http.post(f"{url}/v1/chat/completions", json=chat_body()):
        pass
    requests = by_name(net.ground_truth())["h0"]["requests"]
    assert requests["/health/m"] == {"total": 3, "with_key": 0, "without_key": 3, "any_auth": 0}
    assert requests["/v1/chat/completions"] == {"total": 2, "with_key": 1, "without_key": 1, "any_auth": 1}


async def test_any_auth_counts_credentials_that_are_not_the_key(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}), keys=["sk-good"])
    wrong = {"Authorization": "Bearer sk-wrong"}
    async with http.post(f"{net.host_url('h0')}/v1/chat/completions", json=chat_body(), headers=wrong):
        pass
    host = by_name(net.ground_truth())["h0"]
    assert host["requests"]["/v1/chat/completions"]["any_auth"] == 1
    assert host["requests"]["/v1/chat/completions"]["with_key"] == 0
    assert host["saw_key"] is False


async def test_saw_key_turns_true_only_when_the_key_arrives(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    url = net.host_url("h0")
    async with http.get(f"{url}/health/m"):
        pass
    assert by_name(net.ground_truth())["h0"]["saw_key"] is False
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH):
        pass
    assert by_name(net.ground_truth())["h0"]["saw_key"] is True


async def test_models_requested_shows_a_thinking_id_sent_to_a_host(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(
        f"{net.host_url('h0')}/v1/chat/completions", json=chat_body("m-thinking"), headers=AUTH
    ):
        pass
    requested = by_name(net.ground_truth())["h0"]["models_requested"]
    assert requested == {"m-thinking": {"/v1/chat/completions": 1}}


async def test_models_requested_tells_health_from_completions(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(load_scenario("demo"))
    async with http.get(f"{net.host_url('image-1')}/health/z-image-turbo"):
        pass
    requested = by_name(net.ground_truth())["image-1"]["models_requested"]
    assert requested == {"z-image-turbo": {"/health": 1}}


async def test_the_key_does_not_follow_a_redirect_to_the_sink(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(load_scenario("chaos"))
    # aiohttp follows the 307 but drops Authorization for another origin: the sink proves it.
    async with http.post(
        f"{net.host_url('redirect')}/v1/chat/completions", json=chat_body(), headers=AUTH
    ) as r:
        assert r.status == 401
    hosts = by_name(net.ground_truth())
    assert hosts["redirect"]["saw_key"] is True
    assert hosts["sink"]["requests"]["/v1/chat/completions"]["total"] == 1
    assert hosts["sink"]["saw_key"] is False


async def test_requests_forwarded_by_the_gateway_are_counted_apart(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=chat_body(), headers=AUTH):
        pass
    truth = net.ground_truth()
    host = by_name(truth)["h0"]
    assert host["via_gateway"] == {"/v1/chat/completions": 1}
    assert host["requests"] == {} and host["saw_key"] is False and host["models_requested"] == {}
    assert truth["gateway"]["requests"]["/v1/chat/completions"]["with_key"] == 1
    assert truth["gateway"]["saw_key"] is True


async def test_ttft_truth_is_recorded_for_each_answer(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"ttft": 50}))
    for _ in range(3):
        async with http.post(
            f"{net.host_url('h0')}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH
        ) as r:
            await r.read()
    truth = by_name(net.ground_truth())["h0"]["ttft_truth_ms"]
    assert len(truth) == 3
    assert all(50 <= t < 150 for t in truth)  # recorded, not benchmarked: see test_scale


async def test_ttft_truth_keeps_the_last_100(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({"ttft": 0, "tokens": 1}))

    async def one() -> None:
        async with http.post(
            f"{net.host_url('h0')}/v1/chat/completions", json=chat_body(), headers=AUTH
        ) as r:
            await r.read()

    await asyncio.gather(*(one() for _ in range(105)))
    assert len(by_name(net.ground_truth())["h0"]["ttft_truth_ms"]) == 100


async def test_the_configured_behaviour_is_in_the_ground_truth(start_net: StartNet) -> None:
    net = await start_net(scenario_of({"ttft": {"dist": "lognormal", "median_ms": 80, "sigma": 0.2}}))
    behaviour = by_name(net.ground_truth())["h0"]["behaviour"]
    assert behaviour["ttft"] == {"dist": "lognormal", "median_ms": 80.0, "sigma": 0.2}
    assert behaviour["fault"] == "none" and behaviour["key_distributed"] is True


async def test_urls_are_as_listed_and_normalised(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(load_scenario("chaos"))
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        servers = (await r.json())["chaos-model"]["servers"]
    host = by_name(net.ground_truth())["normalised"]
    assert host["url"] in servers
    assert host["normalized_url"] == host["direct_url"] == net.host_url("normalised")


CHAOS_EXPECTED = {
    "good": ("up", Outcome.OK),
    "slow": ("up", Outcome.OK),
    "normalised": ("up", Outcome.OK),
    "localhost": ("up", Outcome.OK),
    "tls": ("up", Outcome.OK),
    "rate-limited": ("down", Outcome.RATE_LIMITED),
    "err-500": ("down", Outcome.SERVER_ERROR),
    "err-502": ("down", Outcome.SERVER_ERROR),
    "err-503": ("down", Outcome.SERVER_ERROR),
    "down": ("down", Outcome.SERVER_ERROR),
    "refused": ("down", Outcome.CONNECT_ERROR),
    "down-window": ("up", Outcome.OK),  # its window starts 10 s after start
    "flapping": ("down", Outcome.CONNECT_ERROR),  # down for the first 10 s of every 20 s
    "no-key": ("down", Outcome.KEY_REJECTED),
    "blocked": ("down", Outcome.KEY_REJECTED),
    "not-loaded": ("down", Outcome.NOT_LOADED),
    "error-event": ("down", Outcome.STREAM_ERROR),
    "cut": ("down", Outcome.STREAM_ERROR),
    "hang": ("down", Outcome.TIMEOUT),
    "slow-headers": ("down", Outcome.TIMEOUT),
    "html": ("down", Outcome.BAD_RESPONSE),
    "bad-json": ("down", Outcome.BAD_RESPONSE),
    "redirect": ("down", Outcome.BAD_RESPONSE),
    "endless": ("down", Outcome.TIMEOUT),
}


async def test_expected_state_of_every_chaos_host(start_net: StartNet) -> None:
    hosts = by_name((await start_net(load_scenario("chaos"))).ground_truth())
    seen = {
        name: (
            hosts[name]["expected"]["chaos-model"]["state"],
            hosts[name]["expected"]["chaos-model"]["reason"],
        )
        for name in CHAOS_EXPECTED
    }
    assert seen == {name: (state, str(reason)) for name, (state, reason) in CHAOS_EXPECTED.items()}
    assert all(
        h["expected"]["chaos-model-thinking"] == h["expected"]["chaos-model"]
        for h in hosts.values()
        if "chaos-model" in h["models"]
    )


async def test_a_tls_host_says_what_happens_without_the_ca(start_net: StartNet) -> None:
    tls = by_name((await start_net(load_scenario("chaos"))).ground_truth())["tls"]
    assert tls["expected"]["chaos-model"]["without_ca"]["reason"] == "tls_error"


async def test_expected_best_in_the_demo(start_net: StartNet) -> None:
    net = await start_net(load_scenario("demo"))
    best = net.ground_truth()["expected_best"]
    assert best == {
        "hermes-3-8b-tee": net.host_url("hermes-fast"),
        "hermes-3-8b-tee-thinking": net.host_url("hermes-fast"),
        "gemma-3-27b": net.host_url("gemma-a"),
        "qwen3-coder-next": net.host_url("qwen-a"),
        "z-image-turbo": net.host_url("image-1"),
        "bge-multilingual-gemma2": net.host_url("embed-1"),
    }


async def test_expected_best_in_chaos_is_the_good_host(start_net: StartNet) -> None:
    net = await start_net(load_scenario("chaos"))
    assert net.ground_truth()["expected_best"]["chaos-model"] == net.host_url("good")


async def test_expected_best_is_null_when_hosts_are_too_close_to_call(start_net: StartNet) -> None:
    net = await start_net(scenario_of({"ttft": 100}, {"ttft": 110}))
    assert net.ground_truth()["expected_best"]["m"] is None


async def test_expected_follows_run_time_changes(start_net: StartNet) -> None:
    net = await start_net(scenario_of({"ttft": 50}, {"ttft": 500}))
    changed = net.set_host("h0", down=True)
    assert changed["expected"]["m"] == {
        "state": "down",
        "reason": "server_error",
        "acceptable_reasons": ["server_error"],
    }
    assert net.ground_truth()["expected_best"]["m"] == net.host_url("h1")


async def test_expected_follows_the_flapping_schedule(start_net: StartNet) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of({"flap": {"period": 40, "down_for": 20, "offset": 20}}), clock=clock)
    assert by_name(net.ground_truth())["h0"]["expected"]["m"]["state"] == "up"
    await clock.advance(25)
    assert by_name(net.ground_truth())["h0"]["expected"]["m"]["state"] == "down"


async def test_the_http_ground_truth_is_the_python_one(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(load_scenario("demo"))
    async with http.get(f"{net.gateway_url}/_sim/hosts") as r:
        over_http = await r.json()
    here = net.ground_truth()
    over_http.pop("elapsed_s")
    here.pop("elapsed_s")
    assert over_http == here
