"""Publishing the snapshot in steps: the event loop keeps reading probe answers meanwhile, and a
rebuild that is interrupted or overtaken by new results loses nothing."""

from __future__ import annotations

import asyncio

from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.service import Monitor
from monitor.slices import run_in_slices

MODELS = ("alpha", "beta", "gamma")
HOSTS_PER_MODEL = 400


def _host(model: int, i: int) -> str:
    return f"http://127.0.0.1:{10000 + model * 1000 + i}"


def _monitor() -> Monitor:
    settings = load_settings(
        environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    )
    m = Monitor(settings, clock=FakeClock())
    listing = {model: [_host(j, i) for i in range(HOSTS_PER_MODEL)] for j, model in enumerate(MODELS)}
    finish(m.fleet.apply_listing(listing, m.clock.time()))
    return m


def _ok(model: str, host: str, ttft: float, at: float) -> ProbeResult:
    return ProbeResult(model, host, ProbeKind.COMPLETION, Outcome.OK, at, 200, 1.0, ttft, ttft + 5)


def _probe_all(m: Monitor, at: float) -> None:
    for j, model in enumerate(MODELS):
        for i in range(HOSTS_PER_MODEL):
            m.recorder.record(_ok(model, _host(j, i), 100.0 + i, at))


async def test_the_event_loop_gets_many_turns_during_one_publish() -> None:
    m = _monitor()
    _probe_all(m, m.clock.time() - 5)
    turns = 0
    done = False

    async def count_turns() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    await run_in_slices(m.publisher.publish(force=True), 0.0)
    done = True
    await counter
    # 1,200 host views in slices of at most 100, then one step per model.
    assert turns >= 1200 // 100 + len(MODELS)


async def test_publishing_in_slices_gives_the_same_answers_as_publishing_at_once() -> None:
    stepped, at_once = _monitor(), _monitor()
    at = stepped.clock.time() - 5
    _probe_all(stepped, at)
    _probe_all(at_once, at)
    await run_in_slices(stepped.publisher.publish(force=True), 0.0)
    finish(at_once.publisher.publish(force=True))
    assert stepped.snapshot.models == at_once.snapshot.models
    assert stepped.snapshot.models["alpha"].best == _host(0, 0)


async def test_results_recorded_during_a_publish_appear_in_the_next_one() -> None:
    m = _monitor()
    at = m.clock.time() - 5
    _probe_all(m, at)
    finish(m.publisher.publish(force=True))
    best = m.snapshot.models["beta"].best
    assert best == _host(1, 0)
    publishing = asyncio.create_task(run_in_slices(m.publisher.publish(force=True), 0.0))
    await asyncio.sleep(0)  # the publish has started and yielded
    for k in range(2):
        m.recorder.record(
            ProbeResult("beta", best, ProbeKind.COMPLETION, Outcome.SERVER_ERROR, at + 1 + k, 503)
        )
    await publishing
    await run_in_slices(m.publisher.publish(), 0.0)
    assert m.snapshot.models["beta"].best == _host(1, 1)


async def test_a_cancelled_publish_leaves_its_work_to_the_next_one() -> None:
    m = _monitor()
    _probe_all(m, m.clock.time() - 5)
    publishing = asyncio.create_task(run_in_slices(m.publisher.publish(), 0.0))
    for _ in range(3):
        await asyncio.sleep(0)
    publishing.cancel()
    await asyncio.gather(publishing, return_exceptions=True)
    assert m.snapshot.models == {}  # nothing half-built was swapped in

    await run_in_slices(m.publisher.publish(), 0.0)  # not forced: only the work left over
    assert set(m.snapshot.models) == set(MODELS)
    assert all(v.healthy == HOSTS_PER_MODEL for v in m.snapshot.models.values())
    assert all(h.samples == 1 for v in m.snapshot.models.values() for h in v.hosts)
