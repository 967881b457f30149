"""The model a simulated host serves: prompt token count, greedy tokens and log-probabilities."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from monitor.sim.scenario import apply_changes
from monitor.sim.specs import Behaviour
from monitor.sim.testing import AUTH, StartNet, chat_body, scenario_of


def _asked(top: int = 5) -> dict[str, Any]:
    return {**chat_body(max_tokens=3), "temperature": 0, "logprobs": True, "top_logprobs": top}


async def _answer(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{url}/v1/chat/completions", json=body, headers=AUTH) as r:
        assert r.status == 200
        data: dict[str, Any] = await r.json()
        return data


async def test_logprobs_are_answered_as_openai_does(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    data = await _answer(http, net.host_url("h0"), _asked(top=5))
    content = data["choices"][0]["logprobs"]["content"]
    assert [e["token"] for e in content] == ["Hello", " from", " a"]
    assert data["choices"][0]["message"]["content"] == "Hello from a"
    top = content[0]["top_logprobs"]
    assert len(top) == 5 and top[0]["token"] == "Hello"
    assert all(set(e) >= {"token", "logprob"} and e["logprob"] <= 0 for e in top)


async def test_hosts_of_a_model_answer_alike_by_default(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}, {}))
    a, b = [await _answer(http, net.host_url(h), _asked()) for h in ("h0", "h1")]
    assert a["usage"]["prompt_tokens"] == b["usage"]["prompt_tokens"]
    assert a["choices"][0]["logprobs"] == b["choices"][0]["logprobs"]


async def test_a_host_with_another_model_differs_as_configured(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}, {"tokenizer_offset": 5, "greedy": ["The"], "logprob_shift": 1.0}))
    honest, other = [await _answer(http, net.host_url(h), _asked()) for h in ("h0", "h1")]
    assert other["usage"]["prompt_tokens"] == honest["usage"]["prompt_tokens"] + 5
    first = other["choices"][0]["logprobs"]["content"][0]
    assert first["token"] == "The"
    assert first["logprob"] == pytest.approx(-1.05)


async def test_noise_moves_log_probabilities_within_its_bound(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"logprob_noise": 0.2}))
    lps = [(await _answer(http, net.host_url("h0"), _asked()))["choices"][0]["logprobs"] for _ in range(3)]
    firsts = [lp["content"][0]["logprob"] for lp in lps]
    assert len(set(firsts)) > 1 and all(-0.25 <= v <= 0 for v in firsts)


async def test_a_host_without_logprobs_omits_them(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({"logprobs": False}))
    data = await _answer(http, net.host_url("h0"), _asked())
    assert data["choices"][0]["logprobs"] is None
    assert data["usage"]["prompt_tokens"] > 0


def test_model_keys_are_checked_in_a_scenario() -> None:
    assert apply_changes(Behaviour(), {"greedy": ["A", "B"]}).greedy == ("A", "B")
    with pytest.raises(ValueError, match="logprob_noise"):
        apply_changes(Behaviour(), {"logprob_noise": -1})
    with pytest.raises(ValueError, match="tokenizer_offset"):
        apply_changes(Behaviour(), {"tokenizer_offset": 1.5})
