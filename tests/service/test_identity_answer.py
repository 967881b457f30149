"""Model identity end to end: simulated hosts answer the identity probe, a monitor on a fake clock
takes in what the prober read, and its answers say which host serves another model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.core.answer import HOSTS, AnswerKey
from monitor.core.clock import FakeClock
from monitor.core.identity import judge
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.secret import Secret
from monitor.core.steps import finish
from monitor.core.urls import AllowList
from monitor.probe.prober import Prober
from monitor.service import Monitor
from monitor.sim import SimNetwork
from monitor.sim.presets import load_scenario
from monitor.sim.testing import KEY, scenario_of

HONEST: dict[str, Any] = {"logprob_noise": 0.1}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _answers(
    http: aiohttp.ClientSession,
    *hosts: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    down: tuple[int, ...] = (),
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(url's host name -> its /v1/hosts entry, the /v1/best answer) once every host of `hosts`
    was probed for its identity; the last host is the fastest, hosts `down` (by index) are down."""
    from monitor.config_load import load_settings

    env = {"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": KEY, **(environ or {})}
    clock = FakeClock()
    monitor = Monitor(load_settings(environ=env), clock=clock)
    prober = Prober(http, Secret(KEY), 10.0, allow=AllowList.parse("http://127.0.0.1:*"))
    async with SimNetwork(scenario_of(*hosts), keys=[KEY]) as net:
        names = {net.host_url(f"h{i}"): f"h{i}" for i in range(len(hosts))}
        finish(monitor.fleet.apply_listing({"m": list(names)}, clock.time()))
        results = await asyncio.gather(*(prober.probe(ProbeKind.IDENTITY, url, "m") for url in names))
    for r in results:
        assert r.outcome is Outcome.OK, r.detail
        monitor.recorder.record(r)
    for i, url in enumerate(names):
        ttft = 400.0 - 100.0 * i  # the last host is the fastest
        for _ in range(3):
            at = clock.time()
            completion = ProbeResult("m", url, ProbeKind.COMPLETION, Outcome.OK, at, 200, 1.0, ttft, ttft + 5)
            monitor.recorder.record(completion)
            clock.spend(1.0)
    for i, url in enumerate(names):
        for _ in range(5 if i in down else 0):
            for kind in (ProbeKind.HEALTH, ProbeKind.COMPLETION):
                monitor.recorder.record(ProbeResult("m", url, kind, Outcome.CONNECT_ERROR, clock.time()))
            clock.spend(1.0)
    finish(monitor.publisher.publish(force=True))

    def answer(key: AnswerKey) -> dict[str, Any]:
        sent = finish(monitor.snapshot.answer(key))
        assert sent is not None
        data: dict[str, Any] = json.loads(sent.body)
        return data

    entries = {names[h["url"]]: h for h in answer(HOSTS)["hosts"]}
    best = answer(AnswerKey.best("m"))
    best["routed"] = {
        names.get(u) for u in (best["host"], *best["fallbacks"], *(c["url"] for c in best["candidates"]))
    }
    return entries, best


def _identities(entries: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: e["identity"] for name, e in entries.items()}


async def test_three_honest_hosts_with_noise_inside_the_tolerance_are_all_ok(
    http: aiohttp.ClientSession,
) -> None:
    entries, _ = await _answers(http, HONEST, HONEST, HONEST)
    assert _identities(entries) == {"h0": "ok", "h1": "ok", "h2": "ok"}
    assert all(e["identity_detail"] is None for e in entries.values())


@pytest.mark.parametrize(
    ("impostor", "said"),
    [
        ({"tokenizer_offset": 4}, "prompt_tokens"),
        ({"greedy": ["The", " capital"]}, "first token 'The'"),
        ({"logprob_shift": 1.3}, "log-probability of 'Hello' off by"),
    ],
    ids=["tokenizer", "first-token", "logprobs"],
)
async def test_a_host_serving_another_model_is_a_mismatch_and_never_routed_though_fastest(
    http: aiohttp.ClientSession, impostor: dict[str, Any], said: str
) -> None:
    entries, best = await _answers(http, HONEST, HONEST, HONEST, {**HONEST, **impostor})
    assert _identities(entries) == {"h0": "ok", "h1": "ok", "h2": "ok", "h3": "mismatch"}
    assert said in entries["h3"]["identity_detail"]
    assert best["host"] == entries["h2"]["url"]
    assert "h3" not in best["routed"]


async def test_two_hosts_only_are_unknown(http: aiohttp.ClientSession) -> None:
    entries, _ = await _answers(http, HONEST, HONEST)
    assert _identities(entries) == {"h0": "unknown", "h1": "unknown"}


async def test_two_hosts_are_judged_against_a_reference_file(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with SimNetwork(scenario_of({}), keys=[KEY]) as net:
        r = await Prober(http, Secret(KEY), 10.0, allow=AllowList.parse("http://127.0.0.1:*")).probe(
            ProbeKind.IDENTITY, net.host_url("h0"), "m"
        )
    fp = r.fingerprint
    assert fp is not None
    ref = tmp_path / "reference.json"
    model = {
        "prompt_tokens": fp.prompt_tokens,
        "tokens": list(fp.tokens),
        "top_logprobs": dict(fp.top_logprobs),
    }
    ref.write_text(json.dumps({"models": {"m": model}}))
    environ = {"LIBERTAI_MONITOR_IDENTITY_REFERENCE": str(ref)}
    entries, best = await _answers(http, HONEST, {**HONEST, "tokenizer_offset": 2}, environ=environ)
    assert _identities(entries) == {"h0": "ok", "h1": "mismatch"}
    assert best["host"] == entries["h0"]["url"]


async def test_a_mismatch_host_is_routed_when_no_other_host_is_up(http: aiohttp.ClientSession) -> None:
    entries, best = await _answers(
        http, HONEST, HONEST, HONEST, {**HONEST, "greedy": ["The"]}, down=(0, 1, 2)
    )
    assert entries["h3"]["identity"] == "mismatch"
    assert {entries[h]["state"] for h in ("h0", "h1", "h2")} == {"down"}
    assert best["host"] == entries["h3"]["url"]


async def test_the_impostor_preset_has_one_host_found_out(http: aiohttp.ClientSession) -> None:
    prober = Prober(http, Secret(KEY), 10.0, allow=AllowList.parse("http://127.0.0.1:*"))
    async with SimNetwork(load_scenario("impostor"), keys=[KEY]) as net:
        names = ("honest-1", "honest-2", "honest-3", "impostor")
        results = await asyncio.gather(
            *(prober.probe(ProbeKind.IDENTITY, net.host_url(n), "impostor-model") for n in names)
        )
    fingerprints = {
        n: r.fingerprint for n, r in zip(names, results, strict=True) if r.fingerprint is not None
    }
    verdicts = judge(fingerprints, 0.5)
    assert {n: v.state for n, v in verdicts.items()} == {
        "honest-1": "ok",
        "honest-2": "ok",
        "honest-3": "ok",
        "impostor": "mismatch",
    }
