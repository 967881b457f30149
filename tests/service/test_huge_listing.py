"""A huge listing is applied, walked and ranked in steps: the event loop keeps turning.
No timings: the tests count the turns other tasks got and where ranking ran."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest

from monitor import slices
from monitor.config_load import load_settings
from monitor.core import ranking, steps
from monitor.core.answer import HOSTS, Answer, AnswerKey
from monitor.core.clock import FakeClock
from monitor.core.results import ProbeKind
from monitor.core.snapshot import Snapshot
from monitor.core.steps import finish
from monitor.parts.dispatcher import Dispatcher
from monitor.parts.fleet import SYNC_STEP
from monitor.parts.targets import HOST_WIDE, Target
from monitor.service import Monitor
from monitor.slices import run_in_slices
from monitor.web import api
from monitor.web.api import make_app
from tests.turns import Turns


def _body(snap: Snapshot, key: AnswerKey, gzipped: bool = False) -> bytes:
    """An answer's bytes, built at once."""
    answer = steps.finish(snap.answer(key, gzipped))
    assert answer is not None
    return answer.body


SERVERS = 3 * SYNC_STEP


def _monitor() -> Monitor:
    settings = load_settings(
        environ={
            "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*",
            "LIBERTAI_API_KEY": "sk-test-0123456789",
        }
    )
    return Monitor(settings, clock=FakeClock())


def _listing(servers: int, models: int = 2) -> dict[str, list[str]]:
    per = servers // models
    return {f"m{m}": [f"http://127.0.{m}.{i // 250}:{1025 + i}" for i in range(per)] for m in range(models)}


async def test_applying_a_huge_listing_lets_other_tasks_run_throughout() -> None:
    m = _monitor()
    with Turns() as turns:
        changes = await run_in_slices(m.fleet.apply_listing(_listing(SERVERS), m.clock.time()), 0.0)
    assert len(changes) == SERVERS and len(m.fleet.health) == SERVERS
    assert turns.count >= SERVERS // SYNC_STEP  # at least one turn per walk step


async def test_the_stepped_apply_ends_as_the_one_shot_apply() -> None:
    stepped, at_once = _monitor(), _monitor()
    await run_in_slices(stepped.fleet.apply_listing(_listing(SERVERS), 1.0), 0.0)
    finish(at_once.fleet.apply_listing(_listing(SERVERS), 1.0))
    assert stepped.fleet.membership == at_once.fleet.membership
    assert stepped.fleet.health.keys() == at_once.fleet.health.keys()
    assert stepped.fleet.hosts_of("m1") == at_once.fleet.hosts_of("m1")


async def test_a_large_model_is_ranked_in_steps_between_turns_of_the_loop() -> None:
    m = _monitor()
    hosts = 5 * ranking.HOSTS_PER_STEP
    await run_in_slices(m.fleet.apply_listing(_listing(hosts, models=1), m.clock.time()), 0.0)
    await run_in_slices(m.publisher.publish(force=True), 0.0)  # the host views: built in steps of their own
    with Turns() as turns:
        await asyncio.sleep(0)
        before = turns.count
        await run_in_slices(m.publisher.publish(force=True), 0.0)  # nothing changed: only the ranking runs
    assert turns.count - before >= 5  # a turn at least every HOSTS_PER_STEP hosts
    assert m.snapshot.models["m0"].known == hosts


async def test_a_snapshot_built_in_steps_equals_one_built_at_once() -> None:
    stepped, at_once = _monitor(), _monitor()
    for m in (stepped, at_once):
        finish(m.fleet.apply_listing(_listing(2 * ranking.HOSTS_PER_STEP, models=2), 1.0))
    await run_in_slices(stepped.publisher.publish(force=True), 0.0)
    finish(at_once.publisher.publish(force=True))
    for key in (HOSTS, AnswerKey.best()):
        assert _body(stepped.snapshot, key) == _body(at_once.snapshot, key)


def _probing(m: Monitor) -> Dispatcher[Target]:
    """A dispatcher the fleet keeps its targets in (never run: nothing is probed)."""

    async def run(_target: Target) -> None:
        return None

    dispatcher: Dispatcher[Target] = Dispatcher(run, m.fleet.interval_of, limit=1, jitter=0.0, clock=m.clock)
    m.fleet.start_probing(dispatcher)
    return dispatcher


async def test_auth_checks_of_many_trusted_hosts_are_added_between_turns_of_the_loop() -> None:
    m = _monitor()
    dispatcher = _probing(m)
    listing = {
        f"m{m}": [f"http://127.0.0.1:{1025 + m * SERVERS + i}" for i in range(SERVERS)] for m in range(2)
    }
    checks = [(HOST_WIDE, h, ProbeKind.AUTH) for hosts in listing.values() for h in hosts]
    seen: list[int] = []

    async def watch() -> None:
        while True:
            await asyncio.sleep(0)
            seen.append(sum(c in dispatcher for c in checks))

    watcher = asyncio.get_running_loop().create_task(watch())
    await run_in_slices(m.fleet.apply_listing(listing, m.clock.time()), 0.0)
    watcher.cancel()
    assert all(c in dispatcher for c in checks)
    assert any(0 < n < len(checks) for n in seen)  # another task ran while they were being added


async def test_a_sync_listener_that_returns_steps_lets_the_loop_run_between_them() -> None:
    m = _monitor()
    at_steps: list[int] = []

    def listener(_models: set[str]) -> Iterator[None]:
        for _ in range(3):
            at_steps.append(turns.count)
            yield

    m.fleet.on_sync(listener)
    with Turns() as turns:
        await run_in_slices(m.fleet.apply_listing(_listing(SERVERS), m.clock.time()), 0.0)
    assert len(at_steps) == 3 and at_steps[0] < at_steps[1] < at_steps[2]


async def test_a_large_answer_is_encoded_between_turns_of_the_loop_and_reads_the_same(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = _monitor()
    finish(m.fleet.apply_listing(_listing(SERVERS, models=3), 1.0))
    finish(m.publisher.publish(force=True))
    expected = json.loads(_body(m.snapshot, HOSTS))  # built at once, on the previous snapshot
    finish(m.publisher.publish(force=True))  # a fresh snapshot: nothing encoded yet
    run_in_slices = slices.run_in_slices  # a turn of the loop after every step, however fast
    monkeypatch.setattr(api, "run_in_slices", lambda work: run_in_slices(work, 0.0))
    client = await aiohttp_client(make_app(m))
    with Turns() as turns:
        resp = await client.get("/v1/hosts")  # aiohttp's client asks for gzip
        body = await resp.read()
    assert resp.status == 200 and resp.headers["Content-Encoding"] == "gzip"
    assert json.loads(body) == expected and len(expected["hosts"]) == SERVERS
    assert turns.count >= SERVERS // 500  # a turn at least every slice of hosts encoded


def test_a_gzipped_answer_is_the_plain_one_compressed_the_same_every_time() -> None:
    m = _monitor()
    finish(m.fleet.apply_listing(_listing(SERVERS), 1.0))
    finish(m.publisher.publish(force=True))
    plain, packed = _body(m.snapshot, HOSTS), _body(m.snapshot, HOSTS, gzipped=True)
    assert gzip.decompress(packed) == plain
    finish(m.publisher.publish(force=True))
    assert _body(m.snapshot, HOSTS, gzipped=True) == packed  # same bytes: a stable strong ETag


async def test_an_answer_asked_for_by_many_clients_at_once_is_built_once(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = _monitor()
    finish(m.fleet.apply_listing(_listing(SERVERS), 1.0))
    finish(m.publisher.publish(force=True))
    builds: list[AnswerKey] = []
    answer = Snapshot.answer

    def counted(self: Snapshot, key: AnswerKey, gzipped: bool = False) -> steps.Steps[Answer | None]:
        builds.append(key)
        return answer(self, key, gzipped)

    monkeypatch.setattr(Snapshot, "answer", counted)
    run_in_slices = slices.run_in_slices  # a turn of the loop after every step: builds overlap
    monkeypatch.setattr(api, "run_in_slices", lambda work: run_in_slices(work, 0.0))
    client = await aiohttp_client(make_app(m))
    answers = await asyncio.gather(*(client.get("/v1/hosts") for _ in range(5)))
    bodies = {await a.read() for a in answers}
    assert len(bodies) == 1 and builds == [HOSTS]
