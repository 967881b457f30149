"""Render time and weight of the status page at 100 models x 5 hosts (< 50 ms at p99,
< 200 KB).

A snapshot of `models` x `hosts` hosts (the last host of every third model down, with a reason)
and a full history (every hour of the last 24 hours and every day of the last 90 days filled in
for every host) are built in memory; the pages are then rendered as the service renders them, in
three cases (the service renders once per new snapshot, in a worker thread, and serves every
request after that from memory):

- `overview`: a new snapshot in which 5 models changed (the usual quarter-second publish; model
  cards and host rows whose inputs did not change are kept);
- `overview_history_read`: after a new read of the history (every 30 s): the live periods (the
  last two hours and days) drawn again, every card rendered and compressed again;
- `overview_cold`: everything drawn and rendered again (after a history read, every 30 s, or when
  the hour turns);
- `model_page` and `model_page_cold`: one model's page.

Reported: render time (median, p90, p99, max; the gzipped body included: unchanged cards keep
their compressed bytes, see monitor/web/status/gzjoin.py), and the page's size plain and gzipped
(what a browser downloads: every browser sends `Accept-Encoding: gzip`).

Usage: python -m bench.status_page [--models 100] [--hosts 5] [--renders 200] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import random
import time
from dataclasses import replace
from typing import Any, Literal

from bench.common import base_result, log, summary, write_result
from monitor.core.host_view import HostView
from monitor.core.keys import HostKey
from monitor.core.results import HostState, Outcome
from monitor.core.snapshot import DiscoveryStatus, ModelView, Snapshot
from monitor.core.steps import finish
from monitor.web.status.drawings import Drawings
from monitor.web.status.history import Bucket, History, day_slots, hour_slots
from monitor.web.status.incidents import IncidentLog
from monitor.web.status.render import Cards, render_page

READINESS = {"discovery": "ok", "api_key": "ok", "database": "ok"}


def build(models: int, hosts: int, now: float, seed: int = 1) -> tuple[Snapshot, History, IncidentLog]:
    rng = random.Random(seed)
    views: dict[str, ModelView] = {}
    hourly: dict[HostKey, dict[float, Bucket]] = {}
    daily: dict[HostKey, dict[float, Bucket]] = {}
    incidents = IncidentLog()
    hours, days = hour_slots(now), day_slots(now)
    for m in range(models):
        model = f"model-{m:03d}-instruct"
        host_views = []
        for h in range(hosts):
            url = f"https://crn-{m:03d}-{h}.node.libertai.io"
            down = h == hosts - 1 and m % 3 == 0
            ttft = rng.uniform(60, 900)
            host_views.append(
                HostView(
                    model=model,
                    url=url,
                    state=HostState.DOWN if down else HostState.UP,
                    reason=Outcome.KEY_REJECTED if down else Outcome.OK,
                    availability=0.42 if down else 0.998,
                    samples=50,
                    ttft_ms_p50=None if down else ttft,
                    ttft_ms_p95=None if down else ttft * 1.4,
                    latency_ms_p50=ttft + 5,
                    last_probe_at=now - rng.uniform(0, 30),
                    last_ok_at=now - (3600 if down else rng.uniform(0, 30)),
                    consecutive_failures=5 if down else 0,
                    key_ok=not down,
                    last_outcome=Outcome.KEY_REJECTED if down else Outcome.OK,
                )
            )
            hourly[HostKey(model, url)] = {
                s: Bucket(s, 130, 130 - rng.choice((0, 0, 0, 1, 5)), ttft * rng.uniform(0.9, 1.1), ttft * 1.5)
                for s in hours
            }
            daily[HostKey(model, url)] = {
                s: Bucket(s, 3100, 3100 - rng.choice((0, 0, 2, 30)), ttft * rng.uniform(0.9, 1.1), ttft * 1.5)
                for s in days
            }
            if down:
                incidents.state_changed(
                    now - 3600, model, url, HostState.UP, HostState.DOWN, Outcome.KEY_REJECTED
                )
        best = host_views[0].url
        fallbacks = tuple(v.url for v in host_views[1:] if v.state is HostState.UP)
        healthy = sum(v.state is HostState.UP for v in host_views)
        views[model] = ModelView(model, model, best, fallbacks, healthy, hosts, False, tuple(host_views))
    discovery = DiscoveryStatus(last_attempt_at=now - 20, last_ok_at=now - 20, ok=True, runs_ok=100)
    snapshot = Snapshot(generated_at=now, models=views, discovery=discovery, key_outcome=Outcome.OK)
    return snapshot, History(hourly=hourly, daily=daily, loaded_at=now, version=1), incidents


Case = Literal["snapshot", "history_read", "cold"]


def _touched(snapshot: Snapshot, i: int, changed: int) -> Snapshot:
    """The next snapshot: `changed` models (a different few each time) had a host probed."""
    names = list(snapshot.models)
    models = dict(snapshot.models)
    for k in range(changed):
        name = names[(i * changed + k * 17) % len(names)]  # spread over the page, as probes are
        v = models[name]
        first = replace(v.hosts[0], last_probe_at=(v.hosts[0].last_probe_at or 0) + 1)
        models[name] = replace(v, hosts=(first, *v.hosts[1:]))
    return replace(snapshot, models=models, generated_at=snapshot.generated_at + 0.25 * (i + 1))


def measure(
    snapshot: Snapshot, history: History, incidents: IncidentLog, renders: int, model: str | None, case: Case
) -> dict[str, Any]:
    """Render `renders` times, as the service does in these cases:
    - `snapshot`: a new snapshot in which 5 models changed (the usual quarter-second publish);
    - `history_read`: a new read of the history (every 30 s): the live periods of every model drawn
      again (the settled ones kept), so every card is rendered and compressed again;
    - `cold`: everything drawn and rendered again (a new history read, every 30 s, or a new hour)."""
    recent = incidents.recent(snapshot.generated_at)
    render_ms: list[float] = []
    body = gz = b""
    drawings, cards = Drawings(), Cards()
    finish(render_page("LibertAI status", snapshot, history, READINESS, recent, 15.0, model, drawings, cards))
    for i in range(renders):
        snap, hist = snapshot, history
        if case == "cold":
            drawings, cards = Drawings(), Cards()
        elif case == "history_read":
            hist = replace(history, version=history.version + i + 1)
        else:
            snap = _touched(snapshot, i, 5)
        t0 = time.perf_counter()
        pages = render_page("LibertAI status", snap, hist, READINESS, recent, 15.0, model, drawings, cards)
        body, gz = finish(pages)
        render_ms.append((time.perf_counter() - t0) * 1000)
    assert gzip.decompress(gz) == body
    return {
        "render_ms": summary(render_ms, 2),
        "bytes": len(body),
        "gzip_bytes": len(gz),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--hosts", type=int, default=5)
    p.add_argument("--renders", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="10 models x 5 hosts, 10 renders: a smoke test")
    a = p.parse_args()
    if a.quick:
        a.models, a.renders = 10, 10
    result = base_result("status_page", a.quick, {"models": a.models, "hosts": a.hosts, "renders": a.renders})
    now = time.time()
    snapshot, history, incidents = build(a.models, a.hosts, now)
    gc.collect()
    first = next(iter(snapshot.models))
    few = max(a.renders // 4, 5)
    overview = measure(snapshot, history, incidents, a.renders, None, "snapshot")
    every = measure(snapshot, history, incidents, few, None, "history_read")
    cold = measure(snapshot, history, incidents, few, None, "cold")
    one = measure(snapshot, history, incidents, a.renders, first, "snapshot")
    one_cold = measure(snapshot, history, incidents, few, first, "cold")
    result.update(
        overview=overview,
        overview_history_read=every,
        overview_cold=cold,
        model_page=one,
        model_page_cold=one_cold,
    )
    result["figures"] = {
        "render_p99_ms": overview["render_ms"]["p99"],
        "render_history_read_p99_ms": every["render_ms"]["p99"],
        "render_cold_p99_ms": cold["render_ms"]["p99"],
        "page_gzip_kib": round(overview["gzip_bytes"] / 1024, 1),
        "page_kib": round(overview["bytes"] / 1024, 1),
        "model_page_render_p99_ms": one["render_ms"]["p99"],
        "model_page_cold_p99_ms": one_cold["render_ms"]["p99"],
        "model_page_gzip_kib": round(one["gzip_bytes"] / 1024, 1),
    }
    result["targets"] = {"render_p99_ms": 50, "page_gzip_kib": 200}
    log(f"status_page: {result['figures']}")
    return write_result("status_page", result)


if __name__ == "__main__":
    raise SystemExit(main())
