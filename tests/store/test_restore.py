"""A restart's read of recent results (`Store.load_recent_evidence`) and the health the monitor
rebuilds from it (`Monitor.prepare`)."""

from __future__ import annotations

import random
import time
from dataclasses import replace

from monitor.config_load import load_settings
from monitor.core.health import HostHealth, apply, new_host
from monitor.core.keys import HostKey
from monitor.core.membership import MembershipChange
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.service import Monitor
from monitor.store import Store

from .conftest import T0

A, B, C = (f"https://{x}.libertai.io" for x in "abc")
STRANGER = "https://stranger.example.org"  # outside the allow-list: untrusted
KINDS = list(ProbeKind)
OUTCOMES = [Outcome.OK] * 5 + [Outcome.TIMEOUT, Outcome.SERVER_ERROR, Outcome.NOT_LOADED, Outcome.UNSUPPORTED]


def as_evidence(r: ProbeResult) -> tuple[tuple[str, str], tuple[object, ...]]:
    return ((r.model, r.host), (r.started_at, r.kind, r.outcome, r.ttft_ms, r.total_ms))


def random_history(rng: random.Random, start: float, n: int) -> list[ProbeResult]:
    """Results of every kind and several outcomes for a few (model, host) pairs; many share a
    millisecond, so the order of ties matters."""
    pairs = [("llama-3", A), ("llama-3", B), ("qwen", A), ("qwen", STRANGER), ("retired-model", A)]
    out = []
    for _ in range(n):
        model, host = rng.choice(pairs)
        at = start + rng.randrange(0, 3000) / 10
        ttft = rng.choice([None, float(rng.randrange(50, 900))])
        out.append(
            ProbeResult(model, host, rng.choice(KINDS), rng.choice(OUTCOMES), at, 200, 1.0, ttft, 40.0)
        )
    return out


async def test_recent_evidence_is_what_recent_results_says_in_the_same_order(store: Store) -> None:
    results = random_history(random.Random(7), T0, 600)
    for r in results:
        store.submit(r)
    await store.flush()
    expected = [as_evidence(r) for r in await store.load_recent_results(T0 + 10, per_host_limit=15)]
    assert await store.load_recent_evidence(T0 + 10, per_host_limit=15) == expected


async def test_recent_evidence_is_empty_without_results(store: Store) -> None:
    assert await store.load_recent_evidence(0) == []


def restored_one_by_one(
    results: list[ProbeResult], health: dict[HostKey, HostHealth], monitor: Monitor
) -> dict[HostKey, HostHealth]:
    """Every stored result applied in turn, as the live monitor does: a host's auth check (stored
    once, under any one of its models) goes to every model the host serves."""
    health = dict(health)
    models_of_host: dict[str, list[str]] = {}
    for model, host in health:
        models_of_host.setdefault(host, []).append(model)
    for r in results:
        key = HostKey(r.model, r.host)
        if r.kind is ProbeKind.AUTH:
            for model in models_of_host.get(r.host, ()):
                health[HostKey(model, r.host)] = apply(
                    health[HostKey(model, r.host)], r, monitor.health_policy
                )
        elif key in health:
            health[key] = apply(health[key], r, monitor.health_policy)
    return health


async def test_restart_rebuilds_the_health_that_applying_each_stored_result_live_gives(
    store: Store, db_url: str
) -> None:
    now = time.time()
    members = [("llama-3", A), ("llama-3", B), ("qwen", A), ("qwen", STRANGER), ("qwen", C)]
    await store.record_membership([MembershipChange(now - 3600, m, h, "joined") for m, h in members])
    # The host's auth checks were stored under a model it no longer serves.
    await store.record_membership([MembershipChange(now - 3600, "retired-model", A, "left")])
    for r in random_history(random.Random(11), now - 600, 1500):
        store.submit(r)
    await store.flush()
    settings = load_settings(
        environ={
            "LIBERTAI_MONITOR_DATABASE_URL": db_url,
            "LIBERTAI_MONITOR_ALLOWED_HOSTS": "https://*.libertai.io",
            "LIBERTAI_API_KEY": "sk-test",
            "LIBERTAI_MONITOR_WINDOW": "20",
        }
    )
    monitor = Monitor(settings, store)
    await monitor.prepare()
    try:
        stored = await store.load_recent_results(now - 24 * 3600, per_host_limit=settings.window)
        fresh = {key: new_host(*key, trusted=h.trusted) for key, h in monitor.health.items()}
        live = restored_one_by_one(stored, fresh, monitor)
        # The store keeps outcomes, not error texts: a restored host has no last failure to show.
        forgotten = {k: replace(h, liveness_failure=None, serving_failure=None) for k, h in live.items()}
        assert monitor.health == forgotten
        assert monitor.health[HostKey("qwen", A)].samples  # the comparison is not between empty hosts
        assert not monitor.health[HostKey("qwen", STRANGER)].trusted
    finally:
        await monitor.stop()
