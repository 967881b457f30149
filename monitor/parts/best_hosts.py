"""The best host of every model: ranked on demand, remembered between rankings, announced on change.

Ranking is `ranking.rank`'s (pure, with hysteresis against the previous best). This part keeps the
previous best per model (restored from history at start) and each model's score memo, and tells its
subscribers (the log, the store) when a model's best host changed: it does not log or write itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from monitor.config import Settings
from monitor.core.health import HostHealth
from monitor.core.ranking import ModelRanking, RankingPolicy, ScoreMemo, rank
from monitor.core.steps import Steps
from monitor.logging import get_logger

log = get_logger("monitor.service")  # the service's parts log under one name


@dataclass(frozen=True, slots=True)
class BestChanged:
    """A model's best host changed (or was chosen for the first time since start: `known` False)."""

    model: str
    previous: str | None
    host: str | None
    at: float
    known: bool


def ranking_policy(settings: Settings) -> RankingPolicy:
    return RankingPolicy(
        margin=settings.ranking_margin,
        min_samples=settings.ranking_min_samples,
        half_life_s=settings.ranking_half_life,
    )


class BestHosts:
    def __init__(self, policy: RankingPolicy, keyed: Callable[[str], bool] = lambda _: False) -> None:
        self._policy = policy
        # Where billed probes run, a host is best only once its key was accepted (see ranking.rank).
        self._keyed = keyed
        self.best: dict[str, str | None] = {}
        self._memo: dict[str, ScoreMemo] = {}
        self._subscribers: list[Callable[[BestChanged], None]] = []

    def subscribe(self, subscriber: Callable[[BestChanged], None]) -> None:
        self._subscribers.append(subscriber)

    def restore(self, best: Mapping[str, str | None], models: set[str]) -> None:
        """The best hosts saved before a restart, for the models still listed (no event)."""
        self.best.update({m: h for m, h in best.items() if m in models})

    def retain(self, models: set[str]) -> None:
        """Forget the models no longer listed: one that comes back is chosen for anew."""
        for model in [m for m in self.best if m not in models]:
            del self.best[model]

    def forget(self, model: str) -> None:
        self._memo.pop(model, None)

    def rank(self, model: str, hosts: Sequence[HostHealth], now: float) -> Steps[ModelRanking]:
        """Rank `model`'s hosts now, in steps; announces a change of its best host."""
        done = yield from self.ranker(model, hosts, now).run()
        return self.settle(done)

    def ranker(
        self, model: str, hosts: Sequence[HostHealth], now: float, drained: frozenset[str] = frozenset()
    ) -> Ranker:
        """The ranking of `model` as steps that touch nothing shared, so that other work may run
        between them: the hosts are immutable states, and the model's score memo is lent to the
        ranking. `drained`: hosts in a maintenance window. Hand its result to `settle`."""
        return Ranker(
            model,
            tuple(hosts),
            self.best.get(model),
            now,
            self._policy,
            self._memo.pop(model, {}),
            self._keyed(model),
            drained,
        )

    def settle(self, done: Ranked) -> ModelRanking:
        """Take a ranking back (on the event loop): keep its memo, announce a new best host."""
        ranking = done.ranking
        self._memo[ranking.model] = done.memo
        model, previous, now = ranking.model, done.previous, done.now
        known = model in self.best
        if ranking.best != previous or not known:
            self.best[model] = ranking.best
            event = BestChanged(model, previous, ranking.best, now, known)
            for subscriber in self._subscribers:
                subscriber(event)
        return ranking


@dataclass(frozen=True, slots=True)
class Ranked:
    ranking: ModelRanking
    previous: str | None
    now: float
    memo: ScoreMemo


@dataclass(frozen=True, slots=True)
class Ranker:
    """One model's ranking, ready to run (see `BestHosts.ranker`)."""

    model: str
    hosts: tuple[HostHealth, ...]
    previous: str | None
    now: float
    policy: RankingPolicy
    memo: ScoreMemo  # lent: only this call uses it until `settle` takes it back
    keyed: bool  # a host may be best only once its key was accepted
    drained: frozenset[str] = frozenset()  # hosts in a maintenance window: out of routing

    def run(self) -> Steps[Ranked]:
        """The ranking, in steps of a few milliseconds (see `ranking.rank`)."""
        ranking = yield from rank(
            self.model,
            self.hosts,
            self.previous,
            self.now,
            self.policy,
            self.memo,
            keyed=self.keyed,
            drained=self.drained,
        )
        return Ranked(ranking, self.previous, self.now, self.memo)


def log_best_change(event: BestChanged) -> None:
    if event.previous is None and event.host is not None:
        log.info("best host chosen", model=event.model, host=event.host)
    elif event.known and event.previous != event.host:
        log.info("best host changed", model=event.model, previous=event.previous, host=event.host)
