"""Values for the status page's tests: snapshots built directly, a stand-in for the monitor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from monitor.core.host_view import HostView
from monitor.core.results import HostState, Outcome
from monitor.core.snapshot import DiscoveryStatus, ModelView, Snapshot
from monitor.store import Store
from monitor.web.status.incidents import IncidentLog
from monitor.web.status.routes import StatusState, add_status_routes

NOW = 1_764_000_000.0  # a fixed wall-clock time: 2025-11-24 16:00 UTC
A = "https://a.example.libertai.io"
B = "https://b.example.libertai.io"
C = "https://c.example.libertai.io"


def host(
    model: str,
    url: str,
    state: HostState = HostState.UP,
    reason: Outcome = Outcome.OK,
    ttft: float | None = 100.0,
    last_ok_at: float | None = NOW - 5,
) -> HostView:
    up = state is HostState.UP
    return HostView(
        model=model,
        url=url,
        state=state,
        reason=reason,
        availability=1.0 if up else 0.5,
        samples=10,
        ttft_ms_p50=ttft,
        ttft_ms_p95=None if ttft is None else ttft * 1.5,
        latency_ms_p50=None if ttft is None else ttft + 3,
        last_probe_at=NOW - 1,
        last_ok_at=last_ok_at,
        consecutive_failures=0 if up else 3,
        key_ok=True if up else None,
        last_outcome=reason,
    )


def model(name: str, hosts: Sequence[HostView], probed_as: str | None = None) -> ModelView:
    up = [h.url for h in hosts if h.state is HostState.UP]
    best = up[0] if up else None
    return ModelView(
        name, probed_as or name, best, tuple(up[1:]), len(up), len(hosts), best is None, tuple(hosts)
    )


def snapshot(*models: ModelView, at: float = NOW) -> Snapshot:
    d = DiscoveryStatus(last_attempt_at=at - 10, last_ok_at=at - 10, ok=True, runs_ok=3)
    return Snapshot(generated_at=at, models={m.model: m for m in models}, discovery=d, key_outcome=Outcome.OK)


@dataclass
class Ready:
    checks: Mapping[str, str] = field(
        default_factory=lambda: {"discovery": "ok", "api_key": "ok", "database": "ok"}
    )


@dataclass
class FakeSource:
    """What the page reads of a monitor: a snapshot to swap, readiness, incidents, no store."""

    snapshot: Snapshot
    store: Store | None = None
    incidents: IncidentLog = field(default_factory=IncidentLog)
    ready: Ready = field(default_factory=Ready)

    def readiness(self) -> Ready:
        return self.ready


def app_for(source: FakeSource, title: str = "LibertAI status") -> tuple[web.Application, StatusState]:
    app = web.Application()
    state = add_status_routes(app, source, title)
    return app, state
