"""Issue 11's ranking rules on the pure functions: start-up without churn, keyed eligibility, and
forgetting by time (an outage is forgiven, a flapping host is kept out by its ejection)."""

from __future__ import annotations

import itertools

import pytest

from monitor.core.health import HealthPolicy, HostHealth, apply, new_host
from monitor.core.ranking import RankingPolicy, rank, score, weighted_percentile
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from tests.decisions.timeline import MODEL, SimHost, first_best_after, outages, run

HEALTH = HealthPolicy()
POLICY = RankingPolicy()
H, C = ProbeKind.HEALTH, ProbeKind.COMPLETION


def probed(h: HostHealth, *results: ProbeResult) -> HostHealth:
    for r in results:
        h = apply(h, r, HEALTH)
    return h


def result(
    url: str, kind: ProbeKind, outcome: Outcome = Outcome.OK, at: float = 0.0, ttft: float | None = None
) -> ProbeResult:
    return ProbeResult(MODEL, url, kind, outcome, started_at=at, ttft_ms=ttft, total_ms=20.0)


def up(url: str, *ttfts: float, at: float = 0.0) -> HostHealth:
    h = probed(new_host(MODEL, url, trusted=True), result(url, H, at=at))
    return probed(h, *(result(url, C, at=at, ttft=t) for t in ttfts))


# --- weighted percentiles ------------------------------------------------------------------------


def test_weighted_percentile_with_equal_weights_is_nearest_rank() -> None:
    values = [(float(v), 1.0) for v in range(1, 21)]
    assert weighted_percentile(values, 50) == 10.0
    assert weighted_percentile(values, 95) == 19.0


def test_weighted_percentile_follows_the_heavier_recent_values() -> None:
    # Three old slow samples weigh 1/8 each, two new fast ones 1 each: the median is fast.
    values = [(900.0, 0.125), (900.0, 0.125), (900.0, 0.125), (100.0, 1.0), (100.0, 1.0)]
    assert weighted_percentile(values, 50) == 100.0


def test_a_host_that_got_slow_is_scored_by_its_recent_latency() -> None:
    h = up("https://a", 100, 100, 100, 100, at=0.0)
    h = probed(h, *(result("https://a", C, at=3 * 3600.0, ttft=900) for _ in range(3)))
    # Four fast samples three hours (six half-lives) old against three slow ones now.
    assert score(h) == pytest.approx(900.0)


# --- start-up without churn ----------------------------------------------------------------------


def test_a_challenger_with_fewer_than_min_samples_never_replaces_best() -> None:
    r = finish(rank(MODEL, [up("https://a", 600), up("https://b", 80, 80)], "https://a", 0.0, POLICY))
    assert r.best == "https://a"


def test_while_nobody_has_enough_samples_the_first_choice_stays() -> None:
    # Two near-equal hosts, each ahead in turn on its latest sample: best never moves.
    a, b = up("https://a"), up("https://b")
    best: str | None = None
    changes = 0
    for i, (ta, tb) in enumerate([(100, 90), (80, 95), (110, 85), (100, 100)]):
        a = probed(a, result("https://a", C, at=i, ttft=ta))
        b = probed(b, result("https://b", C, at=i, ttft=tb))
        r = finish(rank(MODEL, [a, b], best, float(i), POLICY, keyed=True))
        changes += best is not None and r.best != best
        best = r.best
    assert changes == 0


def test_an_unproven_first_choice_that_goes_down_is_replaced() -> None:
    a = up("https://a", 100)
    a = probed(
        a, result("https://a", H, Outcome.TIMEOUT, at=1), result("https://a", H, Outcome.TIMEOUT, at=2)
    )
    r = finish(rank(MODEL, [a, up("https://b", 120)], "https://a", 3.0, POLICY))
    assert r.best == "https://b"


def test_near_equal_hosts_at_start_up_change_best_at_most_once() -> None:
    hosts = [SimHost("https://a", 100.0), SimHost("https://b", 98.0)]
    seen = run(hosts, until=3600)
    bests = [b for _, b in seen if b is not None]
    assert sum(1 for x, y in itertools.pairwise(bests) if x != y) <= 1


# --- keyed eligibility ---------------------------------------------------------------------------


def test_a_host_whose_key_is_not_yet_confirmed_is_never_best_of_a_keyed_model() -> None:
    unconfirmed = probed(new_host(MODEL, "https://new", trusted=True), result("https://new", H))
    r = finish(rank(MODEL, [unconfirmed], None, 0.0, POLICY, keyed=True))
    assert (r.best, r.fallbacks, r.panic) == (None, ("https://new",), False)


def test_a_host_that_rejects_the_key_is_never_best_even_when_faster() -> None:
    rejecting = probed(
        new_host(MODEL, "https://rejects", trusted=True),
        result("https://rejects", H),
        result("https://rejects", C, Outcome.KEY_REJECTED, at=1),
    )
    r = finish(rank(MODEL, [rejecting, up("https://ok", 500)], None, 2.0, POLICY, keyed=True))
    assert r.best == "https://ok"
    assert r.ordered[-1] == "https://rejects"


def test_the_first_host_to_pass_a_keyed_probe_becomes_best() -> None:
    first = probed(new_host(MODEL, "https://a", trusted=True), result("https://a", H))
    other = probed(new_host(MODEL, "https://b", trusted=True), result("https://b", H))
    assert finish(rank(MODEL, [first, other], None, 0.0, POLICY, keyed=True)).best is None
    first = probed(first, result("https://a", C, at=1, ttft=300))
    assert finish(rank(MODEL, [first, other], None, 1.0, POLICY, keyed=True)).best == "https://a"


def test_health_only_models_need_no_key() -> None:
    h = probed(new_host(MODEL, "https://img", trusted=True), result("https://img", H))
    assert finish(rank(MODEL, [h], None, 0.0, POLICY, keyed=False)).best == "https://img"


# --- forgetting by time --------------------------------------------------------------------------


def test_an_outage_is_not_counted_in_the_failure_share_after_recovery() -> None:
    h = up("https://a", 100, 100, 100)
    h = probed(h, *(result("https://a", H, Outcome.CONNECT_ERROR, at=t) for t in range(10, 130, 15)))
    h = probed(h, result("https://a", H, at=130), result("https://a", H, at=145))
    assert h.forgiven_before == 145
    assert score(h) == pytest.approx(100.0)


def test_a_second_outage_within_the_memory_is_not_forgiven() -> None:
    h = up("https://a", 100, 100, 100)
    for start in (10.0, 600.0):
        h = probed(
            h,
            result("https://a", H, Outcome.CONNECT_ERROR, at=start),
            result("https://a", H, Outcome.CONNECT_ERROR, at=start + 2),
            result("https://a", H, at=start + 60),
            result("https://a", H, at=start + 90),
        )
    assert h.forgiven_before == 100.0  # the first recovery only
    value = score(h)
    assert value is not None and value > 100.0 + 2000.0 * 0.1


def test_errors_of_a_host_that_stays_up_still_count() -> None:
    h = up("https://a", 100, 100, 100)
    h = probed(h, result("https://a", C, Outcome.SERVER_ERROR, at=0), result("https://a", C, at=0, ttft=100))
    assert score(h) == pytest.approx(100.0 + 2000.0 / 6)  # 1 failure in 6 samples


def fleet(fast: SimHost) -> list[SimHost]:
    return [fast, SimHost("https://b", 400.0), SimHost("https://c", 400.0)]


RECOVERY_BOUND = 30.0 + 2 * 30.0  # ejection time + two probe intervals, at the defaults


@pytest.mark.parametrize("down_at", [1800.0, 1807.0, 1815.0, 1829.0, 1900.0])
def test_a_fast_host_down_for_two_minutes_is_best_again_within_ejection_plus_two_intervals(
    down_at: float,
) -> None:
    fast = SimHost("https://fast", 100.0, up=outages((down_at, down_at + 120.0)))
    seen = run(fleet(fast), until=down_at + 1200)
    assert any(b == "https://fast" for t, b in seen if t < down_at)
    assert all(
        b != "https://fast" for t, b in seen if down_at + 35 <= t < down_at + 120
    )  # detected within an interval
    back = first_best_after(seen, "https://fast", down_at + 120.0)
    assert back is not None and back <= RECOVERY_BOUND


def test_a_flapping_host_stays_out_longer_after_each_outage_in_an_hour() -> None:
    # Three 30 s outages within an hour: ejections of 30, 60 and 120 s from each going down.
    starts = (1800.0, 2400.0, 3000.0)
    fast = SimHost("https://fast", 100.0, up=outages(*((s, s + 30.0) for s in starts)))
    seen = run(fleet(fast), until=3600)
    first, _, third = (first_best_after(seen[: int(s) + 500], "https://fast", s + 30.0) for s in starts)
    assert first is not None and first <= RECOVERY_BOUND  # a single outage is forgiven
    # The third is not: out for at least its doubled ejection (120 s from going down), if not longer.
    assert third is None or third >= 120.0 - 30.0 - 2.0
