"""What the status page says a host is measured by, for a down host which probe last succeeded
and which group fails since when, and which failure explains a host's reason. Pure, read from
the host's window and health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from monitor.core.failure import Failure
from monitor.core.health import HostHealth
from monitor.core.results import HostState, Outcome, ProbeKind
from monitor.core.window import Window

# The kinds a latency is read from, by preference (as the ranking's bases).
_MEASURED = (ProbeKind.COMPLETION, ProbeKind.EMBEDDING, ProbeKind.HEALTH)
_MODEL = frozenset({ProbeKind.COMPLETION, ProbeKind.EMBEDDING})
_SERVING = _MODEL | {ProbeKind.AUTH}


@dataclass(frozen=True, slots=True)
class DownFacts:
    """A down host: the kind of its newest success, and the kind failing with the start of its
    current run of failures (both None when the window does not say)."""

    last_ok_kind: ProbeKind | None = None
    failing_kind: ProbeKind | None = None
    failing_since: float | None = None


NO_DOWN_FACTS: Final = DownFacts()


def measured_by(window: Window) -> ProbeKind | None:
    """The kind whose latency the host is measured by: completion (time to first token), else
    embedding, else health (image and audio models); None before any sample."""
    return next((k for k in _MEASURED if window.count(k)), None)


def down_facts(h: HostHealth) -> DownFacts:
    """Which probe succeeded last and which fails since when, for a down host; empty otherwise."""
    if h.state is not HostState.DOWN:
        return NO_DOWN_FACTS
    serving = h.serving.failing
    failing_kind = h.serving.last_failure_kind if serving else ProbeKind.HEALTH
    last_ok: ProbeKind | None = None
    since: float | None = None
    run_open = True
    # An auth check that passes says nothing of a model whose probes fail (as in `health`): it
    # does not end their run of failures.
    model_failing = serving and failing_kind in _MODEL
    for s in reversed(list(h.samples)):
        in_group = (s.kind in _SERVING) if serving else (s.kind is ProbeKind.HEALTH)
        if s.outcome is Outcome.OK:
            last_ok = last_ok or s.kind
            if in_group and not (model_failing and s.kind is ProbeKind.AUTH):
                run_open = False
        elif in_group and run_open and s.outcome is not Outcome.UNSUPPORTED:
            since = s.at
        if last_ok is not None and not run_open:
            break
    return DownFacts(last_ok, failing_kind, since)


def last_failure(h: HostHealth) -> Failure | None:
    """The failure that explains the host's state: the failing group's last one (the serving
    group's first, as `reason`), else the newest of either group's; None when none was kept."""
    if h.serving.failing:
        return h.serving_failure
    if h.liveness.failing:
        return h.liveness_failure
    kept = [f for f in (h.liveness_failure, h.serving_failure) if f is not None]
    return max(kept, key=lambda f: f.at or 0.0) if kept else None
