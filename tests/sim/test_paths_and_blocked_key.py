"""A simulated host's accepted paths, and what the gateway and hosts answer a blocked key."""

from __future__ import annotations

import aiohttp

from monitor.sim.testing import AUTH, StartNet, chat_body, scenario_of

NO_CREDITS = {"error": {"message": "No credits.", "type": "invalid_request_error", "code": "no_credits"}}


async def test_a_path_outside_the_hosts_paths_is_400_invalid_inference_path(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"paths": ["/v1/chat/completions"]}))
    url = net.host_url("h0")
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}
    async with http.post(f"{url}/v1/messages", json=body, headers=AUTH) as r:
        assert r.status == 400 and await r.json() == {"detail": "Invalid inference path"}
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 200


async def test_a_body_without_messages_is_refused_before_any_generation(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(f"{net.host_url('h0')}/v1/messages", json={"model": "m"}, headers=AUTH) as r:
        assert r.status == 422


async def test_a_blocked_key_gets_403_with_libertais_reason_from_gateway_and_hosts(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}, blocked_keys=["sk-spent"]))
    spent = {"Authorization": "Bearer sk-spent"}
    for url in (net.host_url("h0"), net.gateway_url):
        async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=spent) as r:
            assert r.status == 403 and await r.json() == NO_CREDITS
    async with http.get(f"{net.gateway_url}/libertai/auth/check", headers=spent) as r:
        assert r.status == 403 and await r.json() == NO_CREDITS
