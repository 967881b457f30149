"""The simulated gateway: discovery list, key check, failing-over proxy, faults and run-time control."""

from __future__ import annotations

import hashlib
import json
import ssl

import aiohttp
import pytest

from monitor.core.clock import FakeClock
from monitor.sim import load_scenario
from monitor.sim.testing import AUTH, StartNet, chat_body, scenario_of, sse_data


async def test_models_list_has_the_real_shape_with_thinking_aliases(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}, {}, {"models": ["img"]}))
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        listing = await r.json()
    assert listing == {
        "m": {"servers": [net.host_url("h0"), net.host_url("h1")]},
        "m-thinking": {"servers": [net.host_url("h0"), net.host_url("h1")]},
        "img": {"servers": [net.host_url("h2")]},
    }


async def test_the_list_is_not_filtered_by_health(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({"down": True}, {"fault": "hang"}))
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        assert len((await r.json())["m"]["servers"]) == 2


async def test_hosts_are_listed_as_the_scenario_says(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(load_scenario("chaos"))
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        servers = (await r.json())["chaos-model"]["servers"]
    hosts = {h.name: h for h in net.hosts}
    assert f"HTTP://127.0.0.1:{hosts['normalised'].port}/" in servers
    assert f"http://localhost:{hosts['localhost'].port}" in servers
    assert f"https://127.0.0.1:{hosts['tls'].port}" in servers
    assert hosts["sink"].url not in servers


async def test_host_churn_adds_and_removes_servers_over_time(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of({"listed": [[0, 30]]}, {"listed": [[30, 1e9]]}), clock=clock)

    async def servers() -> list[str]:
        async with http.get(f"{net.gateway_url}/libertai/models") as r:
            listing: dict[str, dict[str, list[str]]] = await r.json()
            return listing["m"]["servers"]

    assert await servers() == [net.host_url("h0")]
    await clock.advance(30)
    assert await servers() == [net.host_url("h1")]


async def test_listing_can_change_at_run_time(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}, {}))
    net.set_host("h0", listed=False)
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        assert (await r.json())["m"]["servers"] == [net.host_url("h1")]


@pytest.mark.parametrize(
    ("key", "status"), [("sk-good", 200), ("sk-unknown", 401), ("sk-blocked", 403), (None, 401)]
)
async def test_auth_check(
    start_net: StartNet, http: aiohttp.ClientSession, key: str | None, status: int
) -> None:
    net = await start_net(scenario_of({}, blocked_keys=["sk-blocked"]), keys=["sk-good"])
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with http.get(f"{net.gateway_url}/libertai/auth/check", headers=headers) as r:
        assert r.status == status
        if status == 200:
            assert await r.text() == "OK"
        if status == 401:
            assert await r.json() == {"detail": "Unauthorized"}


async def test_proxy_fails_over_from_a_5xx_to_the_next_host(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"errors": {"502": 1.0}}, {}))
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 200
    hosts = {h["name"]: h for h in net.ground_truth()["hosts"]}
    assert hosts["h0"]["via_gateway"] == {"/v1/chat/completions": 1}
    assert hosts["h1"]["via_gateway"] == {"/v1/chat/completions": 1}


async def test_proxy_fails_over_from_a_refused_connection(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"down": True, "down_mode": "refuse"}, {}))
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 200


async def test_proxy_fails_over_from_a_host_that_does_not_answer(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"fault": "hang"}, {}, gateway={"upstream_timeout": 0.2}))
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 200


async def test_proxy_passes_a_4xx_back(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({"key_distributed": False}, {}))
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 401
        assert await r.json() == {"detail": "Invalid API key"}


async def test_proxy_answers_503_when_every_host_failed(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"down": True}, {"errors": {"500": 1.0}}))
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 503
        assert await r.json() == {"detail": "All servers unavailable for model m"}


async def test_proxy_answers_404_for_an_unknown_model(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=chat_body("nope"), headers=AUTH) as r:
        assert r.status == 404


async def test_proxy_sends_a_thinking_id_to_hosts_as_its_base_id(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    body = chat_body("m-thinking")
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=body, headers=AUTH) as r:
        assert r.status == 200
        assert (await r.json())["model"] == "m"


async def test_proxy_streams(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({"tokens": 3}))
    body = chat_body(stream=True)
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=body, headers=AUTH) as r:
        data = await sse_data(r)
    assert data[-1] == "[DONE]" and len(data) == 5


async def test_proxy_reaches_tls_hosts(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({"tls": True}))
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 200


async def test_proxy_needs_a_key(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(f"{net.gateway_url}/v1/chat/completions", json=chat_body()) as r:
        assert r.status == 401


# -- gateway faults -----------------------------------------------------------------------------------


async def test_gateway_fault_500(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    net.set_gateway(fault="500")
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        assert r.status == 500


async def test_gateway_fault_html(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    net.set_gateway(fault="html")
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        assert r.status == 200 and r.content_type == "text/html"


async def test_gateway_fault_invalid_json(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    net.set_gateway(fault="invalid_json")
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        assert r.content_type == "application/json"
        with pytest.raises(ValueError):
            json.loads(await r.text())


async def test_gateway_fault_hang(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    net.set_gateway(fault="hang")
    with pytest.raises(TimeoutError):
        await http.get(f"{net.gateway_url}/libertai/models", timeout=aiohttp.ClientTimeout(total=0.3))


async def test_gateway_recovers_when_the_fault_is_cleared(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    net.set_gateway(fault="500")
    net.set_gateway(fault="ok")
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        assert r.status == 200


async def test_gateway_fault_from_the_scenario(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}, gateway={"fault": "500"}))
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        assert r.status == 500


# -- control over HTTP ---------------------------------------------------------------------------------


async def test_a_host_is_changed_over_http(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(f"{net.gateway_url}/_sim/hosts/h0", json={"down": True}) as r:
        assert r.status == 200
        state = await r.json()
    assert state["down"] is True and state["behaviour"]["down"] is True
    async with http.get(f"{net.host_url('h0')}/health/m") as r:
        assert r.status == 503


async def test_a_bad_change_over_http_is_422(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(f"{net.gateway_url}/_sim/hosts/h0", json={"speed": 3}) as r:
        assert r.status == 422
        assert "unknown key 'speed'" in (await r.json())["detail"]
    async with http.post(f"{net.gateway_url}/_sim/hosts/nope", json={"down": True}) as r:
        assert r.status == 404


async def test_the_gateway_is_changed_over_http(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(f"{net.gateway_url}/_sim/gateway", json={"fault": "500"}) as r:
        assert (await r.json())["fault"] == "500"
    async with http.get(f"{net.gateway_url}/libertai/models") as r:
        assert r.status == 500
    async with http.get(f"{net.gateway_url}/_sim/hosts") as r:
        assert r.status == 200  # control and ground truth are never faulted


async def test_a_tls_host_is_given_a_new_certificate_over_http(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"tls": True}, {}))
    before = net.tls_cert_pem
    async with http.post(f"{net.gateway_url}/_sim/hosts/h0/certificate") as r:
        assert r.status == 200
        renewed = await r.json()
    first = hashlib.sha256(ssl.PEM_cert_to_DER_cert(before.decode())).hexdigest()
    assert renewed["name"] == "h0" and len(renewed["sha256"]) == 64 and renewed["sha256"] != first
    async with http.post(f"{net.gateway_url}/_sim/hosts/h1/certificate") as r:
        assert r.status == 422 and "does not serve TLS" in (await r.json())["detail"]
    async with http.post(f"{net.gateway_url}/_sim/hosts/nope/certificate") as r:
        assert r.status == 404
