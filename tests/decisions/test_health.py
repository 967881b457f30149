"""The per-(model, host) health state machine: monitor.core.health."""

from __future__ import annotations

import enum
import gc
import time
from dataclasses import FrozenInstanceError, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.health import (
    HealthPolicy,
    HostHealth,
    apply,
    is_eligible,
    needs_confirmation,
    new_host,
    percentile,
    replay,
    replay_evidence,
    stats,
)
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult

MODEL = "hermes-3-8b"
HOST = "https://a.libertai.io"
POLICY = HealthPolicy()

H, A, C, E = ProbeKind.HEALTH, ProbeKind.AUTH, ProbeKind.COMPLETION, ProbeKind.EMBEDDING
OK = Outcome.OK


def result(
    kind: ProbeKind = H,
    outcome: Outcome = OK,
    at: float = 0.0,
    ttft: float | None = None,
    total: float | None = None,
) -> ProbeResult:
    return ProbeResult(MODEL, HOST, kind, outcome, started_at=at, ttft_ms=ttft, total_ms=total)


def feed(
    h: HostHealth,
    *steps: tuple[ProbeKind, Outcome],
    start: float = 0.0,
    every: float = 1.0,
    policy: HealthPolicy = POLICY,
) -> HostHealth:
    """Apply (kind, outcome) steps at start, start + every, ..."""
    for i, (kind, outcome) in enumerate(steps):
        h = apply(h, result(kind, outcome, at=start + i * every), policy)
    return h


def fresh() -> HostHealth:
    return new_host(MODEL, HOST, trusted=True)


def up_host(at: float = 0.0) -> HostHealth:
    return feed(fresh(), (H, OK), (C, OK), start=at)


# --- new hosts and trust -----------------------------------------------------------------------


def test_new_host_is_unknown_with_reason_not_probed() -> None:
    h = fresh()
    assert (h.state, h.reason, list(h.samples), h.key_ok) == (HostState.UNKNOWN, Outcome.NOT_PROBED, [], None)
    assert h.last_probe_at is None and h.last_ok_at is None


def test_new_host_is_up_after_its_first_success() -> None:
    h = feed(fresh(), (H, OK))
    assert (h.state, h.reason) == (HostState.UP, OK)
    assert h.last_ok_at == 0.0


def test_untrusted_host_never_becomes_up() -> None:
    h = new_host(MODEL, HOST, trusted=False)
    h = feed(h, (H, OK), (C, OK), (C, OK), (A, OK))
    assert (h.state, h.reason) == (HostState.UNTRUSTED, Outcome.NOT_PROBED)
    assert list(h.samples) == [] and h.key_ok is None


def test_apply_does_not_change_its_input() -> None:
    h = fresh()
    apply(h, result(H, OK), POLICY)
    assert h.state is HostState.UNKNOWN
    with pytest.raises(FrozenInstanceError):
        h.state = HostState.UP  # type: ignore[misc]


# --- thresholds ---------------------------------------------------------------------------------


def test_one_failure_keeps_an_up_host_up() -> None:
    h = feed(up_host(), (H, Outcome.TIMEOUT), start=10)
    assert (h.state, h.reason) == (HostState.UP, OK)


def test_two_consecutive_failures_take_a_host_down() -> None:
    h = feed(up_host(), (C, Outcome.SERVER_ERROR), (C, Outcome.SERVER_ERROR), start=10)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.SERVER_ERROR)


def test_reason_is_the_last_failure_of_the_failing_group() -> None:
    h = feed(up_host(), (H, Outcome.TIMEOUT), (H, Outcome.CONNECT_ERROR), start=10)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.CONNECT_ERROR)


def test_failures_interrupted_by_a_success_of_the_same_group_do_not_take_a_host_down() -> None:
    h = feed(up_host(), (H, Outcome.TIMEOUT), (H, OK), (H, Outcome.TIMEOUT), start=10)
    assert h.state is HostState.UP


def test_failures_of_different_groups_do_not_add_up() -> None:
    h = feed(up_host(), (H, Outcome.TIMEOUT), (C, Outcome.SERVER_ERROR), start=10)
    assert h.state is HostState.UP


def test_down_host_needs_two_consecutive_successes_to_come_back() -> None:
    down = feed(up_host(), (H, Outcome.TIMEOUT), (H, Outcome.TIMEOUT), start=10)
    once = feed(down, (H, OK), start=20)
    assert once.state is HostState.DOWN
    assert feed(once, (H, OK), start=21).state is HostState.UP


def test_a_failure_between_recovery_successes_restarts_the_count() -> None:
    down = feed(up_host(), (H, Outcome.TIMEOUT), (H, Outcome.TIMEOUT), start=10)
    h = feed(down, (H, OK), (H, Outcome.TIMEOUT), (H, OK), start=20)
    assert h.state is HostState.DOWN


def test_custom_thresholds_are_honoured() -> None:
    policy = HealthPolicy(unhealthy_threshold=3, healthy_threshold=1)
    h = feed(up_host(), (H, Outcome.TIMEOUT), (H, Outcome.TIMEOUT), start=10, policy=policy)
    assert h.state is HostState.UP
    h = feed(h, (H, Outcome.TIMEOUT), start=12, policy=policy)
    assert h.state is HostState.DOWN
    assert feed(h, (H, OK), start=13, policy=policy).state is HostState.UP


def test_host_without_a_success_stays_unknown_until_the_threshold_then_goes_down() -> None:
    once = feed(fresh(), (H, Outcome.CONNECT_ERROR))
    assert (once.state, once.reason) == (HostState.UNKNOWN, Outcome.CONNECT_ERROR)
    twice = feed(once, (H, Outcome.CONNECT_ERROR), start=1)
    assert (twice.state, twice.reason) == (HostState.DOWN, Outcome.CONNECT_ERROR)


# --- groups: liveness and serving ----------------------------------------------------------------


def test_failing_completions_take_a_host_down_whatever_its_health_says() -> None:
    h = feed(up_host(), (C, Outcome.STREAM_ERROR), (H, OK), (C, Outcome.STREAM_ERROR), (H, OK), start=10)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.STREAM_ERROR)


def test_passing_health_check_does_not_bring_back_a_host_whose_completions_fail() -> None:
    down = feed(up_host(), (C, Outcome.SERVER_ERROR), (C, Outcome.SERVER_ERROR), start=10)
    h = feed(down, (H, OK), (H, OK), (H, OK), (H, OK), start=20)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.SERVER_ERROR)
    assert feed(h, (C, OK), (C, OK), start=30).state is HostState.UP


def test_serving_failure_is_the_reason_when_both_groups_fail() -> None:
    h = feed(up_host(), (H, Outcome.TIMEOUT), (H, Outcome.TIMEOUT), start=10)
    h = feed(h, (C, Outcome.RATE_LIMITED), (C, Outcome.RATE_LIMITED), start=20)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.RATE_LIMITED)
    # Later liveness failures do not take the reason back from the serving group.
    assert feed(h, (H, Outcome.TIMEOUT), start=30).reason is Outcome.RATE_LIMITED


def test_host_comes_back_only_when_every_failing_group_has_recovered() -> None:
    h = feed(up_host(), (H, Outcome.TIMEOUT), (H, Outcome.TIMEOUT), start=10)
    h = feed(h, (C, Outcome.SERVER_ERROR), (C, Outcome.SERVER_ERROR), start=20)
    h = feed(h, (C, OK), (C, OK), start=30)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.TIMEOUT)
    assert feed(h, (H, OK), (H, OK), start=40).state is HostState.UP


def test_not_loaded_host_is_down_with_reason_not_loaded() -> None:
    h = feed(up_host(), (H, Outcome.NOT_LOADED), (H, Outcome.NOT_LOADED), start=10)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.NOT_LOADED)


def test_new_host_whose_model_is_not_loaded_goes_down_with_reason_not_loaded() -> None:
    h = feed(fresh(), (H, Outcome.NOT_LOADED), (H, Outcome.NOT_LOADED))
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.NOT_LOADED)


def test_embedding_failures_count_as_serving_failures() -> None:
    h = feed(up_host(), (E, Outcome.SERVER_ERROR), (H, OK), (E, Outcome.SERVER_ERROR), start=10)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.SERVER_ERROR)


def test_rejected_auth_checks_take_a_host_down() -> None:
    h = feed(up_host(), (A, Outcome.KEY_REJECTED), (A, Outcome.KEY_REJECTED), start=10)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.KEY_REJECTED)
    assert feed(h, (A, OK), (A, OK), start=20).state is HostState.UP


def test_passing_auth_check_does_not_bring_back_a_host_whose_completions_fail() -> None:
    down = feed(up_host(), (C, Outcome.SERVER_ERROR), (C, Outcome.SERVER_ERROR), start=10)
    h = feed(down, (A, OK), (A, OK), (A, OK), start=20)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.SERVER_ERROR)
    assert h.key_ok is True


def test_passing_auth_check_does_not_interrupt_a_completion_failure_streak() -> None:
    h = feed(up_host(), (C, Outcome.SERVER_ERROR), (A, OK), (C, Outcome.SERVER_ERROR), start=10)
    assert (h.state, h.reason) == (HostState.DOWN, Outcome.SERVER_ERROR)


def test_passing_auth_check_alone_does_not_make_a_failing_new_host_up() -> None:
    h = feed(fresh(), (C, Outcome.SERVER_ERROR), (A, OK))
    assert (h.state, h.reason) == (HostState.UNKNOWN, Outcome.SERVER_ERROR)


# --- neutral outcomes and the key ---------------------------------------------------------------


def test_unsupported_auth_check_changes_nothing() -> None:
    h = up_host()
    after = apply(h, result(A, Outcome.UNSUPPORTED, at=50), POLICY)
    assert after.last_probe_at == 50
    assert after == replace(h, last_probe_at=50)


def test_unsupported_auth_check_leaves_key_ok_unknown() -> None:
    h = feed(fresh(), (A, Outcome.UNSUPPORTED), (A, Outcome.UNSUPPORTED))
    assert h.key_ok is None
    assert (h.state, h.reason, list(h.samples)) == (HostState.UNKNOWN, Outcome.NOT_PROBED, [])


def test_unsupported_answer_does_not_interrupt_a_failure_streak() -> None:
    h = feed(
        up_host(), (C, Outcome.SERVER_ERROR), (A, Outcome.UNSUPPORTED), (C, Outcome.SERVER_ERROR), start=10
    )
    assert h.state is HostState.DOWN


def test_not_probed_result_only_moves_last_probe_at() -> None:
    h = feed(fresh(), (H, Outcome.NOT_PROBED), start=7)
    assert (h.state, h.reason, h.last_probe_at) == (HostState.UNKNOWN, Outcome.NOT_PROBED, 7)
    assert list(h.samples) == []


def test_key_rejected_sets_key_ok_false() -> None:
    h = feed(up_host(), (C, Outcome.KEY_REJECTED), start=10)
    assert h.key_ok is False


def test_accepted_completion_sets_key_ok_true() -> None:
    h = feed(fresh(), (A, Outcome.KEY_REJECTED), (C, OK))
    assert h.key_ok is True


def test_passing_auth_check_sets_key_ok_true() -> None:
    assert feed(fresh(), (A, OK)).key_ok is True


def test_passing_health_check_says_nothing_about_the_key() -> None:
    assert feed(fresh(), (H, OK)).key_ok is None


def test_other_failures_leave_key_ok_as_it_was() -> None:
    h = feed(fresh(), (C, OK), (C, Outcome.TIMEOUT), (C, Outcome.SERVER_ERROR))
    assert h.key_ok is True


# --- samples and times --------------------------------------------------------------------------


def test_window_keeps_only_the_newest_samples() -> None:
    policy = HealthPolicy(window=3)
    h = feed(fresh(), *[(H, OK)] * 5, policy=policy)
    assert [s.at for s in h.samples] == [2.0, 3.0, 4.0]


def test_window_of_one_keeps_the_last_sample_of_each_kind() -> None:
    policy = HealthPolicy(window=1)
    h = feed(fresh(), (H, OK), (C, OK), (C, Outcome.TIMEOUT), policy=policy)
    assert [(s.kind, s.outcome) for s in h.samples] == [(H, OK), (C, Outcome.TIMEOUT)]


def test_frequent_health_probes_do_not_push_rare_completions_out_of_the_window() -> None:
    policy = HealthPolicy(window=3)
    h = feed(fresh(), (C, OK), *[(H, OK)] * 10, (C, OK), policy=policy)
    assert sum(1 for s in h.samples if s.kind is C) == 2
    assert sum(1 for s in h.samples if s.kind is H) == 3


def test_sample_keeps_the_result_timings() -> None:
    h = apply(fresh(), result(C, OK, at=5, ttft=120.0, total=300.0), POLICY)
    (s,) = h.samples
    assert (s.at, s.kind, s.outcome, s.ttft_ms, s.total_ms) == (5, C, OK, 120.0, 300.0)


def test_last_probe_and_last_ok_never_move_backwards() -> None:
    h = apply(fresh(), result(H, OK, at=100), POLICY)
    h = apply(h, result(C, OK, at=90), POLICY)
    assert (h.last_probe_at, h.last_ok_at) == (100, 100)


def test_last_ok_at_is_the_last_success() -> None:
    h = feed(fresh(), (H, OK), (H, Outcome.TIMEOUT), start=10)
    assert (h.last_probe_at, h.last_ok_at) == (11, 10)


# --- ejection and eligibility -------------------------------------------------------------------


def take_down(h: HostHealth, at: float) -> HostHealth:
    return feed(h, (H, Outcome.TIMEOUT), (H, Outcome.TIMEOUT), start=at, every=0)


def bring_up(h: HostHealth, at: float) -> HostHealth:
    return feed(h, (H, OK), (H, OK), start=at, every=0)


def test_going_down_ejects_a_host_for_the_base_time() -> None:
    h = take_down(up_host(), at=100)
    assert h.ejections == (100,)
    assert h.ejected_until == 130


def test_ejection_time_doubles_for_repeated_ejections_within_an_hour_and_is_capped() -> None:
    h = up_host()
    untils = []
    for i in range(6):
        at = 100 + 400 * i
        h = bring_up(take_down(h, at=at), at=at + 1)
        untils.append(h.ejected_until - at)
    assert untils == [30, 60, 120, 240, 300, 300]


def test_ejections_older_than_the_memory_are_forgotten() -> None:
    h = bring_up(take_down(up_host(), at=100), at=101)
    h = take_down(h, at=100 + 3600)
    assert h.ejections == (3700,)
    assert h.ejected_until == 3700 + 30


def test_host_that_goes_down_without_having_been_up_is_not_ejected() -> None:
    h = take_down(fresh(), at=100)
    assert h.state is HostState.DOWN
    assert (h.ejections, h.ejected_until) == ((), 0.0)


def test_up_host_is_eligible() -> None:
    assert is_eligible(up_host(), now=0)


def test_unknown_and_down_hosts_are_not_eligible() -> None:
    assert not is_eligible(fresh(), now=1e9)
    assert not is_eligible(take_down(up_host(), at=10), now=1e9)


def test_recovered_host_is_not_eligible_until_its_ejection_time_has_passed() -> None:
    h = bring_up(take_down(up_host(), at=100), at=110)
    assert h.state is HostState.UP
    assert not is_eligible(h, now=129.9)
    assert is_eligible(h, now=130)


def test_host_down_longer_than_its_ejection_is_eligible_as_soon_as_it_is_up() -> None:
    h = bring_up(take_down(up_host(), at=100), at=500)
    assert is_eligible(h, now=500)


# --- confirmation --------------------------------------------------------------------------------


def test_first_failure_of_an_up_host_needs_confirmation() -> None:
    assert needs_confirmation(feed(up_host(), (C, Outcome.TIMEOUT), start=10), POLICY)


def test_first_failure_of_a_new_host_needs_confirmation() -> None:
    assert needs_confirmation(feed(fresh(), (H, Outcome.CONNECT_ERROR)), POLICY)


def test_confirmed_failure_needs_no_more_confirmation() -> None:
    h = feed(up_host(), (C, Outcome.TIMEOUT), (C, Outcome.TIMEOUT), start=10)
    assert not needs_confirmation(h, POLICY)


def test_failure_of_a_down_host_needs_no_confirmation() -> None:
    h = feed(take_down(up_host(), at=10), (H, OK), (H, Outcome.TIMEOUT), start=20)
    assert not needs_confirmation(h, POLICY)


def test_success_needs_no_confirmation() -> None:
    assert not needs_confirmation(up_host(), POLICY)
    assert not needs_confirmation(fresh(), POLICY)


def test_neutral_answer_after_a_failure_still_asks_for_confirmation() -> None:
    h = feed(up_host(), (C, Outcome.TIMEOUT), (A, Outcome.UNSUPPORTED), start=10)
    assert needs_confirmation(h, POLICY)


def test_threshold_of_one_never_needs_confirmation() -> None:
    policy = HealthPolicy(unhealthy_threshold=1)
    assert not needs_confirmation(feed(up_host(), (C, Outcome.TIMEOUT), start=10, policy=policy), policy)


def test_untrusted_host_never_needs_confirmation() -> None:
    assert not needs_confirmation(new_host(MODEL, HOST, trusted=False), POLICY)


# --- stats ---------------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([float(v) for v in range(1, 21)], 95) == 19.0
    assert percentile([float(v) for v in range(1, 21)], 100) == 20.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_availability_is_ok_samples_over_decisive_samples() -> None:
    h = feed(
        fresh(), (H, OK), (H, Outcome.TIMEOUT), (C, OK), (C, Outcome.SERVER_ERROR), (A, Outcome.UNSUPPORTED)
    )
    s = stats(h)
    assert (s.availability, s.samples) == (0.5, 4)


def test_availability_is_none_without_decisive_samples() -> None:
    s = stats(feed(fresh(), (A, Outcome.UNSUPPORTED)))
    assert (s.availability, s.samples, s.ttft_ms_p50, s.latency_ms_p50) == (None, 0, None, None)


def test_ttft_percentiles_come_from_ok_completions_only() -> None:
    h = fresh()
    for i, ttft in enumerate([100.0, 200.0, 300.0, 400.0]):
        h = apply(h, result(C, OK, at=i, ttft=ttft, total=ttft + 50), POLICY)
    h = apply(h, result(C, Outcome.STREAM_ERROR, at=10, ttft=5.0), POLICY)
    h = apply(h, result(H, OK, at=11, ttft=1.0, total=1.0), POLICY)
    s = stats(h)
    assert (s.ttft_ms_p50, s.ttft_ms_p95) == (200.0, 400.0)


def test_latency_p50_prefers_serving_samples_over_health_samples() -> None:
    h = apply(fresh(), result(H, OK, at=0, total=10.0), POLICY)
    h = apply(h, result(A, OK, at=1, total=5.0), POLICY)
    assert stats(h).latency_ms_p50 == 10.0
    h = apply(h, result(E, OK, at=2, total=80.0), POLICY)
    assert stats(h).latency_ms_p50 == 80.0


def test_consecutive_failures_counts_the_current_run_beyond_the_window() -> None:
    policy = HealthPolicy(window=3)
    h = feed(fresh(), (H, OK), *[(H, Outcome.TIMEOUT), (C, Outcome.SERVER_ERROR)] * 3, policy=policy)
    assert stats(h).consecutive_failures == 6
    assert stats(feed(h, (C, OK), start=100, policy=policy)).consecutive_failures == 0


# --- replay: many results at once (restore) ------------------------------------------------------

# Decisive outcomes are drawn as often as all the others together so that streaks and ejections happen.
outcomes = st.just(OK) | st.sampled_from(list(Outcome))
# Repeated, increasing and out-of-order times.
time_steps = st.sampled_from([0.0, 1.0, 7.5, 40.0, -3.0])
# A run of one outcome of one kind, so that hosts go down, come back and are ejected.
runs = st.tuples(st.sampled_from([H, H, A, C, E]), outcomes, st.integers(1, 4))


@st.composite
def result_lists(draw: st.DrawFn, max_runs: int) -> list[ProbeResult]:
    """Results of every kind, with neutral outcomes, repeated and out-of-order times, and runs of
    failures."""
    out: list[ProbeResult] = []
    at = draw(st.floats(0, 100))
    for kind, outcome, times in draw(st.lists(runs, max_size=max_runs)):
        for _ in range(times):
            at += draw(time_steps)
            ttft = draw(st.none() | st.floats(50, 500))
            out.append(result(kind, outcome, at=at, ttft=ttft, total=draw(st.sampled_from([None, 300.0]))))
    return out


@st.composite
def policies(draw: st.DrawFn) -> HealthPolicy:
    base = draw(st.sampled_from([0.0, 1.0, 30.0]))
    return HealthPolicy(
        unhealthy_threshold=draw(st.integers(1, 3)),
        healthy_threshold=draw(st.integers(1, 3)),
        window=draw(st.sampled_from([1, 2, 3, 5, 50])),
        ejection_base_s=base,
        ejection_max_s=base * draw(st.sampled_from([1, 4, 100])),
        ejection_memory_s=draw(st.sampled_from([0.0, 50.0, 3600.0])),
    )


def fold(h: HostHealth, results: list[ProbeResult], policy: HealthPolicy) -> HostHealth:
    for r in results:
        h = apply(h, r, policy)
    return h


@settings(max_examples=150)  # the property restore relies on: more examples than the default
@given(
    policy=policies(),
    trusted=st.booleans(),
    history=result_lists(max_runs=10),
    results=result_lists(max_runs=40),
)
def test_replay_equals_applying_each_result_in_turn(
    policy: HealthPolicy, trusted: bool, history: list[ProbeResult], results: list[ProbeResult]
) -> None:
    start = fold(new_host(MODEL, HOST, trusted=trusted), history, policy)
    assert replay(start, results, policy) == fold(start, results, policy)


def test_replay_of_nothing_leaves_the_host_as_it_was() -> None:
    h = up_host()
    assert replay(h, [], POLICY) is h


def test_replay_of_neutral_results_only_moves_the_last_probe_time() -> None:
    h = replay(up_host(), [result(A, Outcome.UNSUPPORTED, at=9), result(C, Outcome.NOT_PROBED, at=8)], POLICY)
    assert h == replace(up_host(), last_probe_at=9)


def test_replay_ignores_results_for_untrusted_hosts() -> None:
    h = new_host(MODEL, HOST, trusted=False)
    assert replay(h, [result(H, OK), result(C, OK)], POLICY) is h


def test_replay_counts_a_passing_auth_check_after_a_failed_completion_as_apply_does() -> None:
    results = [result(C, OK), result(C, Outcome.TIMEOUT, at=1), result(A, OK, at=2), result(C, OK, at=3)]
    h = replay(fresh(), results, POLICY)
    assert (h.serving.successes, h.serving.failures, h.key_ok) == (1, 0, True)
    assert h == fold(fresh(), results, POLICY)


def test_replay_keeps_a_new_host_unknown_when_only_an_auth_check_passed_after_a_failure() -> None:
    results = [result(C, Outcome.TIMEOUT), result(A, OK, at=1)]
    h = replay(fresh(), results, POLICY)
    assert (h.state, h.reason, h.key_ok) == (HostState.UNKNOWN, Outcome.TIMEOUT, True)
    assert h == fold(fresh(), results, POLICY)


def test_replay_keeps_the_newest_samples_of_each_kind_in_arrival_order() -> None:
    policy = HealthPolicy(window=2)
    results = [result(C, OK, at=0), *(result(H, OK, at=t) for t in (1, 2, 3)), result(C, OK, at=4)]
    h = replay(fresh(), results, policy)
    assert [(s.kind, s.at) for s in h.samples] == [(C, 0), (H, 2), (H, 3), (C, 4)]


def test_replay_keeps_a_window_made_under_a_larger_policy_at_its_size_as_apply_does() -> None:
    wide = feed(fresh(), *[(H, OK)] * 5)
    narrow = HealthPolicy(window=2)
    results = [result(H, OK, at=10), result(H, OK, at=11)]
    h = replay(wide, results, narrow)
    assert [s.at for s in h.samples] == [2.0, 3.0, 4.0, 10.0, 11.0]
    assert h == fold(wide, results, narrow)


def test_replay_evidence_takes_what_apply_reads_of_each_result() -> None:
    results = [
        result(H, OK, at=1, total=3.0),
        result(C, Outcome.TIMEOUT, at=2),
        result(C, OK, at=3, ttft=9.0),
    ]
    evidence = [(r.started_at, r.kind, r.outcome, r.ttft_ms, r.total_ms) for r in results]
    # What a restart reads holds no status or error text: only the kept failure differs.
    replayed = replace(replay(fresh(), results, POLICY), serving_failure=None)
    assert replay_evidence(fresh(), evidence, POLICY) == replayed


@pytest.mark.slow  # a timing on the real clock: run apart from the fast suite
def test_replay_restores_a_thousand_full_hosts_quickly() -> None:
    # A restart replays the last `window` results of each kind of every host: 150 per host here.
    kinds = [H, C, A] * 50
    results = [result(k, OK, at=float(i), ttft=100.0, total=200.0) for i, k in enumerate(kinds)]
    started = time.perf_counter()
    for _ in range(1000):
        replay(fresh(), results, POLICY)
    assert time.perf_counter() - started < 1.5


# --- policy and cost -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"unhealthy_threshold": 0},
        {"healthy_threshold": 0},
        {"window": 0},
        {"ejection_base_s": -1.0},
        {"ejection_base_s": 60.0, "ejection_max_s": 30.0},
        {"ejection_memory_s": -1.0},
    ],
)
def test_policy_rejects_impossible_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HealthPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.slow  # a timing on the real clock: run apart from the fast suite
def test_apply_keeps_up_with_ten_thousand_hosts() -> None:
    # ~350 results/s at 10,000 hosts: 20,000 results over full windows must take well under a second.
    h = feed(fresh(), *[(C, OK), (H, OK), (H, Outcome.TIMEOUT)] * 20)
    results = [result(C, OK, at=100 + i, ttft=100.0, total=200.0) for i in range(20_000)]
    started = time.perf_counter()
    for r in results:
        h = apply(h, r, POLICY)
    assert time.perf_counter() - started < 2.0


def collected_objects(h: HostHealth) -> int:
    """Objects reachable from `h` that the cyclic garbage collector tracks (shared enum members
    and classes aside)."""
    seen: set[int] = set()
    stack: list[object] = [h]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, type | enum.Enum) or not gc.is_tracked(o):
            continue
        seen.add(id(o))
        stack.extend(gc.get_referents(o))
    return len(seen)


def test_objects_for_the_garbage_collector_do_not_grow_with_the_window() -> None:
    # A young collection walks every tracked object: per-sample objects stalled the event loop.
    one_of_each = feed(fresh(), (C, OK), (H, OK), (A, OK))
    full = feed(one_of_each, *[(C, OK), (H, OK), (A, OK)] * POLICY.window, start=10)
    assert len(full.samples) == 3 * POLICY.window
    assert collected_objects(full) == collected_objects(one_of_each)
