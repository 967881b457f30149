"""Which hosts a model's answer offers to spread over, and the share each gets (`monitor.core.candidates`)."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.candidates import Candidate, Host, candidates, coarse, host_load, reordered, weights
from monitor.core.results import HostState, Outcome
from monitor.core.steps import finish

UNIT = 1e-6  # a published weight is a whole number of millionths


def _cold(url: str, state: HostState = HostState.DOWN) -> Host:
    return Host(url, state, Outcome.NOT_LOADED)


def _of(best: str | None, *hosts: Host) -> tuple[Candidate, ...]:
    return finish(candidates(best, hosts))


def _timed(*ttfts: float) -> list[tuple[float, float]]:
    return [(float(i), t) for i, t in enumerate(ttfts)]


# --- load --------------------------------------------------------------------------------------


def test_a_host_at_its_usual_speed_has_no_load() -> None:
    assert host_load(_timed(*[100.0] * 10)) == (100.0, 0.0)


def test_a_host_whose_ttft_doubled_has_load_one_whatever_its_speed() -> None:
    assert host_load(_timed(*[100.0] * 10, 200.0, 200.0, 200.0))[1] == 1.0
    assert host_load(_timed(*[2000.0] * 10, 4000.0, 4000.0, 4000.0))[1] == 1.0


def test_the_load_reads_the_newest_samples_by_time_not_by_arrival() -> None:
    samples = [(float(i), 100.0) for i in range(10)] + [(-1.0, 400.0), (-2.0, 400.0), (-3.0, 400.0)]
    assert host_load(samples)[1] == 0.0


def test_one_slow_probe_among_the_recent_ones_is_no_load() -> None:
    assert host_load(_timed(*[100.0] * 10, 100.0, 900.0, 100.0))[1] == 0.0


def test_a_hosts_usual_jitter_is_no_load() -> None:
    usual = [80.0, 90.0, 100.0, 110.0, 120.0] * 4
    assert host_load(_timed(*usual, 110.0, 90.0, 100.0))[1] == 0.0
    assert host_load(_timed(*usual, 200.0, 190.0, 210.0))[1] == 1.25  # (200 - 100) / 80: busy


def test_too_few_samples_say_no_load_but_give_a_speed() -> None:
    assert host_load(_timed(100.0, 300.0, 300.0)) == (100.0, 0.0)
    assert host_load([]) == (None, 0.0)


# --- weights -----------------------------------------------------------------------------------

_baselines = st.one_of(st.none(), st.floats(1.0, 60_000.0))
_loads = st.floats(0.0, 50.0)
_hosts = st.lists(st.tuples(_baselines, _loads), min_size=1, max_size=40)


@given(_hosts)
def test_weights_sum_to_one(hosts: list[tuple[float | None, float]]) -> None:
    shares = weights(hosts)
    assert len(shares) == len(hosts)
    assert abs(math.fsum(shares) - 1.0) < 1e-9 and all(w >= 0 for w in shares)


@given(_hosts, st.data())
def test_a_hosts_weight_falls_as_its_load_rises_and_recovers_when_it_falls(
    hosts: list[tuple[float | None, float]], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(hosts) - 1))
    baseline, load = hosts[i]
    busier = list(hosts)
    busier[i] = (baseline, load + data.draw(st.floats(0.5, 20.0)))
    before, during = weights(hosts), weights(busier)
    assert during[i] <= before[i] + UNIT
    if 0.01 < before[i] < 0.99:  # neither alone nor next to nothing: a fall shows in millionths
        assert during[i] < before[i]
    assert weights(hosts) == before  # the load gone, the share is back


@given(st.floats(1.0, 10_000.0), st.floats(1.01, 10.0), _loads, _hosts)
def test_at_equal_load_a_faster_host_gets_more(
    fast: float, slower_by: float, load: float, others: list[tuple[float | None, float]]
) -> None:
    shares = weights([(fast, load), (fast * slower_by, load), *others])
    assert shares[0] >= shares[1]


def test_a_host_without_ttft_counts_at_the_median_speed() -> None:
    shares = weights([(100.0, 0.0), (200.0, 0.0), (400.0, 0.0), (None, 0.0)])
    assert shares[3] == shares[1]


def test_hosts_without_any_ttft_share_equally() -> None:
    assert weights([(None, 0.0)] * 4) == (0.25, 0.25, 0.25, 0.25)


def test_a_busy_host_gets_less_than_its_slowdown_alone_would_say() -> None:
    idle, busy = weights([(100.0, 0.0), (100.0, 1.0)])
    assert busy == 0.2 and idle == 0.8  # free capacity 1 / (1 + 1) ** 2


# --- which hosts -------------------------------------------------------------------------------


def test_the_up_hosts_come_in_ranking_order_then_the_cold_ones() -> None:
    chosen = _of("a", Host("a"), Host("b"), _cold("c"), Host("d", HostState.DOWN, Outcome.TIMEOUT))
    assert [(c.url, c.warm) for c in chosen] == [("a", True), ("b", True), ("c", False)]


def test_cold_hosts_weigh_nothing_while_a_warm_host_is_up() -> None:
    chosen = _of("a", Host("a"), _cold("b"), _cold("c", HostState.UNKNOWN))
    assert [c.weight for c in chosen] == [1.0, 0.0, 0.0]


def test_with_no_warm_host_up_the_cold_ones_share() -> None:
    chosen = _of(None, _cold("b"), Host("x", HostState.DOWN, Outcome.SERVER_ERROR), _cold("c"))
    assert [(c.url, c.weight, c.warm) for c in chosen] == [("b", 0.5, False), ("c", 0.5, False)]


def test_no_host_worth_sending_to_no_candidate() -> None:
    assert _of(None, Host("x", HostState.DOWN, Outcome.TIMEOUT), Host("y", HostState.UNKNOWN)) == ()


def test_a_candidate_carries_the_hosts_figures() -> None:
    (c,) = _of("a", Host("a", ttft_ms_p50=80.04, ttft_ms_p95=120.06, ttft_ms_baseline=70.0, load=0.123))
    assert c.as_json() == {
        "url": "a",
        "weight": 1.0,
        "ttft_ms_p50": 80.0,
        "ttft_ms_p95": 120.1,
        "load": 0.12,
        "warm": True,
    }


_states = st.sampled_from(list(HostState))
_reasons = st.sampled_from([Outcome.OK, Outcome.NOT_LOADED, Outcome.TIMEOUT])
_listed = st.lists(
    st.builds(
        Host, st.text("abcdef", min_size=1, max_size=3), _states, _reasons, ttft_ms_baseline=_baselines
    ),
    max_size=20,
    unique_by=lambda h: h.url,
)


@given(_listed)
def test_a_cold_host_is_never_first_while_a_warm_host_is_up(hosts: list[Host]) -> None:
    best = next((h.url for h in hosts if h.state is HostState.UP), None)
    chosen = _of(best, *hosts)
    if best is not None:
        assert chosen[0].warm and chosen[0].url == best
        assert all(c.weight == 0.0 for c in chosen if not c.warm)
    warm = [c.warm for c in chosen]
    assert warm == sorted(warm, reverse=True)  # every warm one before every cold one
    assert not chosen or abs(math.fsum(c.weight for c in chosen) - 1.0) < 1e-9


@given(_listed)
def test_the_best_host_is_always_the_first_candidate(hosts: list[Host]) -> None:
    up = [h for h in hosts if h.state is HostState.UP]
    if up:
        best = up[-1].url  # wherever the ranking put it
        assert _of(best, *hosts)[0].url == best


def test_the_best_host_missing_from_the_views_is_still_first() -> None:
    assert [c.url for c in _of("a", Host("b"))] == ["a", "b"]


def test_another_sort_reorders_the_warm_candidates_and_keeps_the_cold_last() -> None:
    chosen = _of("a", Host("a"), Host("b"), _cold("c"))
    assert [c.url for c in reordered(chosen, ["b", "a"])] == ["b", "a", "c"]


# --- what a client acts on ---------------------------------------------------------------------


def test_a_small_drift_of_the_weights_leaves_what_clients_act_on_alone() -> None:
    a, b = _of("a", Host("a", ttft_ms_baseline=100.0), Host("b", ttft_ms_baseline=100.0))
    drifted = (replace(a, weight=a.weight + 0.01), replace(b, weight=b.weight - 0.01))
    assert coarse(drifted) == coarse((a, b))


def test_a_real_shift_of_the_weights_changes_what_clients_act_on() -> None:
    a, b = _of("a", Host("a", ttft_ms_baseline=100.0), Host("b", ttft_ms_baseline=110.0))
    shifted = (replace(a, weight=0.8), replace(b, weight=0.2))
    assert coarse(shifted) != coarse((a, b))
