"""The throughput probe in the one probe pipeline: a target of the dispatcher, made only of up
hosts, taken in by the recorder (shown, never health evidence, never stored) and rendered."""

from __future__ import annotations

from monitor.config import Settings
from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.keys import HostKey
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.core.throughput import Throughput
from monitor.parts.dispatcher import Dispatcher
from monitor.parts.fleet import Fleet
from monitor.parts.recorder import Recorder, health_policy
from monitor.parts.target_runner import TargetRunner
from monitor.parts.targets import Target, Targets, first_within, interval_of
from monitor.service import Monitor

A, B = "http://127.0.0.1:1001", "http://127.0.0.1:1002"
T0 = 1_700_000_000.0
FAST = Throughput(16, 80.0, 12.5)


def _settings(**env: str) -> Settings:
    base = {"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    return load_settings(environ=base | {f"LIBERTAI_MONITOR_{k}": v for k, v in env.items()})


async def _nothing(target: Target) -> None:
    return None


def _probing_fleet(settings: Settings) -> tuple[Fleet, Dispatcher[Target]]:
    clock = FakeClock()
    fleet = Fleet(settings, Targets(settings, clock), quiet=True)
    dispatcher: Dispatcher[Target] = Dispatcher(_nothing, fleet.interval_of, limit=4, jitter=0.0, clock=clock)
    fleet.start_probing(dispatcher)
    return fleet, dispatcher


def _measured(host: str = A, m: Throughput | None = FAST, outcome: Outcome = Outcome.OK) -> ProbeResult:
    return ProbeResult("hermes", host, ProbeKind.THROUGHPUT, outcome, T0, 200, throughput=m)


def _up(recorder: Recorder, host: str = A) -> None:
    for i in range(3):
        ok = ProbeResult("hermes", host, ProbeKind.COMPLETION, Outcome.OK, T0 + i, 200, 1.0, 80.0, 85.0)
        recorder.record(ok)


def test_only_members_with_completion_probes_get_a_throughput_probe() -> None:
    settings = _settings(EMBEDDING_MODELS="bge-*", HEALTH_ONLY_MODELS="z-image-*")
    fleet, dispatcher = _probing_fleet(settings)
    finish(fleet.apply_listing({"hermes": [A], "bge-m3": [A], "z-image-turbo": [A]}, T0))
    assert ("hermes", A, ProbeKind.THROUGHPUT) in dispatcher
    assert ("bge-m3", A, ProbeKind.THROUGHPUT) not in dispatcher
    assert ("z-image-turbo", A, ProbeKind.THROUGHPUT) not in dispatcher


def test_no_throughput_probe_without_a_key() -> None:
    settings = load_settings(environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*"})
    fleet, dispatcher = _probing_fleet(settings)
    finish(fleet.apply_listing({"hermes": [A]}, T0))
    assert ("hermes", A, ProbeKind.THROUGHPUT) not in dispatcher


def test_throughput_is_probed_every_throughput_interval_even_of_a_down_host() -> None:
    settings = _settings(THROUGHPUT_INTERVAL="1800", DOWN_PROBE_INTERVAL="5")
    fleet, _ = _probing_fleet(settings)
    finish(fleet.apply_listing({"hermes": [A]}, T0))
    recorder = Recorder(fleet, health_policy(settings), None)
    for i in range(3):
        recorder.record(ProbeResult("hermes", A, ProbeKind.HEALTH, Outcome.CONNECT_ERROR, T0 + i))
    h = fleet.health[HostKey("hermes", A)]
    assert h.state is HostState.DOWN
    assert interval_of(ProbeKind.THROUGHPUT, h, settings) == 1800.0
    assert fleet.interval_of(("hermes", A, ProbeKind.THROUGHPUT)) == 1800.0


def test_a_new_members_first_throughput_probe_comes_within_30_s() -> None:
    assert first_within(ProbeKind.THROUGHPUT, 100_000, _settings(THROUGHPUT_INTERVAL="1800")) == 30.0
    assert first_within(ProbeKind.THROUGHPUT, 1, _settings(THROUGHPUT_INTERVAL="10")) == 10.0


class _CountingProber:
    def __init__(self) -> None:
        self.made: list[tuple[ProbeKind, str]] = []

    async def auth(self, host: str, model: str) -> ProbeResult:
        return await self.probe(ProbeKind.AUTH, host, model)

    async def probe(self, kind: ProbeKind, host: str, model: str, *, reasoning: bool = False) -> ProbeResult:
        self.made.append((kind, host))
        return ProbeResult(model, host, kind, Outcome.OK, T0, 200, throughput=FAST)


async def test_a_throughput_probe_is_made_only_of_an_up_host() -> None:
    settings = _settings()
    fleet = Fleet(settings, Targets(settings, FakeClock()), quiet=True)
    finish(fleet.apply_listing({"hermes": [A, B]}, T0))
    recorder = Recorder(fleet, health_policy(settings), None)
    _up(recorder, A)
    prober = _CountingProber()
    runner = TargetRunner(prober, fleet, recorder, fleet.targets, 1.0)
    await runner.run(("hermes", A, ProbeKind.THROUGHPUT))
    await runner.run(("hermes", B, ProbeKind.THROUGHPUT))  # unknown yet: billed for nothing
    assert prober.made == [(ProbeKind.THROUGHPUT, A)]
    assert recorder.throughput == {("hermes", A): FAST}


class _Sink:
    def __init__(self) -> None:
        self.got: list[ProbeResult] = []

    def submit(self, result: ProbeResult) -> None:
        self.got.append(result)


def test_a_measurement_is_kept_but_neither_health_evidence_nor_counted_nor_stored() -> None:
    settings = _settings()
    fleet = Fleet(settings, Targets(settings, FakeClock()), quiet=True)
    finish(fleet.apply_listing({"hermes": [A]}, T0))
    sink = _Sink()
    recorder = Recorder(fleet, health_policy(settings), sink)
    before = fleet.health[HostKey("hermes", A)]
    assert recorder.record(_measured()) is False
    assert recorder.record(_measured(outcome=Outcome.SERVER_ERROR, m=None)) is False  # no confirmation
    assert recorder.throughput == {("hermes", A): FAST}
    assert fleet.health[HostKey("hermes", A)] is before
    assert not recorder.counts and not sink.got


def test_a_failed_measurement_leaves_the_last_one_shown() -> None:
    settings = _settings()
    fleet = Fleet(settings, Targets(settings, FakeClock()), quiet=True)
    finish(fleet.apply_listing({"hermes": [A]}, T0))
    recorder = Recorder(fleet, health_policy(settings), None)
    recorder.record(_measured())
    recorder.record(_measured(outcome=Outcome.TIMEOUT, m=None))
    recorder.record(_measured(m=Throughput(1, None, None)))  # too short a stream to measure
    assert recorder.throughput == {("hermes", A): FAST}


def test_a_retired_members_measurement_is_forgotten() -> None:
    monitor = Monitor(_settings(RETIRE_AFTER="0"))
    finish(monitor.fleet.apply_listing({"hermes": [A, B]}, T0))
    monitor.recorder.record(_measured(A))
    monitor.recorder.record(_measured(B))
    finish(monitor.fleet.apply_listing({"hermes": [A]}, T0 + 60))
    assert set(monitor.recorder.throughput) == {("hermes", A)}


def test_the_answers_show_the_recorders_measurement() -> None:
    monitor = Monitor(_settings())
    finish(monitor.fleet.apply_listing({"hermes": [A, B]}, T0))
    monitor.recorder.record(_measured(A))
    finish(monitor.publisher.publish(force=True))
    views = {h.url: h for h in monitor.snapshot.models["hermes"].hosts}
    assert (views[A].tokens_per_s, views[A].inter_token_ms_p50) == (80.0, 12.5)
    assert (views[B].tokens_per_s, views[B].inter_token_ms_p50) == (None, None)


class _SoonTargets:
    def __init__(self) -> None:
        self.extra: list[tuple[Target, float]] = []

    def soon(self, target: Target, delay: float) -> None:
        self.extra.append((target, delay))


async def test_a_skipped_throughput_turn_is_tried_again_once_before_its_interval() -> None:
    settings = _settings()
    clock = FakeClock()
    fleet = Fleet(settings, Targets(settings, clock), quiet=True)
    finish(fleet.apply_listing({"hermes": [A]}, T0))
    recorder = Recorder(fleet, health_policy(settings), None)
    prober = _CountingProber()
    targets = _SoonTargets()
    runner = TargetRunner(prober, fleet, recorder, targets, 1.0, retry_after=300.0, clock=clock)  # type: ignore[arg-type]
    target = ("hermes", A, ProbeKind.THROUGHPUT)
    await runner.run(target)  # not up yet: skipped, tried again in 300 s
    await runner.run(target)  # a retry is pending already: none more
    assert prober.made == [] and targets.extra == [(target, 300.0)]
    _up(recorder, A)
    await runner.run(target)
    assert prober.made == [(ProbeKind.THROUGHPUT, A)] and len(targets.extra) == 1


def test_failed_identity_and_paths_probes_never_take_a_host_down() -> None:
    settings = _settings()
    fleet = Fleet(settings, Targets(settings, FakeClock()), quiet=True)
    finish(fleet.apply_listing({"hermes": [A]}, T0))
    recorder = Recorder(fleet, health_policy(settings), None)
    _up(recorder, A)
    for kind in (ProbeKind.IDENTITY, ProbeKind.PATHS) * 3:
        assert recorder.record(ProbeResult("hermes", A, kind, Outcome.INVALID_REQUEST, T0, 400)) is False
    assert fleet.health[HostKey("hermes", A)].state is HostState.UP
