"""`GET /v1/slo`: the error budget left of each model's objectives, from the counts since start
(`monitor.core.slo`; the burn-rate alerts over longer windows are Prometheus's:
grafana/prometheus/slo.yml)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from monitor.core.host_view import iso
from monitor.core.slo import budget_words, budgets, report
from monitor.web.readout import Counters, Readout


def slo_body(readout: Readout) -> dict[str, Any]:
    c = readout.counters
    # Copies first: the loop keeps counting, and the two must agree with each other.
    good, total = dict(c.slo_good), dict(c.slo_total)
    return report(good, total, c.objectives, iso(readout.clock.time()), iso(c.started_at))


def budget_lines(c: Counters) -> dict[str, str]:
    """Each model's budget line for the status page (models with no event yet have none)."""
    out = {}
    for model, by_slo in budgets(dict(c.slo_good), dict(c.slo_total), c.objectives).items():
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
