"""/metrics: what an operator's Prometheus scrapes, linted by promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp

from monitor.server import serving
from tests.deploy.prom import tool
from tests.service.support import eventually, network, settings_for


def _promtool() -> str:
    return tool("promtool")  # PATH, then .ci-tools/; fails in CI, skips elsewhere when missing


async def _scrape(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return await r.text()


async def test_metrics_describe_every_model_and_host(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with network("demo") as net, serving(settings_for(net, tmp_path)) as svc:
        await eventually(
            lambda: (
                any(k[2] == "completion" and k[3] == "ok" for k in svc.monitor.probe_counts)
                and any(m.best for m in svc.monitor.snapshot.models.values())
            ),
            timeout=30,
        )
        svc.monitor.publish(force=True)
        text = await _scrape(http, svc.url)
        snap = svc.monitor.snapshot
        for model, view in snap.models.items():
            assert f'libertai_monitor_model_healthy_hosts{{model="{model}"}} {float(view.healthy)}' in text
            for h in view.hosts:
                line = f'libertai_monitor_host_up{{host="{h.url}",model="{model}"}}'
                # Per-host series are exported once, under the base id, not again per alias.
                assert (line in text) == (view.probed_as == model), line
        best_model, best_view = next((m, v) for m, v in snap.models.items() if v.best)
        assert f'libertai_monitor_best_host_info{{host="{best_view.best}",model="{best_model}"}} 1.0' in text
        assert 'libertai_monitor_probes_total{host="' in text
        assert 'kind="completion",model="' in text and 'outcome="ok"' in text
        for name in (
            "libertai_monitor_discovery_success 1.0",
            "libertai_monitor_discovery_hosts ",
            "libertai_monitor_discovery_list_age_seconds ",
            "libertai_monitor_scheduler_lag_seconds ",
            'libertai_monitor_scheduler_skipped_runs_total{reason="overrun"}',
            "libertai_monitor_db_write_errors_total 0.0",
            "libertai_monitor_build_info{",
            "libertai_monitor_gateway_key_ok 1.0",
        ):
            assert name in text, name


async def test_promtool_finds_nothing_to_lint(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    promtool = _promtool()
    async with network("chaos") as net, serving(settings_for(net, tmp_path)) as svc:
        await eventually(lambda: svc.monitor.probe_counts.total() > 50, timeout=30)
        text = await _scrape(http, svc.url)
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), (
        proc.stdout + proc.stderr
    )
