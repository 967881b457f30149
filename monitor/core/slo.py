"""Service level objectives: which probe results count toward which objective, and the error
budget left of each.

Two objectives per model. `availability`: the share of the model's probes (health, completion,
embedding; not the host-wide auth check, not throughput) that succeed; a probe that says nothing
of the host (not probed, endpoint not supported) counts for nothing, as in health and roll-ups.
`ttft`: the share of successful completions whose time to first token is at most `ttft_ms` (a
failed completion is availability's business, not latency's). The error budget is the bad events
an objective allows, `(1 - objective) * total`; `budget_left` is the share of it not yet spent
(negative once overspent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core.health import NEUTRAL_OUTCOMES
from monitor.core.results import Outcome, ProbeKind, ProbeResult

AVAILABILITY = "availability"
TTFT = "ttft"
SLOS = (AVAILABILITY, TTFT)

AVAILABILITY_KINDS = frozenset({ProbeKind.HEALTH, ProbeKind.COMPLETION, ProbeKind.EMBEDDING})

SloCounts = Counter[tuple[str, str]]  # (model, slo) -> events

WINDOW_DAYS = 30  # the error budget's window, read from the store
DEFAULT_TTFT_MS = 2000.0


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Good and all events of each (model, slo) from `since` to `until` (epoch seconds), as the
    store counted them (hourly roll-ups and the raw results not rolled up yet)."""

    good: Mapping[tuple[str, str], int]
    total: Mapping[tuple[str, str], int]
    since: float
    until: float
    window_days: float


@dataclass(frozen=True, slots=True)
class Objectives:
    availability: float = 0.99
    ttft_ms: float = DEFAULT_TTFT_MS
    ttft_target: float = 0.95

    def target(self, slo: str) -> float:
        return self.availability if slo == AVAILABILITY else self.ttft_target


def counts_for_availability(kind: ProbeKind, outcome: Outcome) -> bool:
    return kind in AVAILABILITY_KINDS and outcome not in NEUTRAL_OUTCOMES


def counts_for_ttft(kind: ProbeKind, outcome: Outcome, ttft_ms: float | None) -> bool:
    """A successful completion that measured its first token (a failed one is availability's)."""
    return kind is ProbeKind.COMPLETION and outcome is Outcome.OK and ttft_ms is not None


def events(result: ProbeResult, objectives: Objectives) -> Iterator[tuple[str, bool]]:
    """(slo, good) for each objective `result` counts toward."""
    if not result.model or not counts_for_availability(result.kind, result.outcome):
        return
    yield AVAILABILITY, result.ok
    if result.ttft_ms is not None and counts_for_ttft(result.kind, result.outcome, result.ttft_ms):
        yield TTFT, result.ttft_ms <= objectives.ttft_ms


def budget_left(good: int, total: int, objective: float) -> float:
    """The share of the error budget not spent: 1 with no bad event (or no event), 0 when the bad
    events are exactly what the objective allows, below 0 past it."""
    if total <= 0:
        return 1.0
    allowed = (1.0 - objective) * total
    bad = total - min(good, total)
    return 1.0 - bad / allowed


@dataclass(frozen=True, slots=True)
class Budget:
    objective: float
    good: int
    total: int

    @property
    def left(self) -> float:
        return budget_left(self.good, self.total, self.objective)

    def as_json(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "good": self.good,
            "total": self.total,
            "budget_left": round(self.left, 6),
        }


def budgets(
    good: Mapping[tuple[str, str], int], total: Mapping[tuple[str, str], int], objectives: Objectives
) -> dict[str, dict[str, Budget]]:
    """Every model's budgets, by model then objective (an objective with no event is left out)."""
    out: dict[str, dict[str, Budget]] = {}
    for (model, slo), n in sorted(total.items()):
        out.setdefault(model, {})[slo] = Budget(objectives.target(slo), good.get((model, slo), 0), n)
    return out


def budget_words(by_slo: Mapping[str, Budget]) -> str | None:
    """The status page's line of a model: "error budget left: 73%" (availability), with the TTFT
    objective's beside it; None before any event."""
    shown = [(slo, b.left) for slo, b in sorted(by_slo.items()) if b.total > 0]
    if not shown:
        return None

    def percent(left: float) -> str:
        return f"{max(0.0, left):.0%}" if left > 0 else "none (spent)"

    parts = [f"{percent(left)}{'' if slo == AVAILABILITY else ' (TTFT)'}" for slo, left in shown]
    return "error budget left: " + ", ".join(parts)


def report(
    good: Mapping[tuple[str, str], int],
    total: Mapping[tuple[str, str], int],
    objectives: Objectives,
    generated_at: str | None,
    since: str | None,
    window_days: float | None = None,
) -> dict[str, Any]:
    """The body of `/v1/slo` (times as ISO 8601 text). `window_days`: the counts are the store's
    over that many days back from `generated_at`; None: this process's own since `since`."""
    return {
        "generated_at": generated_at,
        "since": since,
        "window_days": window_days,
        "source": "memory" if window_days is None else "store",
        "objectives": {
            AVAILABILITY: objectives.availability,
            TTFT: {"target": objectives.ttft_target, "threshold_ms": objectives.ttft_ms},
        },
        "models": {
            model: {slo: b.as_json() for slo, b in by_slo.items()}
            for model, by_slo in budgets(good, total, objectives).items()
        },
    }
