"""Which host of a model to call now, and which next: health states -> ranking, with hysteresis.

Pure functions, no I/O.

Score (lower is better), over the host's window:
    0.5 * p50 + 0.5 * p95 of its ok latencies + failure_penalty_ms * failure share
where every sample weighs 2 ** (-age / half_life_s) (age: how much older it is than the host's newest
sample), so recent results count most and old ones fade by time, not by how many came since: the
percentiles are weighted nearest-rank (the first value, in sorted order, at which the cumulative
weight reaches p% of the total; with equal weights, plain nearest-rank), and the failure share is the
weight of failures over the weight of all samples. Failures of a forgiven outage (before
`HostHealth.forgiven_before`: the host came back after its only outage within the ejection memory)
are left out of the share: that outage was punished by going down and by the ejection, and should
not keep a fast host out of best for as long as its failures stay in the window. A host with
several outages within the memory (it flaps) keeps them in its share, fading with the half-life, on
top of its doubling ejection. The weights are relative to the newest
sample, so a score changes only with the host's samples, never with the clock. The latency measured
is, by preference, a
completion's time to first token, else an embedding's total time, else the health probe's total
time (health-only models: images, audio). `rank` picks one such *basis* for the whole model (the
first of those that any of its trusted hosts has measured) so that hosts are never compared on
different measures: a host of a completion model with no ok completion in its window has no score,
even if its health probe answered quickly. `score(h)` alone uses the host's own best basis. No ok
sample with a latency: no score.

Order of `ModelRanking.ordered` (every listed host once; ties always end on the URL, so the answer
does not depend on the input order):
1. best, then the other eligible hosts (up, ejection time over) by score, hosts without a score after
   those with one;
2. up hosts still in their ejection time, by score;
3. unknown hosts; then down hosts whose reason is `not_loaded` (health answered 202: they would
   serve after a cold load); then every other down host; each of these three by most recent
   success first (`last_ok_at` descending, never-succeeded last);
4. untrusted hosts.

Best: the first eligible host. Hysteresis, because a client that switches hosts loses the server's
KV cache: if `previous_best` is still eligible it stays best unless a challenger scores lower by
more than `margin` (`challenger < best * (1 - margin)`) over at least `min_samples` ok samples with a
latency of the basis; a best with no score yields to any scored challenger with enough samples. A
challenger with fewer than `min_samples` samples never takes best, whatever the incumbent's count:
at start-up, while nobody has enough samples, the first choice stays unless it goes down, instead
of best moving to whichever host is ahead on one or two samples. The kept best moves to the front
of `ordered`.

Keyed models (`keyed=True`: the model gets billed probes): an up host is eligible only once its key
was accepted (`key_ok is True`, set by its first successful keyed probe), so a host that rejects
the key is never best, not even before its first completion has run; until then it ranks after the
ejected hosts (a fallback, never best). Without a previous best, or when it left the eligible hosts (down, or
ejected), the best is the first eligible host at once, whatever its sample count.
Ejection keeps a host out of best only while another up host exists: when every up host is in its
ejection time, the best is chosen among them the same way rather than answering none while a host
is up.

Fallbacks: the other up hosts in `ordered` order (eligible, then in ejection); hosts that are not up
are not fallbacks. Panic mode, when no host is up (as Envoy's): `best` is None, `panic` True, and
`fallbacks` lists every trusted host, most recent success first (never-succeeded last; ties: unknown,
then not_loaded, then other down, then URL) so a client always has something to try; `ordered` is
then the same list followed by the untrusted hosts.

Drained hosts (`drained`: in a maintenance window, `monitor.core.maintenance`) are never best nor
fallbacks, not even in panic mode: they are left out of all of the above and listed in `ordered`
after the down hosts, before the untrusted ones.

Counts: `healthy` = up hosts not drained; `known` = every listed host, untrusted ones included
(they are known, just never used). Hosts are expected to be distinct by URL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import exp

from monitor.core.health import HostHealth, is_eligible
from monitor.core.results import HostState, Outcome, ProbeKind
from monitor.core.steps import Steps, mapped

__all__ = [
    "DEFAULT_RANKING_POLICY",
    "ModelRanking",
    "RankingPolicy",
    "rank",
    "score",
    "weighted_percentile",
]


@dataclass(frozen=True, slots=True)
class RankingPolicy:
    margin: float = 0.2
    min_samples: int = 3
    failure_penalty_ms: float = 2000.0
    half_life_s: float = 1800.0  # a sample's weight halves for every this much it is older

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin < 1.0:
            raise ValueError("ranking margin must be in [0, 1)")
        if self.min_samples < 0:
            raise ValueError("min_samples must not be negative")
        if self.failure_penalty_ms < 0:
            raise ValueError("failure_penalty_ms must not be negative")
        if not self.half_life_s > 0:
            raise ValueError("half_life_s must be positive")


DEFAULT_RANKING_POLICY = RankingPolicy()


@dataclass(frozen=True, slots=True)
class ModelRanking:
    model: str
    best: str | None
    fallbacks: tuple[str, ...]
    ordered: tuple[str, ...]  # every known host, best first
    healthy: int
    known: int
    panic: bool
    eligible: tuple[str, ...] = ()  # the hosts best was chosen among (best included)


# Latency bases, best first: (kind, whether its latency is the time to first token).
_BASES: tuple[tuple[ProbeKind, bool], ...] = (
    (ProbeKind.COMPLETION, True),
    (ProbeKind.EMBEDDING, False),
    (ProbeKind.HEALTH, False),
)
_Basis = tuple[ProbeKind, bool]
_KINDS = tuple(ProbeKind)
_LN2 = math.log(2.0)


def _latencies(h: HostHealth, basis: _Basis) -> list[float]:
    kind, ttft = basis
    return h.samples.ok_ttfts(kind) if ttft else h.samples.ok_totals(kind)


def _latencies_at(h: HostHealth, basis: _Basis) -> list[tuple[float, float]]:
    kind, ttft = basis
    return h.samples.ok_ttfts_at(kind) if ttft else h.samples.ok_totals_at(kind)


def weighted_percentile(values: Sequence[tuple[float, float]], p: float) -> float | None:
    """Weighted nearest-rank percentile (0 < p <= 100) of (value, weight) pairs: the first value,
    in sorted order, at which the cumulative weight reaches p% of the total. Equal weights give
    plain nearest-rank (`monitor.core.percentile.percentile`). None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    total = math.fsum(w for _, w in ordered)
    wanted = p / 100.0 * total * (1.0 - 1e-12)  # rounding must not skip an exact rank
    cumulative = 0.0
    for value, weight in ordered:
        cumulative += weight
        if cumulative >= wanted:
            return value
    return ordered[-1][0]


def _scored(h: HostHealth, basis: _Basis | None, policy: RankingPolicy) -> tuple[float | None, int]:
    """(score, number of latency samples it rests on)."""
    timed = _latencies_at(h, basis) if basis is not None else []
    if not timed:
        return None, 0
    window = h.samples
    newest = max(window.latest(kind) or 0.0 for kind in _KINDS)
    rate = -_LN2 / policy.half_life_s
    weighted = [(value, exp((newest - at) * rate)) for at, value in timed]
    p50, p95 = weighted_percentile(weighted, 50), weighted_percentile(weighted, 95)
    assert p50 is not None and p95 is not None
    share = 0.0
    if window.ok_count() < len(window):  # most hosts have no failure in their window
        forgiven = h.forgiven_before
        total = failed = 0.0
        for at, ok in window.outcomes_at():
            if not ok and forgiven is not None and at <= forgiven:
                continue  # a forgiven outage: punished by the ejection, not again here
            w = exp((newest - at) * rate)
            total += w
            if not ok:
                failed += w
        share = failed / total if total > 0 else 0.0
    return 0.5 * p50 + 0.5 * p95 + policy.failure_penalty_ms * share, len(timed)


def score(h: HostHealth, policy: RankingPolicy = DEFAULT_RANKING_POLICY) -> float | None:
    """The host's latency score on its own best basis (lower is better); None without one."""
    for basis in _BASES:
        value, _ = _scored(h, basis, policy)
        if value is not None:
            return value
    return None


def _recency_key(h: HostHealth) -> tuple[bool, float]:
    return (h.last_ok_at is None, -(h.last_ok_at or 0.0))


def _rest_group(h: HostHealth) -> int:
    if h.state is HostState.UNKNOWN:
        return 0
    return 1 if h.reason is Outcome.NOT_LOADED else 2


# host -> (the health state it was scored from, the basis, (score, samples))
ScoreMemo = dict[str, tuple[HostHealth, _Basis | None, tuple[float | None, int]]]


# Hosts looked at per step of `rank`: a few milliseconds of work.
HOSTS_PER_STEP = 1000


def _basis(trusted: list[HostHealth]) -> Steps[_Basis | None]:
    """The first latency basis that any of `trusted` has measured."""
    for basis in _BASES:
        for i in range(0, len(trusted), HOSTS_PER_STEP):
            if any(_latencies(h, basis) for h in trusted[i : i + HOSTS_PER_STEP]):
                return basis
            yield None
    return None


def _scores(
    trusted: list[HostHealth], basis: _Basis | None, policy: RankingPolicy, memo: ScoreMemo | None
) -> Steps[dict[str, tuple[float | None, int]]]:
    """Each host's (score, samples) on `basis`, from `memo` where its state did not change."""

    def scored(h: HostHealth) -> tuple[str, tuple[float | None, int]]:
        hit = None if memo is None else memo.get(h.host)
        if hit is not None and hit[0] is h and hit[1] == basis:
            return h.host, hit[2]
        value = _scored(h, basis, policy)
        if memo is not None:
            memo[h.host] = (h, basis, value)
        return h.host, value

    scores = dict((yield from mapped(trusted, scored, HOSTS_PER_STEP)))
    if memo is not None:
        for gone in memo.keys() - scores.keys():
            del memo[gone]
    return scores


def rank(
    model: str,
    hosts: Sequence[HostHealth],
    previous_best: str | None,
    now: float,
    policy: RankingPolicy = DEFAULT_RANKING_POLICY,
    memo: ScoreMemo | None = None,
    *,
    keyed: bool = False,
    drained: frozenset[str] = frozenset(),
) -> Steps[ModelRanking]:
    """Rank the hosts of `model` at time `now`, in steps of `HOSTS_PER_STEP` hosts;
    `previous_best` is the last answer's best host.

    `memo`, kept by the caller between calls for one model, holds each host's score with the
    health state it was computed from: a host whose state object did not change is not scored
    again. (A model with thousands of hosts is re-ranked several times a second while only a few
    of its hosts changed.) The answer is the same with or without it. Nothing it reads may change
    between steps but `memo`, which is lent to it (the hosts are immutable states).

    `keyed`: the model gets billed (keyed) probes, so a host needs an accepted key to be best.
    `drained`: hosts in a maintenance window, out of routing.
    """
    trusted = [h for h in hosts if h.trusted and h.host not in drained]
    untrusted = sorted(h.host for h in hosts if not h.trusted)
    held = sorted(h.host for h in hosts if h.trusted and h.host in drained) if drained else []
    basis = yield from _basis(trusted)
    scores = yield from _scores(trusted, basis, policy, memo)

    def by_score(h: HostHealth) -> tuple[bool, float, str]:
        value = scores[h.host][0]
        return (value is None, value if value is not None else 0.0, h.host)

    yield
    up = [h for h in trusted if h.state is HostState.UP]
    if not up:
        order = sorted(trusted, key=lambda h: (*_recency_key(h), _rest_group(h), h.host))
        urls = tuple(h.host for h in order)
        return ModelRanking(
            model=model,
            best=None,
            fallbacks=urls,
            ordered=(*urls, *held, *untrusted),
            healthy=0,
            known=len(hosts),
            panic=True,
        )

    unproven = sorted((h for h in up if keyed and h.key_ok is not True), key=by_score)
    keyed_ok = [h for h in up if not keyed or h.key_ok is True]
    eligible = sorted((h for h in keyed_ok if is_eligible(h, now)), key=by_score)
    ejected = sorted((h for h in keyed_ok if not is_eligible(h, now)), key=by_score)
    contenders = eligible or ejected
    best = _choose(contenders, previous_best, lambda h: scores[h.host], policy) if contenders else None
    up_order = [h.host for h in eligible + ejected + unproven if h is not best]
    if best is not None:
        up_order.insert(0, best.host)
    yield
    rest = sorted(
        (h for h in trusted if h.state is not HostState.UP),
        key=lambda h: (_rest_group(h), *_recency_key(h), h.host),
    )
    return ModelRanking(
        model=model,
        best=None if best is None else best.host,
        fallbacks=tuple(up_order[1:] if best is not None else up_order),
        ordered=(*up_order, *(h.host for h in rest), *held, *untrusted),
        healthy=len(up),
        known=len(hosts),
        panic=False,
        eligible=tuple(h.host for h in contenders),
    )


def _choose(
    contenders: list[HostHealth],
    previous_best: str | None,
    scored: Callable[[HostHealth], tuple[float | None, int]],
    policy: RankingPolicy,
) -> HostHealth:
    """The best of `contenders` (sorted by score, not empty), keeping `previous_best` if it holds."""
    incumbent = next((h for h in contenders if h.host == previous_best), None)
    if incumbent is None:
        return contenders[0]
    incumbent_score, _ = scored(incumbent)
    for h in contenders:
        if h is incumbent:
            continue
        value, n = scored(h)
        if value is None:
            break  # sorted: no scored challenger is left
        if incumbent_score is not None and value >= incumbent_score * (1.0 - policy.margin):
            break  # sorted: no later challenger can beat the margin either
        if n >= policy.min_samples:
            return h  # an unproven challenger never takes best: it may be ahead on luck
    return incumbent
