"""Notifications end to end: probe results into the recorder, messages out through Apprise's
`json://` URL to a webhook receiver of the test."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from monitor.config import ConfigError, Settings
from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.notices import Notices
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.secret import Secret
from monitor.core.snapshot import DiscoveryStatus
from monitor.core.steps import finish
from monitor.parts.certs import CertChanged
from monitor.parts.fleet import Fleet
from monitor.parts.notifier import Notifier, apprise_sender
from monitor.parts.recorder import Recorder, health_policy
from monitor.parts.targets import Targets

pytest.importorskip("apprise")

A, B = "http://127.0.0.1:1001", "http://127.0.0.1:1002"
SECRET = "S3CR3T-TOKEN-42"


@dataclass
class Receiver:
    """A webhook receiver: answers the statuses in `failures` first, then 200."""

    failures: list[int] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.failures:
            return web.Response(status=self.failures.pop(0))
        self.messages.append(await request.json())
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", r.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    r.port = server.port
    yield r
    await server.close()


@dataclass
class NoGateway:
    status: DiscoveryStatus = field(default_factory=DiscoveryStatus)
    key_outcome: Outcome | None = None
    key_blocked: str | None = None


async def _until(done: Callable[[], bool]) -> None:
    """Wait for Apprise's own workers (real I/O on loopback), at most 20 s."""
    async with asyncio.timeout(20):
        while not done():  # noqa: ASYNC110 - the work is in Apprise's threads, not on this loop
            await asyncio.sleep(0.01)


async def _retrying_until(r: Rig, done: Callable[[], bool]) -> None:
    """As `_until`, moving the clock past each backoff the notifier waits."""
    async with asyncio.timeout(20):
        while not done():
            if r.clock.sleepers:
                await r.clock.advance(60)
            else:
                await asyncio.sleep(0.01)


def _settings() -> Settings:
    return load_settings(environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*"})


@dataclass
class Rig:
    clock: FakeClock
    recorder: Recorder
    notifier: Notifier
    task: asyncio.Task[None]

    def probe(self, host: str, ok: bool, at: float) -> None:
        outcome = Outcome.OK if ok else Outcome.TIMEOUT
        self.recorder.record(
            ProbeResult("hermes", host, ProbeKind.COMPLETION, outcome, at, 200 if ok else None)
        )

    def twice(self, host: str, ok: bool) -> None:
        """Enough results to change the host's state (the default thresholds are 2)."""
        for _ in range(2):
            self.probe(host, ok, self.clock.time())


@pytest.fixture
async def rig(receiver: Receiver) -> AsyncIterator[Callable[..., Rig]]:
    tasks: list[asyncio.Task[None]] = []

    def make(url: str | None = None, attempts: int = 6, min_interval_s: float = 300.0) -> Rig:
        settings, clock = _settings(), FakeClock()
        fleet = Fleet(settings, Targets(settings, clock))
        finish(fleet.apply_listing({"hermes": [A, B]}, clock.time()))
        recorder = Recorder(fleet, health_policy(settings), None)
        send = apprise_sender(Secret(url or f"json://127.0.0.1:{receiver.port}/hook"))
        notices = Notices(min_interval_s=min_interval_s)
        notifier = Notifier(
            notices, send, clock, leading=lambda: True, public_url="https://status.example", attempts=attempts
        )
        recorder.on_state_change(notifier.note_state)
        task = asyncio.create_task(notifier.deliver_forever())
        tasks.append(task)
        r = Rig(clock, recorder, notifier, task)
        r.twice(A, True)
        r.twice(B, True)
        return r

    yield make
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_outage_sends_one_down_and_one_up_message(
    receiver: Receiver, rig: Callable[..., Rig]
) -> None:
    r = rig()
    await r.clock.advance(60)
    r.twice(A, False)
    await _until(lambda: r.notifier.counts["sent"] == 1)
    await r.clock.advance(600)
    r.twice(A, True)
    await _until(lambda: r.notifier.counts["sent"] == 2)
    down, up = receiver.messages
    assert down["title"] == f"Host down: hermes {A}" and "reason: timeout" in down["message"]
    assert "https://status.example/status/hermes" in down["message"]
    assert up["title"] == f"Host up again: hermes {A}"
    assert r.notifier.counts["sent"] == 2


async def test_a_flapping_host_gives_one_message_per_interval_with_a_count(
    receiver: Receiver, rig: Callable[..., Rig]
) -> None:
    r = rig()
    for ok in (False, True, False, True, False):
        await r.clock.advance(10)
        r.twice(A, ok)
    await _until(lambda: r.notifier.counts["sent"] == 1)  # the first change, at once
    await r.clock.advance(300)
    r.notifier.look(NoGateway(), r.clock.time())
    await _until(lambda: r.notifier.counts["sent"] == 2)
    held = receiver.messages[1]
    assert held["title"] == f"Flapping: hermes {A}"  # down again, as last announced
    assert "now: down" in held["message"] and "changes: 4 since the last message" in held["message"]
    assert r.notifier.counts["sent"] == 2


async def test_a_notifier_that_fails_then_works_still_delivers(
    receiver: Receiver, rig: Callable[..., Rig]
) -> None:
    r = rig()
    receiver.failures = [500, 500, 503]
    r.twice(A, False)
    await _retrying_until(r, lambda: r.notifier.counts["sent"] == 1)
    assert len(receiver.messages) == 1
    assert r.notifier.counts == {"retried": 3, "sent": 1}


async def test_a_message_never_delivered_is_dropped_and_counted(
    receiver: Receiver, rig: Callable[..., Rig]
) -> None:
    r = rig(attempts=2)
    receiver.failures = [500, 500]
    r.twice(A, False)
    await _retrying_until(r, lambda: r.notifier.counts["dropped"] == 1)
    assert receiver.messages == []


async def test_the_url_secret_is_never_in_logs_metrics_or_errors(
    receiver: Receiver, rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.failures = [500, 500]
    with capture_logs() as logs:
        r = rig(url=f"json://user:{SECRET}@127.0.0.1:{receiver.port}/{SECRET}/", attempts=2)
        r.twice(A, False)
        await _retrying_until(r, lambda: r.notifier.counts["dropped"] == 1)
    assert any(e["event"] == "notification dropped after retries" for e in logs)
    ours = [rec.getMessage() for rec in caplog.records if rec.name != "aiohttp.access"]  # not the receiver's
    assert SECRET not in repr(logs) and SECRET not in repr(ours)
    assert SECRET not in repr(dict(r.notifier.counts))
    settings = load_settings(environ={"LIBERTAI_MONITOR_NOTIFY_URLS": f"tgram://{SECRET}/1"})
    assert SECRET not in repr(settings) and SECRET not in str(settings.notify_urls)
    with pytest.raises(ConfigError) as bad:
        load_settings(environ={"LIBERTAI_MONITOR_NOTIFY_URLS": f"{SECRET}, json://x"})
    assert SECRET not in str(bad.value)


async def test_a_blocked_key_is_announced_once_with_its_reason(
    receiver: Receiver, rig: Callable[..., Rig]
) -> None:
    r = rig()
    blocked = NoGateway(key_outcome=Outcome.OK, key_blocked="No credits.")
    r.notifier.look(blocked, r.clock.time())
    r.notifier.look(blocked, r.clock.time() + 60)
    await _until(lambda: r.notifier.counts["sent"] == 1)
    [message] = receiver.messages
    assert message["title"] == "API key blocked" and "reason: No credits." in message["message"]


async def test_a_pinned_hosts_changed_certificate_tells_the_operator_what_to_run(
    receiver: Receiver, rig: Callable[..., Rig]
) -> None:
    r = rig()
    r.notifier.note_cert(CertChanged(r.clock.time(), "hermes", A, "a" * 64, "b" * 64, trusted=False))
    await _until(lambda: r.notifier.counts["sent"] == 1)
    [message] = receiver.messages
    assert message["title"] == f"Certificate changed: {A}"
    assert f"libertai-monitor certs accept {A}" in message["message"]
