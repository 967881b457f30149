"""Hosts with capacity: slots, a FIFO queue, a prefix cache, the `herd` preset, least-in-flight routing.

Every delay runs on a FakeClock, so what a test asserts (counts, order, the TTFT the host computed)
does not depend on how busy the machine is; waits poll the ground truth for a state, never a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from monitor.core.clock import FakeClock
from monitor.sim import SimNetwork, load_scenario
from monitor.sim.scenario import apply_changes, parse_scenario
from monitor.sim.specs import Behaviour
from monitor.sim.testing import AUTH, StartNet, chat_body, scenario_of, until

CHAT = "/v1/chat/completions"


def capacity(net: SimNetwork, host: str, model: str = "m") -> dict[str, Any]:
    by_name = {h["name"]: h for h in net.ground_truth()["hosts"]}
    cap: dict[str, Any] = by_name[host]["capacity"][model]
    return cap


def ttfts(net: SimNetwork, host: str) -> list[float]:
    by_name = {h["name"]: h for h in net.ground_truth()["hosts"]}
    return list(by_name[host]["ttft_truth_ms"])


def turn(*contents: str) -> dict[str, Any]:
    """A chat body whose messages alternate user / assistant, after one system prompt."""
    messages: list[dict[str, str]] = [{"role": "system", "content": "You are terse."}]
    for i, content in enumerate(contents):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": content})
    return {**chat_body(), "messages": messages}


class Client:
    """Requests to one network on a fake clock: each in a task, its first token noted in order."""

    def __init__(self, net: SimNetwork, clock: FakeClock, http: aiohttp.ClientSession) -> None:
        self.net, self.clock, self.http = net, clock, http
        self.first_tokens: list[str] = []
        self.tasks: dict[str, asyncio.Task[int]] = {}

    def send(self, name: str, url: str, body: dict[str, Any] | None = None) -> None:
        self.tasks[name] = asyncio.create_task(self._stream(name, url, body or chat_body(stream=True)))

    async def _stream(self, name: str, url: str, body: dict[str, Any]) -> int:
        async with self.http.post(url + CHAT, json={**body, "stream": True}, headers=AUTH) as r:
            async for line in r.content:
                if line.startswith(b"data:") and name not in self.first_tokens:
                    self.first_tokens.append(name)
            return r.status

    async def ask(self, url: str, body: dict[str, Any], host: str) -> None:
        """One whole request answered: sent, its slot taken, its time run out on the clock."""
        served = capacity(self.net, host)["served"]
        self.send(f"ask{len(self.tasks)}", url, body)
        await until(lambda: capacity(self.net, host)["served"] > served, "the request is served")
        await self.clock.advance(1)
        await asyncio.wait_for(asyncio.gather(*self.tasks.values()), 10)

    def arrived_at(self, host: str, n: int) -> Callable[[], bool]:
        """Whether `n` requests reached `host` (served or queued)."""
        return lambda: capacity(self.net, host)["served"] + capacity(self.net, host)["queued"] == n

    def first_tokens_reach(self, n: int) -> Callable[[], bool]:
        return lambda: len(self.first_tokens) == n

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


@pytest.fixture
async def clients(http: aiohttp.ClientSession) -> Any:
    made: list[Client] = []

    def make(net: SimNetwork, clock: FakeClock) -> Client:
        made.append(Client(net, clock, http))
        return made[-1]

    yield make
    for c in made:
        await c.close()


ONE_TOKEN = {"ttft": 100, "itl": 1, "tokens": 1}


async def test_slots_bound_how_many_requests_are_served_at_once(start_net: StartNet, clients: Any) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of({**ONE_TOKEN, "slots": 2}), clock=clock)
    c = clients(net, clock)
    for i in range(5):
        c.send(f"r{i}", net.host_url("h0"))
    await until(lambda: capacity(net, "h0")["queued"] == 3, "three requests queued")
    assert capacity(net, "h0") == {
        "slots": 2,
        "in_flight": 2,
        "queued": 3,
        "served": 2,
        "cache_hits": 0,
        "cache_misses": 2,
    }


async def test_the_queue_is_first_come_first_served_and_its_wait_adds_to_ttft(
    start_net: StartNet, clients: Any
) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of({**ONE_TOKEN, "slots": 1}), clock=clock)
    c = clients(net, clock)
    for arrived, name in enumerate(("a", "b", "c"), start=1):
        c.send(name, net.host_url("h0"))
        await until(c.arrived_at("h0", arrived), f"{name} arrived")
    for n in (1, 2, 3):
        await clock.advance(0.1)
        await until(c.first_tokens_reach(n), f"{n} first tokens")
    assert c.first_tokens == ["a", "b", "c"]
    assert ttfts(net, "h0") == pytest.approx([100, 200, 300])


async def test_a_client_that_leaves_the_queue_leaves_its_place(start_net: StartNet, clients: Any) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of({**ONE_TOKEN, "slots": 1}), clock=clock)
    c = clients(net, clock)
    for name in ("a", "b", "c"):
        c.send(name, net.host_url("h0"))
    await until(lambda: capacity(net, "h0")["queued"] == 2, "two queued")
    c.tasks["b"].cancel()
    await until(lambda: capacity(net, "h0")["queued"] == 1, "one left the queue")
    await clock.advance(0.1)
    await clock.advance(0.1)
    await until(lambda: len(c.first_tokens) == 2, "two first tokens")
    assert c.first_tokens == ["a", "c"]


async def test_a_cancelled_request_frees_its_slot(start_net: StartNet, clients: Any) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of({**ONE_TOKEN, "ttft": 60_000, "slots": 1}), clock=clock)
    c = clients(net, clock)
    c.send("a", net.host_url("h0"))
    await until(lambda: capacity(net, "h0")["in_flight"] == 1, "a is served")
    c.send("b", net.host_url("h0"))
    await until(lambda: capacity(net, "h0")["queued"] == 1, "b is queued")
    c.tasks["a"].cancel()
    await until(lambda: capacity(net, "h0")["served"] == 2, "b is served")
    assert capacity(net, "h0")["in_flight"] == 1
    assert capacity(net, "h0")["queued"] == 0


async def test_more_slots_at_run_time_serve_the_queue(start_net: StartNet, clients: Any) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of({**ONE_TOKEN, "slots": 1}), clock=clock)
    c = clients(net, clock)
    for i in range(3):
        c.send(f"r{i}", net.host_url("h0"))
    await until(lambda: capacity(net, "h0")["queued"] == 2, "two queued")
    net.set_host("h0", slots=3)
    assert capacity(net, "h0")["in_flight"] == 3


async def test_without_slots_every_request_is_served_at_once(start_net: StartNet, clients: Any) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of(ONE_TOKEN), clock=clock)
    c = clients(net, clock)
    for i in range(10):
        c.send(f"r{i}", net.host_url("h0"))
    await until(lambda: capacity(net, "h0")["in_flight"] == 10, "ten served")
    assert capacity(net, "h0")["queued"] == 0
    assert capacity(net, "h0")["slots"] is None
    await clock.advance(0.1)
    await until(lambda: len(c.first_tokens) == 10, "ten first tokens")
    assert ttfts(net, "h0") == pytest.approx([100] * 10)


# -- prefix cache ------------------------------------------------------------------------------------

CACHED = {**ONE_TOKEN, "cache_ttl": 60, "cache_factor": 0.5}


async def test_the_next_turn_of_a_conversation_is_a_prefix_cache_hit(
    start_net: StartNet, clients: Any
) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of(CACHED), clock=clock)
    c = clients(net, clock)
    await c.ask(net.host_url("h0"), turn("Hi"), "h0")
    await c.ask(net.host_url("h0"), turn("Hi", "Hello.", "How are you?"), "h0")
    assert (capacity(net, "h0")["cache_hits"], capacity(net, "h0")["cache_misses"]) == (1, 1)
    assert ttfts(net, "h0") == pytest.approx([100, 50])


async def test_a_prompt_sharing_only_its_system_prompt_is_a_miss(start_net: StartNet, clients: Any) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of(CACHED), clock=clock)
    c = clients(net, clock)
    await c.ask(net.host_url("h0"), turn("Hi"), "h0")
    await c.ask(net.host_url("h0"), turn("Something else"), "h0")
    assert (capacity(net, "h0")["cache_hits"], capacity(net, "h0")["cache_misses"]) == (0, 2)


async def test_a_prefix_older_than_cache_ttl_is_a_miss(start_net: StartNet, clients: Any) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of(CACHED), clock=clock)
    c = clients(net, clock)
    await c.ask(net.host_url("h0"), turn("Hi"), "h0")
    await clock.advance(61)
    await c.ask(net.host_url("h0"), turn("Hi", "Hello.", "How are you?"), "h0")
    assert (capacity(net, "h0")["cache_hits"], capacity(net, "h0")["cache_misses"]) == (0, 2)
    assert ttfts(net, "h0") == pytest.approx([100, 100])


async def test_a_prefix_served_by_another_host_is_a_miss(start_net: StartNet, clients: Any) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of(CACHED, CACHED), clock=clock)
    c = clients(net, clock)
    await c.ask(net.host_url("h0"), turn("Hi"), "h0")
    await c.ask(net.host_url("h1"), turn("Hi", "Hello.", "How are you?"), "h1")
    assert (capacity(net, "h1")["cache_hits"], capacity(net, "h1")["cache_misses"]) == (0, 1)


# -- the herd preset and the gateway's routing -------------------------------------------------------


async def test_the_herd_preset_has_hosts_of_unequal_capacity(start_net: StartNet) -> None:
    net = await start_net(load_scenario("herd"))
    slots = {h.name: h.behaviour.slots for h in net.hosts}
    assert slots == {"fast-1": 4, "fast-2": 4, "medium": 8, "slow": 16, "cold": 4}
    assert {h.models for h in net.hosts} == {("herd-model",)}


async def test_the_herd_presets_cold_host_answers_health_with_202(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(load_scenario("herd"))
    async with http.get(f"{net.host_url('cold')}/health/herd-model") as r:
        assert r.status == 202
    async with http.get(f"{net.host_url('fast-1')}/health/herd-model") as r:
        assert r.status == 200


async def test_least_in_flight_routing_sends_to_the_least_busy_host(
    start_net: StartNet, clients: Any
) -> None:
    clock = FakeClock()
    slow = {"ttft": 60_000, "tokens": 1}
    net = await start_net(scenario_of(slow, slow, gateway={"routing": "least_in_flight"}), clock=clock)
    c = clients(net, clock)
    c.send("a", net.gateway_url)
    await until(lambda: capacity(net, "h0")["in_flight"] == 1, "a on h0")
    c.send("b", net.gateway_url)
    await until(lambda: capacity(net, "h1")["in_flight"] == 1, "b on h1")
    assert capacity(net, "h0")["in_flight"] == 1
    assert net.ground_truth()["gateway"]["in_flight"] == {"h0": 1, "h1": 1}


async def test_the_gateway_by_default_tries_hosts_in_listed_order(start_net: StartNet, clients: Any) -> None:
    clock = FakeClock()
    slow = {"ttft": 60_000, "tokens": 1}
    net = await start_net(scenario_of(slow, slow), clock=clock)
    c = clients(net, clock)
    for name in ("a", "b"):
        c.send(name, net.gateway_url)
    await until(lambda: capacity(net, "h0")["in_flight"] == 2, "both on h0")
    assert capacity(net, "h1")["served"] == 0
    assert net.ground_truth()["gateway"]["routing"] == "ordered"


# -- refused values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"slots": -1}, "slots: expected a positive integer"),
        ({"slots": 0}, "slots: expected a positive integer"),
        ({"slots": 2.5}, "slots: expected a positive integer"),
        ({"cache_factor": 0}, "cache_factor: expected a number in (0, 1]"),
        ({"cache_factor": 1.5}, "cache_factor: expected a number in (0, 1]"),
        ({"cache_ttl": 0}, "cache_ttl: expected a number of seconds > 0"),
        ({"cache_ttl": "long"}, "cache_ttl: expected a number"),
        ({"cache_ttl": 60, "cached_ttft": 5}, "cached_ttft and cache_ttl are two prompt caches"),
    ],
)
def test_bad_capacity_values_are_refused_with_the_field_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        apply_changes(Behaviour(), changes, where="host 'h0'")
    assert str(err.value).startswith("host 'h0'")
    assert message in str(err.value)


def test_a_bad_slots_value_in_a_scenario_names_the_host() -> None:
    with pytest.raises(ValueError) as err:
        scenario_of({"slots": -4})
    assert (
        str(err.value)
        == "test: hosts[0] ('h0').slots: expected a positive integer (or false for unlimited), got -4"
    )


def test_an_unknown_gateway_routing_is_refused() -> None:
    data = {
        "models": [{"id": "m"}],
        "hosts": [{"name": "h", "models": ["m"]}],
        "gateway": {"routing": "random"},
    }
    with pytest.raises(ValueError, match=r"^s: gateway.routing: expected one of ordered, least_in_flight"):
        parse_scenario(data, "s")


def test_false_turns_slots_and_the_prefix_cache_off() -> None:
    b = apply_changes(Behaviour(slots=4, cache_ttl=60), {"slots": False, "cache_ttl": False})
    assert (b.slots, b.cache_ttl) == (None, None)
