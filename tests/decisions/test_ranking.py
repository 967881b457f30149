"""Per-model ranking with hysteresis: monitor.core.ranking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.health import HealthPolicy, HostHealth, apply, new_host
from monitor.core.ranking import ModelRanking, RankingPolicy, ScoreMemo, rank, score
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish

MODEL = "hermes-3-8b"
HEALTH = HealthPolicy()
POLICY = RankingPolicy()
NOW = 10_000.0

H, A, C, E = ProbeKind.HEALTH, ProbeKind.AUTH, ProbeKind.COMPLETION, ProbeKind.EMBEDDING
OK = Outcome.OK


def result(
    url: str,
    kind: ProbeKind,
    outcome: Outcome = OK,
    at: float = 0.0,
    ttft: float | None = None,
    total: float | None = None,
) -> ProbeResult:
    return ProbeResult(MODEL, url, kind, outcome, started_at=at, ttft_ms=ttft, total_ms=total)


def probed(h: HostHealth, *results: ProbeResult) -> HostHealth:
    for r in results:
        h = apply(h, r, HEALTH)
    return h


def up(url: str, *ttfts: float, at: float = 0.0) -> HostHealth:
    """An up host whose ok completions took `ttfts` (ms to first token)."""
    h = probed(new_host(MODEL, url, trusted=True), result(url, H, at=at, total=20.0))
    return probed(h, *(result(url, C, at=at, ttft=t, total=t + 100) for t in ttfts))


def health_only(url: str, *totals: float) -> HostHealth:
    return probed(new_host(MODEL, url, trusted=True), *(result(url, H, total=t) for t in totals))


def down(url: str, reason: Outcome = Outcome.TIMEOUT, last_ok: float | None = None) -> HostHealth:
    h = new_host(MODEL, url, trusted=True)
    if last_ok is not None:
        h = probed(h, result(url, H, at=last_ok, total=20.0))
    at = (last_ok or 0.0) + 1
    h = probed(h, result(url, H, reason, at=at), result(url, H, reason, at=at))
    assert h.state is HostState.DOWN
    return h


def ejected(url: str, *ttfts: float, at: float = NOW) -> HostHealth:
    """Up again, but went down at `at` and is still in its ejection time at NOW."""
    h = up(url, *ttfts, at=at - 100)
    h = probed(h, result(url, H, Outcome.TIMEOUT, at=at), result(url, H, Outcome.TIMEOUT, at=at))
    h = probed(h, result(url, H, at=at, total=20.0), result(url, H, at=at, total=20.0))
    assert h.state is HostState.UP and h.ejected_until > NOW
    return h


def unknown(url: str) -> HostHealth:
    return new_host(MODEL, url, trusted=True)


def untrusted(url: str) -> HostHealth:
    return new_host(MODEL, url, trusted=False)


def ranked(*hosts: HostHealth, previous: str | None = None, policy: RankingPolicy = POLICY) -> ModelRanking:
    return finish(rank(MODEL, hosts, previous, NOW, policy))


# --- score ---------------------------------------------------------------------------------------


def test_score_is_mean_of_median_and_p95_ttft_plus_failure_penalty() -> None:
    h = up("https://a", 100, 200, 300, 400)
    h = probed(h, result("https://a", C, Outcome.SERVER_ERROR, at=0))
    # 6 samples (1 health ok, 4 completions ok, 1 failed): availability 5/6.
    # p50 = 200, p95 = 400 (nearest rank).
    assert score(h) == pytest.approx(0.5 * 200 + 0.5 * 400 + 2000 * (1 - 5 / 6))


def test_score_without_failures_has_no_penalty() -> None:
    assert score(up("https://a", 100, 100, 100)) == pytest.approx(100)


def test_score_of_a_health_only_host_uses_its_health_latency() -> None:
    assert score(health_only("https://a", 10, 20, 30, 40)) == pytest.approx(0.5 * 20 + 0.5 * 40)


def test_score_of_an_embedding_host_uses_its_embedding_latency() -> None:
    h = health_only("https://a", 5)
    h = probed(h, *(result("https://a", E, total=t) for t in (50, 70)))
    assert score(h) == pytest.approx(0.5 * 50 + 0.5 * 70)


def test_score_is_none_without_an_ok_latency_sample() -> None:
    assert score(unknown("https://a")) is None
    assert score(down("https://a")) is None


def test_score_uses_the_penalty_of_the_policy() -> None:
    h = probed(up("https://a", 100), result("https://a", H, Outcome.TIMEOUT, at=1))
    assert score(h, RankingPolicy(failure_penalty_ms=0)) == pytest.approx(100)


# --- order among up hosts ------------------------------------------------------------------------


def test_fastest_eligible_host_is_best() -> None:
    r = ranked(up("https://slow", 500, 500, 500), up("https://fast", 100, 100, 100))
    assert (r.best, r.ordered, r.panic) == ("https://fast", ("https://fast", "https://slow"), False)


def test_without_a_previous_best_the_fastest_host_is_best_whatever_its_sample_count() -> None:
    r = ranked(up("https://slow", 500, 500, 500), up("https://fast", 100))
    assert r.best == "https://fast"


def test_hosts_without_a_score_follow_scored_hosts_by_url() -> None:
    r = ranked(up("https://c"), up("https://b"), up("https://a", 300))
    assert r.ordered == ("https://a", "https://b", "https://c")


def test_completion_model_hosts_are_never_compared_on_health_latency() -> None:
    # b only answered its health probe (fast) within its window: it gets no score for this model.
    r = ranked(up("https://a", 300, 300, 300), up("https://b"))
    assert r.best == "https://a"


def test_health_only_model_ranks_by_health_latency() -> None:
    r = ranked(health_only("https://a", 80, 80), health_only("https://b", 20, 20))
    assert r.ordered == ("https://b", "https://a")


def test_failures_penalise_a_fast_but_unreliable_host() -> None:
    flaky = up("https://flaky", 100, 100, 100)
    flaky = probed(
        flaky,
        result("https://flaky", C, Outcome.SERVER_ERROR, at=1),
        result("https://flaky", C, at=2, ttft=100),
    )
    r = ranked(flaky, up("https://steady", 300, 300, 300))
    assert r.best == "https://steady"


# --- hysteresis ----------------------------------------------------------------------------------


def test_current_best_keeps_its_place_against_a_challenger_within_the_margin() -> None:
    r = ranked(up("https://a", 100, 100, 100), up("https://b", 85, 85, 85), previous="https://a")
    assert r.best == "https://a"
    assert r.ordered == ("https://a", "https://b")
    assert r.fallbacks == ("https://b",)


def test_challenger_beyond_the_margin_with_enough_samples_takes_best() -> None:
    r = ranked(up("https://a", 100, 100, 100), up("https://b", 79, 79, 79), previous="https://a")
    assert r.best == "https://b"
    assert r.ordered == ("https://b", "https://a")


def test_incumbent_chosen_before_it_had_enough_samples_yields_to_a_faster_host_with_enough() -> None:
    # Chosen on its first sample (say, at start-up); a faster host proves itself: it takes best.
    r = ranked(up("https://a", 600), up("https://b", 80, 80, 80), previous="https://a")
    assert r.best == "https://b"


def test_challenger_at_exactly_the_margin_does_not_take_best() -> None:
    r = ranked(up("https://a", 100, 100, 100), up("https://b", 80, 80, 80), previous="https://a")
    assert r.best == "https://a"


def test_challenger_beyond_the_margin_without_enough_samples_does_not_take_best() -> None:
    r = ranked(up("https://a", 100, 100, 100), up("https://b", 10, 10), previous="https://a")
    assert r.best == "https://a"
    assert r.ordered == ("https://a", "https://b")


def test_kept_best_moves_to_the_front_of_ordered() -> None:
    r = ranked(
        up("https://a", 100, 100, 100),
        up("https://b", 90, 90, 90),
        up("https://c", 95, 95, 95),
        previous="https://a",
    )
    assert r.ordered == ("https://a", "https://b", "https://c")


def test_best_challenger_with_enough_samples_wins_over_a_faster_one_without() -> None:
    r = ranked(
        up("https://a", 100, 100, 100),
        up("https://few", 10),
        up("https://many", 50, 50, 50),
        previous="https://a",
    )
    assert r.best == "https://many"
    assert r.ordered == ("https://many", "https://few", "https://a")


def test_best_without_a_score_yields_to_a_scored_challenger_with_enough_samples() -> None:
    r = ranked(up("https://a"), up("https://b", 100, 100, 100), previous="https://a")
    assert r.best == "https://b"


def test_best_that_goes_down_is_replaced_at_once() -> None:
    r = ranked(down("https://a", last_ok=NOW - 5), up("https://b", 500), previous="https://a")
    assert r.best == "https://b"
    assert r.fallbacks == ()


def test_margin_zero_always_takes_the_fastest_host_with_enough_samples() -> None:
    policy = RankingPolicy(margin=0.0)
    r = ranked(
        up("https://a", 100, 100, 100), up("https://b", 99, 99, 99), previous="https://a", policy=policy
    )
    assert r.best == "https://b"


def test_unknown_previous_best_is_ignored() -> None:
    r = ranked(up("https://a", 200, 200, 200), up("https://b", 100, 100, 100), previous="https://gone")
    assert r.best == "https://b"


# --- ejection ------------------------------------------------------------------------------------


def test_flapping_host_stays_out_of_best_while_ejected() -> None:
    r = ranked(ejected("https://flap", 10, 10, 10), up("https://b", 500, 500, 500), previous="https://flap")
    assert r.best == "https://b"
    assert r.ordered == ("https://b", "https://flap")
    assert r.fallbacks == ("https://flap",)


def test_ejected_host_competes_again_once_its_ejection_time_has_passed() -> None:
    flap = ejected("https://flap", 10, 10, 10)
    # flap scores 510 (10 ms plus the penalty of its two failures): well beyond the margin.
    r = finish(
        rank(MODEL, [flap, up("https://b", 2000, 2000, 2000)], "https://b", flap.ejected_until, POLICY)
    )
    assert r.best == "https://flap"


def test_up_hosts_in_ejection_come_after_eligible_hosts_whatever_their_score() -> None:
    r = ranked(ejected("https://e", 10, 10, 10), up("https://b", 900), up("https://a", 500))
    assert r.ordered == ("https://a", "https://b", "https://e")


def test_only_up_host_is_best_even_while_ejected() -> None:
    r = ranked(ejected("https://only", 100), down("https://d"))
    assert (r.best, r.panic, r.healthy) == ("https://only", False, 1)


# --- hosts that are not up -----------------------------------------------------------------------


def test_not_loaded_hosts_come_after_up_and_unknown_hosts_and_before_other_down_hosts() -> None:
    r = ranked(
        down("https://dead", Outcome.CONNECT_ERROR, last_ok=NOW - 10),
        down("https://cold", Outcome.NOT_LOADED, last_ok=NOW - 1000),
        unknown("https://new"),
        up("https://up", 100),
    )
    assert r.ordered == ("https://up", "https://new", "https://cold", "https://dead")


def test_down_hosts_are_ordered_by_most_recent_success_never_succeeded_last() -> None:
    r = ranked(
        up("https://up", 100),
        down("https://never"),
        down("https://old", last_ok=NOW - 1000),
        down("https://recent", last_ok=NOW - 10),
    )
    assert r.ordered == ("https://up", "https://recent", "https://old", "https://never")


def test_untrusted_hosts_come_last_and_are_never_fallbacks() -> None:
    r = ranked(
        untrusted("https://a-untrusted"), up("https://b", 100), up("https://c", 200), down("https://d")
    )
    assert r.ordered == ("https://b", "https://c", "https://d", "https://a-untrusted")
    assert r.fallbacks == ("https://c",)


def test_fallbacks_are_the_other_up_hosts_only() -> None:
    r = ranked(up("https://a", 100), up("https://b", 200), unknown("https://u"), down("https://d", last_ok=1))
    assert (r.best, r.fallbacks) == ("https://a", ("https://b",))


def test_best_never_appears_in_fallbacks() -> None:
    hosts = [up(f"https://h{i}", 100 + 10 * i, 100 + 10 * i, 100 + 10 * i) for i in range(5)]
    for previous in [None, *(h.host for h in hosts)]:
        r = ranked(*hosts, previous=previous)
        assert r.best not in r.fallbacks
        assert set(r.ordered) == {h.host for h in hosts}


def test_healthy_counts_up_hosts_and_known_counts_every_listed_host() -> None:
    r = ranked(
        up("https://a", 100),
        ejected("https://b", 100),
        unknown("https://c"),
        down("https://d"),
        untrusted("https://e"),
    )
    assert (r.healthy, r.known) == (2, 5)


# --- panic mode ----------------------------------------------------------------------------------


def test_panic_mode_lists_every_known_host_most_recent_success_first() -> None:
    r = ranked(
        down("https://old", last_ok=NOW - 1000),
        unknown("https://new"),
        down("https://recent", Outcome.SERVER_ERROR, last_ok=NOW - 10),
        down("https://cold", Outcome.NOT_LOADED, last_ok=NOW - 100),
        down("https://never"),
        untrusted("https://untrusted"),
    )
    assert (r.best, r.panic, r.healthy, r.known) == (None, True, 0, 6)
    assert r.fallbacks == ("https://recent", "https://cold", "https://old", "https://new", "https://never")
    assert r.ordered == (*r.fallbacks, "https://untrusted")


def test_panic_mode_puts_not_loaded_before_other_never_succeeded_down_hosts() -> None:
    r = ranked(down("https://dead"), down("https://cold", Outcome.NOT_LOADED))
    assert r.fallbacks == ("https://cold", "https://dead")


def test_model_without_hosts_is_in_panic_with_nothing_to_try() -> None:
    r = ranked()
    assert r == ModelRanking(MODEL, None, (), (), 0, 0, True)


def test_model_with_only_untrusted_hosts_offers_no_fallback() -> None:
    r = ranked(untrusted("https://x"))
    assert (r.best, r.fallbacks, r.ordered, r.panic, r.known) == (None, (), ("https://x",), True, 1)


# --- determinism and policy ----------------------------------------------------------------------


def every_kind_of_host() -> list[HostHealth]:
    return [
        up("https://a", 100, 100, 100),
        up("https://b", 100, 100, 100),
        up("https://c"),
        ejected("https://d", 50),
        unknown("https://e"),
        down("https://f", Outcome.NOT_LOADED, last_ok=5),
        down("https://g", last_ok=5),
        down("https://h"),
        untrusted("https://i"),
    ]


def test_hosts_of_every_kind_are_ordered_by_state_then_score_then_url() -> None:
    assert ranked(*every_kind_of_host()).ordered == tuple(f"https://{c}" for c in "abcdefghi")


@given(hosts=st.permutations(every_kind_of_host()))
def test_ranking_does_not_depend_on_the_order_of_the_hosts(hosts: list[HostHealth]) -> None:
    assert ranked(*hosts) == ranked(*every_kind_of_host())


@pytest.mark.parametrize(
    "kwargs", [{"margin": -0.1}, {"margin": 1.0}, {"min_samples": -1}, {"failure_penalty_ms": -1.0}]
)
def test_policy_rejects_impossible_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RankingPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_score_memo_gives_the_same_ranking_and_rescores_only_changed_hosts() -> None:
    hosts = [up(f"https://h{i}", 100 + i, 110 + i, 120 + i) for i in range(20)]
    memo: ScoreMemo = {}
    first = finish(rank(MODEL, hosts, None, NOW, POLICY, memo=memo))
    assert first == finish(rank(MODEL, hosts, None, NOW, POLICY))
    kept = memo["https://h5"]
    hosts[3] = probed(hosts[3], result("https://h3", ProbeKind.COMPLETION, OK, at=50, ttft=1.0))
    second = finish(rank(MODEL, hosts, first.best, NOW, POLICY, memo=memo))
    assert second == finish(rank(MODEL, hosts, first.best, NOW, POLICY))
    assert memo["https://h5"] is kept  # unchanged host: not scored again
    assert memo["https://h3"][0] is hosts[3]


def test_a_score_memo_forgets_hosts_that_left() -> None:
    memo: ScoreMemo = {}
    finish(rank(MODEL, [up("https://a", 100), up("https://b", 90)], None, NOW, POLICY, memo=memo))
    finish(rank(MODEL, [up("https://a", 100)], None, NOW, POLICY, memo=memo))
    assert set(memo) == {"https://a"}
