"""The service's parts on their own: the fleet's members and targets, and best-host events."""

from __future__ import annotations

from monitor.config import Settings
from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.keys import HostKey
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.parts.best_hosts import BestChanged, BestHosts, ranking_policy
from monitor.parts.dispatcher import Dispatcher
from monitor.parts.fleet import Fleet
from monitor.parts.recorder import Recorder, health_policy
from monitor.parts.targets import HOST_WIDE, Target, Targets

A, B = "http://127.0.0.1:1001", "http://127.0.0.1:1002"
T0 = 1_700_000_000.0


def _settings(**env: str) -> Settings:
    base = {"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    return load_settings(environ=base | {f"LIBERTAI_MONITOR_{k}": v for k, v in env.items()})


async def _nothing(target: Target) -> None:
    return None


def _probing_fleet(settings: Settings) -> tuple[Fleet, Dispatcher[Target]]:
    clock = FakeClock()
    fleet = Fleet(settings, Targets(settings, clock))
    dispatcher: Dispatcher[Target] = Dispatcher(_nothing, fleet.interval_of, limit=4, jitter=0.0, clock=clock)
    fleet.start_probing(dispatcher)
    return fleet, dispatcher


def test_an_alias_shares_its_base_entries_and_probes() -> None:
    fleet, dispatcher = _probing_fleet(_settings())
    finish(fleet.apply_listing({"hermes": [A], "hermes-thinking": [A]}, T0))
    assert set(fleet.health) == {("hermes", A)}
    assert fleet.aliases == {"hermes-thinking": "hermes"}
    expected = [
        ("hermes", A, ProbeKind.HEALTH),
        ("hermes", A, ProbeKind.COMPLETION),
        ("hermes", A, ProbeKind.THROUGHPUT),
        ("hermes", A, ProbeKind.IDENTITY),
        ("hermes", A, ProbeKind.PATHS),
        (HOST_WIDE, A, ProbeKind.AUTH),
    ]
    assert len(dispatcher) == 6 and all(t in dispatcher for t in expected)


def test_a_retired_host_loses_its_entry_and_its_probes() -> None:
    fleet, dispatcher = _probing_fleet(_settings(RETIRE_AFTER="0"))
    finish(fleet.apply_listing({"hermes": [A, B]}, T0))
    changes = finish(fleet.apply_listing({"hermes": [A]}, T0 + 60))
    assert {(c.host, c.event) for c in changes} == {(B, "left"), (B, "retired")}
    assert set(fleet.health) == {("hermes", A)}
    gone = [
        ("hermes", B, ProbeKind.HEALTH),
        ("hermes", B, ProbeKind.COMPLETION),
        ("hermes", B, ProbeKind.THROUGHPUT),
        ("hermes", B, ProbeKind.IDENTITY),
        ("hermes", B, ProbeKind.PATHS),
        (HOST_WIDE, B, ProbeKind.AUTH),
    ]
    assert len(dispatcher) == 6 and not any(t in dispatcher for t in gone)


def test_no_billed_probes_or_auth_checks_without_a_key() -> None:
    settings = load_settings(environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*"})
    fleet, dispatcher = _probing_fleet(settings)
    finish(fleet.apply_listing({"hermes": [A]}, T0))
    assert len(dispatcher) == 1 and ("hermes", A, ProbeKind.HEALTH) in dispatcher


def test_an_auth_check_counts_for_every_model_of_its_host() -> None:
    settings = _settings()
    fleet = Fleet(settings, Targets(settings, FakeClock()))
    finish(fleet.apply_listing({"hermes": [A], "gemma": [A]}, T0))
    recorder = Recorder(fleet, health_policy(settings), None)
    recorder.record(ProbeResult(HOST_WIDE, A, ProbeKind.AUTH, Outcome.KEY_REJECTED, T0, 401))
    assert (
        fleet.health[HostKey("hermes", A)].key_ok is False
        and fleet.health[HostKey("gemma", A)].key_ok is False
    )
    assert recorder.counts[(HOST_WIDE, A, "auth", "key_rejected")] == 1


def _up(fleet: Fleet, recorder: Recorder, host: str, ttft: float) -> None:
    for i in range(3):
        ok = ProbeResult("hermes", host, ProbeKind.COMPLETION, Outcome.OK, T0 + i, 200, 1.0, ttft, ttft + 5)
        recorder.record(ok)


def test_best_host_events_come_once_per_change() -> None:
    settings = _settings()
    fleet = Fleet(settings, Targets(settings, FakeClock()))
    finish(fleet.apply_listing({"hermes": [A, B]}, T0))
    recorder = Recorder(fleet, health_policy(settings), None)
    best = BestHosts(ranking_policy(settings))
    events: list[BestChanged] = []
    best.subscribe(events.append)
    hosts = [fleet.health[HostKey("hermes", h)] for h in (A, B)]
    finish(best.rank("hermes", hosts, T0))  # nobody up: no best yet, but the model is now known
    _up(fleet, recorder, A, 80.0)
    for _ in range(3):
        finish(best.rank("hermes", [fleet.health[HostKey("hermes", h)] for h in (A, B)], T0 + 10))
    assert [(e.previous, e.host, e.known) for e in events] == [(None, None, False), (None, A, True)]


def test_a_model_that_leaves_and_returns_is_chosen_for_anew() -> None:
    best = BestHosts(ranking_policy(_settings()))
    best.restore({"hermes": A, "gone": B}, {"hermes"})
    assert best.best == {"hermes": A}
    best.retain(set())
    assert best.best == {}


def test_identity_probes_go_only_where_completions_do_on_their_own_interval() -> None:
    fleet, dispatcher = _probing_fleet(_settings(IDENTITY_INTERVAL="7200"))
    finish(fleet.apply_listing({"hermes": [A], "flux-image": [A], "bge-small": [A]}, T0))
    assert ("hermes", A, ProbeKind.IDENTITY) in dispatcher
    assert ("flux-image", A, ProbeKind.IDENTITY) not in dispatcher
    assert ("bge-small", A, ProbeKind.IDENTITY) not in dispatcher
    assert fleet.interval_of(("hermes", A, ProbeKind.IDENTITY)) == 7200
    free, free_dispatcher = _probing_fleet(_settings(COMPLETION_PROBES="false"))
    finish(free.apply_listing({"hermes": [A]}, T0))
    assert ("hermes", A, ProbeKind.IDENTITY) not in free_dispatcher
