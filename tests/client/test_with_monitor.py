"""The transports and the `best` command against the running service (in-process) watching the
simulated network: the client follows what the monitor measured, not what a stub says."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from monitor.commands import best as bestcmd
from monitor.server import Running, serving
from monitor.sim import SimNetwork
from monitor.sim.testing import scenario_of
from tests.client.sdk import chat, in_thread, wire
from tests.client.support import KEY as CLIENT_KEY
from tests.client.support import requests_to
from tests.service.support import KEY, eventually, get_json, settings_for

pytestmark = pytest.mark.e2e  # the client, the service and the simulated network


@pytest.fixture
async def watched(tmp_path: Path) -> AsyncIterator[tuple[SimNetwork, Running]]:
    """h0 (2 ms) and h1 (40 ms) serve `m`; the monitor runs at the tests' fast intervals."""
    async with (
        SimNetwork(scenario_of({"ttft": 2}, {"ttft": 40}), seed=5, keys=[KEY, CLIENT_KEY]) as net,
        serving(settings_for(net, tmp_path)) as svc,
        aiohttp.ClientSession() as http,
    ):

        async def h0_then_h1() -> bool:
            answer = await get_json(http, svc.url + "/v1/best/m")
            return bool(
                answer.get("host") == net.host_url("h0") and answer["fallbacks"] == [net.host_url("h1")]
            )

        await eventually(h0_then_h1, timeout=30)
        yield net, svc


def best(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    bestcmd.add_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = bestcmd.run(parser.parse_args(["best", *argv]))
    return code, out.getvalue()


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_the_monitors_best_host_is_used_and_a_killed_one_costs_nothing(
    watched: tuple[SimNetwork, Running], sync: bool
) -> None:
    net, svc = watched
    w = wire(svc.url, net, spread=False)  # the best host alone (spreading: tests/client/test_spread_*)
    assert await chat(w, net.gateway_url, sync=sync, stream=True) == net.host_url("h0")
    net.set_host("h0", down=True, down_mode="refuse")
    for _ in range(3):
        assert await chat(w, net.gateway_url, sync=sync, stream=False) == net.host_url("h1")
    assert requests_to(net, "gateway") == 0


async def test_the_monitor_stopping_changes_nothing_for_the_client(tmp_path: Path) -> None:
    async with SimNetwork(scenario_of({"ttft": 2}, {"ttft": 40}), seed=5, keys=[KEY, CLIENT_KEY]) as net:
        async with serving(settings_for(net, tmp_path)) as svc, aiohttp.ClientSession() as http:

            async def ready() -> bool:
                return bool((await get_json(http, svc.url + "/v1/best/m")).get("host"))

            await eventually(ready, timeout=30)
            w = wire(svc.url, net, refresh=0.01)
            first = await chat(w, net.gateway_url, sync=False, stream=False)
        for _ in range(3):  # the monitor is gone: every refresh fails, the last answer stays
            assert await chat(w, net.gateway_url, sync=False, stream=True) == first
            await w.aio.refreshes_done()
        assert requests_to(net, "gateway") == 0


async def test_a_thinking_alias_completes_on_a_host_without_a_404(
    watched: tuple[SimNetwork, Running],
) -> None:
    net, svc = watched
    async with aiohttp.ClientSession() as http:
        answer = await get_json(http, svc.url + "/v1/best/m-thinking")
    assert "upstream_model" in answer
    w = wire(svc.url, net, spread=False)
    assert await chat(w, net.gateway_url, sync=False, stream=True, model="m-thinking") == net.host_url("h0")
    assert requests_to(net, "gateway") == 0


async def test_an_unchanged_answer_costs_the_client_a_304(watched: tuple[SimNetwork, Running]) -> None:
    _, svc = watched
    async with aiohttp.ClientSession() as http:
        async with http.get(svc.url + "/v1/best/m") as first:
            etag = first.headers["ETag"]
        async with http.get(svc.url + "/v1/best/m", headers={"If-None-Match": etag}) as again:
            assert again.status == 304


async def test_best_command_prints_the_best_host_and_fallbacks(watched: tuple[SimNetwork, Running]) -> None:
    _, svc = watched
    async with aiohttp.ClientSession() as http:

        async def prints_the_answer(as_json: bool) -> bool:
            # Compared with the answer read just before: on a busy machine the answer may change.
            answer = await get_json(http, svc.url + "/v1/best/m")
            flags = ["--json"] if as_json else []
            code, text = await in_thread(lambda: best("m", "--monitor-url", svc.url, *flags))
            if as_json:
                data = json.loads(text)
                return code == 0 and (data["host"], data["fallbacks"]) == (
                    answer["host"],
                    answer["fallbacks"],
                )
            lines = [f"m: {answer['host']}"] + [f"  fallback  {u}" for u in answer["fallbacks"]]
            if answer.get("request_fields"):  # "m" is a reasoning model here: its alias is listed
                fields = json.dumps(answer["request_fields"])
                lines.append(f"  send model {answer['upstream_model']!r} with {fields}")
            return code == 0 and text.splitlines() == lines

        await eventually(lambda: prints_the_answer(False), timeout=30)
        await eventually(lambda: prints_the_answer(True), timeout=30)


async def test_best_command_exits_1_when_the_model_has_no_healthy_host(
    watched: tuple[SimNetwork, Running],
) -> None:
    net, svc = watched
    net.set_host("h0", down=True)
    net.set_host("h1", down=True)
    async with aiohttp.ClientSession() as http:

        async def no_host() -> bool:
            return (await get_json(http, svc.url + "/v1/best/m"))["host"] is None

        await eventually(no_host, timeout=30)
    code, text = await in_thread(lambda: best("m", "--monitor-url", svc.url))
    assert code == 1 and "no healthy host" in text


async def test_best_command_exits_1_for_an_unknown_model_or_an_unreachable_monitor(
    watched: tuple[SimNetwork, Running],
) -> None:
    _, svc = watched
    assert (await in_thread(lambda: best("nope", "--monitor-url", svc.url)))[0] == 1
    assert (await in_thread(lambda: best("m", "--monitor-url", "http://127.0.0.1:9")))[0] == 1
