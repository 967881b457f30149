"""`GET /v1/slo`: the error budget left of each model's objectives (`monitor.core.slo`): over the
last 30 days as the store counts them (read in the background, `monitor.parts.budgets`), or, with
no database (or before the first read), from this process's counts since start. The burn-rate
alerts over shorter windows are Prometheus's: grafana/prometheus/slo.yml."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from monitor.core.host_view import iso
from monitor.core.slo import budget_words, budgets, report
from monitor.web.readout import Counters, Readout


def _counts(c: Counters) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """(good, total) by (model, slo): the store's window when read, else since start."""
    stored = c.slo_window()
    if stored is not None:
        return dict(stored.good), dict(stored.total)
    # Copies: the loop keeps counting, and the two must agree with each other.
    return dict(c.slo_good), dict(c.slo_total)


def slo_body(readout: Readout) -> dict[str, Any]:
    c = readout.counters
    stored = c.slo_window()
    good, total = _counts(c)
    now = iso(readout.clock.time())
    if stored is None:
        return report(good, total, c.objectives, now, iso(c.started_at))
    return report(good, total, c.objectives, now, iso(stored.since), stored.window_days)


def budget_lines(c: Counters) -> dict[str, str]:
    """Each model's budget line for the status page (models with no event yet have none)."""
    out = {}
    good, total = _counts(c)
    for model, by_slo in budgets(good, total, c.objectives).items():
        words = budget_words(by_slo)
        if words is not None:
            out[model] = words
    return out


def add_slo_route(app: web.Application, readout: Readout) -> None:
    async def slo(_request: web.Request) -> web.Response:
        return web.Response(
            body=json.dumps(slo_body(readout), separators=(",", ":")).encode(),
            content_type="application/json",
        )

    app.router.add_get("/v1/slo", slo)
