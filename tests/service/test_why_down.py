"""Why a host is down, as `/v1/hosts` says it: the last failing probe's kind, status, short error and
since when; and, when the gateway rejects the monitor's key itself, that the key is at fault, not
the hosts. A monitor on a fake clock, fed probe results through its recorder."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

from monitor.config_load import load_settings
from monitor.core.answer import HOSTS
from monitor.core.clock import FakeClock
from monitor.core.failure import failure_of
from monitor.core.host_view import iso
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.secret import Secret
from monitor.core.steps import finish
from monitor.core.urls import AllowList
from monitor.probe.http import make_session
from monitor.probe.prober import Prober
from monitor.service import Monitor

A, B = "http://127.0.0.1:1001", "http://127.0.0.1:1002"
KEY = "sk-live-TOPSECRET-9f8e7d6c5b4a3210"
GATEWAY_WORDS = "the monitor's API key is rejected by the gateway"


class _Fed:
    """A monitor of `hermes` on A and B, whose results the test hands to the recorder."""

    def __init__(self, hosts: tuple[str, ...] = (A, B)) -> None:
        settings = load_settings(
            environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": KEY}
        )
        self.clock = FakeClock()
        self.monitor = Monitor(settings, clock=self.clock)
        finish(self.monitor.fleet.apply_listing({"hermes": list(hosts)}, self.clock.time()))

    def record(self, result: ProbeResult) -> float:
        self.monitor.recorder.record(result)
        at = result.started_at
        self.clock.spend(1.0)
        return at

    def probe(
        self, host: str, kind: ProbeKind, outcome: Outcome, status: int | None = None, detail: str = ""
    ) -> float:
        at = self.clock.time()
        return self.record(ProbeResult("hermes", host, kind, outcome, at, status, detail=detail))

    def hosts(self) -> dict[str, dict[str, Any]]:
        """`/v1/hosts` as sent, by host URL."""
        finish(self.monitor.publisher.publish(force=True))
        sent = finish(self.monitor.snapshot.answer(HOSTS))
        assert sent is not None
        return {h["url"]: h for h in json.loads(sent.body)["hosts"]}


def test_a_down_host_says_which_probe_fails_with_what_and_since_when() -> None:
    fed = _Fed()
    fed.probe(A, ProbeKind.COMPLETION, Outcome.OK, 200)
    first = fed.probe(A, ProbeKind.COMPLETION, Outcome.SERVER_ERROR, 503, "HTTP 503: Model overloaded")
    last = fed.probe(A, ProbeKind.COMPLETION, Outcome.SERVER_ERROR, 503, "HTTP 503: Model overloaded")
    entry = fed.hosts()[A]
    assert (entry["state"], entry["reason"]) == ("down", "server_error")
    assert entry["last_failure"] == {
        "kind": "completion",
        "status": 503,
        "error": "Model overloaded",
        "at": iso(last),
    }
    assert entry["failing_since"] == iso(first)


def test_a_timeout_has_no_status() -> None:
    fed = _Fed()
    for _ in range(2):
        fed.probe(A, ProbeKind.HEALTH, Outcome.TIMEOUT, None, "TimeoutError")
    failure = fed.hosts()[A]["last_failure"]
    assert (failure["kind"], failure["status"], failure["error"]) == ("health", None, "TimeoutError")


def test_a_host_that_never_failed_has_no_failure_to_show() -> None:
    fed = _Fed()
    fed.probe(B, ProbeKind.COMPLETION, Outcome.OK, 200)
    entry = fed.hosts()[B]
    assert entry["last_failure"] is None and entry["failing_since"] is None


def _refused_everywhere(fed: _Fed) -> None:
    for host in (A, B):
        for _ in range(2):
            fed.probe(host, ProbeKind.COMPLETION, Outcome.KEY_REJECTED, 401, "HTTP 401: Invalid API key")


def test_hosts_that_refuse_a_key_the_gateway_rejects_are_not_blamed() -> None:
    fed = _Fed()
    fed.monitor.gateway.key_outcome = Outcome.KEY_REJECTED
    _refused_everywhere(fed)
    for entry in fed.hosts().values():
        assert entry["reason"] == "key_rejected"
        assert entry["key_ok"] is None
        assert entry["last_failure"]["error"] == GATEWAY_WORDS
        assert entry["last_failure"]["status"] == 401


def test_a_host_that_refuses_a_key_the_gateway_accepts_is_blamed() -> None:
    fed = _Fed()
    fed.monitor.gateway.key_outcome = Outcome.OK
    _refused_everywhere(fed)
    entry = fed.hosts()[A]
    assert entry["key_ok"] is False and entry["last_failure"]["error"] == "Invalid API key"


def test_readiness_says_the_gateway_rejects_the_key() -> None:
    fed = _Fed()
    fed.monitor.gateway.key_outcome = Outcome.KEY_REJECTED
    assert fed.monitor.readiness().checks["api_key"] == "rejected by the gateway"


def _hostile_app() -> web.Application:
    """A host that echoes the Authorization header it got back in its error bodies, plainly,
    hidden by zero-width characters, and as an OpenAI error message."""

    async def echo(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ")
        hidden = "\u200b".join(key)
        if request.path.endswith("/completions"):
            return web.json_response({"detail": f"Invalid API key {auth} ({key}; {hidden})"}, status=401)
        return web.json_response({"error": {"message": f"you sent {hidden} and {key[::1]}"}}, status=403)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def test_the_error_text_never_holds_the_key_a_hostile_host_echoes(aiohttp_server: Any) -> None:
    server = await aiohttp_server(_hostile_app())
    host = str(server.make_url("")).rstrip("/")
    fed = _Fed((host,))
    session: aiohttp.ClientSession = make_session(ca_bundle=None, limit=4, user_agent="test")
    try:
        prober = Prober(session, Secret(KEY), 2.0, allow=AllowList.parse("http://127.0.0.1:*"))
        kinds = (ProbeKind.COMPLETION, ProbeKind.EMBEDDING, ProbeKind.AUTH) * 2
        results = [await prober.probe(kind, host, "hermes") for kind in kinds]
        for result in results:
            fed.record(result)
    finally:
        await session.close()
    finish(fed.monitor.publisher.publish(force=True))
    sent = finish(fed.monitor.snapshot.answer(HOSTS))
    assert sent is not None
    body = sent.body.decode()
    entry = json.loads(body)["hosts"][0]
    assert entry["last_failure"]["status"] in (401, 403) and entry["last_failure"]["error"]
    # Each probe's error text, with the spaces that stand for zero-width characters taken out.
    squeezed = ["".join(failure_of(r).error.split()) for r in results]
    for i in range(len(KEY) - 7):
        assert KEY[i : i + 8] not in body, f"key fragment {i} in /v1/hosts"
        assert not any(KEY[i : i + 8] in text for text in squeezed), f"key fragment {i} hidden in an error"
