"""A real Prometheus (Debian's 2.42) scraping the whole service every second, with the shipped alert
rules (every `for:` shortened to 2 s): every dashboard expression and every alert expression
evaluates, and the no-healthy-host alert follows a model losing and regaining its hosts in the
simulated network."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from monitor.server import serving
from tests.deploy.dashboards import dashboard_expressions
from tests.deploy.prom import (
    SHIPPED_CONFIG,
    SHIPPED_RULES,
    SHIPPED_SLO_RULES,
    Prometheus,
    alert_names,
    local_config,
    running_prometheus,
    shorten_for,
    tool,
)
from tests.service.support import eventually, network, settings_for

pytestmark = pytest.mark.slow  # a live Prometheus process

MODEL = "qwen3-coder-next"  # the demo preset serves it on qwen-a and qwen-b only
MODEL_HOSTS = ("qwen-a", "qwen-b")
NO_HEALTHY_HOST = "LibertaiModelNoHealthyHost"
GRAFANA_VARIABLES = {
    "model": ".*",
    "host": ".*",
    "__rate_interval": "5s",
    "__interval": "5s",
    "__range": "1m",
}


async def _scraped(prom: Prometheus) -> bool:
    up = await prom.result('up{job="libertai-monitor"}')
    if not up or up[0]["value"][1] != "1":
        return False
    count = await prom.result('count_over_time(up{job="libertai-monitor"}[30s])')
    return bool(count) and float(count[0]["value"][1]) >= 5


async def _empty_dashboard_panels(prom: Prometheus, panels: list[tuple[str, str]]) -> list[str]:
    """Panels whose expression returns nothing (yet): some need a completion or two rate samples."""
    empty = []
    for title, expr in panels:
        if not await prom.result(expr):
            empty.append(f"{title}: {expr}")
    return empty


async def _model_alert(prom: Prometheus) -> dict[str, Any] | None:
    return next(
        (
            a
            for a in await prom.alerts()
            if a["labels"].get("alertname") == NO_HEALTHY_HOST and a["labels"].get("model") == MODEL
        ),
        None,
    )


async def test_dashboards_and_alerts_against_a_live_prometheus(tmp_path: Path) -> None:
    tool("prometheus")  # skip (or fail in CI) before starting anything
    rules_text = shorten_for(SHIPPED_RULES.read_text(), "2s")
    slo_text = shorten_for(SHIPPED_SLO_RULES.read_text(), "2s")
    async with network("demo") as net, serving(settings_for(net, tmp_path)) as svc:
        target = svc.url.removeprefix("http://")
        config = local_config(SHIPPED_CONFIG.read_text(), target, "1s")
        async with running_prometheus(
            tmp_path / "prometheus", config, rules_text, slo_rules_text=slo_text
        ) as prom:
            try:
                await _check(prom, net)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{await _diagnosis(prom)}") from None


async def _diagnosis(prom: Prometheus) -> str:
    """What Prometheus saw, for a failure's message."""
    lines = []
    try:
        for a in await prom.alerts():
            lines.append(f"alert {a['labels']} {a['state']} since {a.get('activeAt')}")
        for expr in (f'libertai_monitor_host_state{{model="{MODEL}"}} == 1', 'up{job="libertai-monitor"}'):
            lines.extend(f"{expr}: {r['metric']} {r['value']}" for r in await prom.result(expr))
    except Exception as exc:  # the diagnosis must not hide the failure
        lines.append(f"(Prometheus not queried: {exc!r})")
    return "\n".join(["--- active alerts and series:", *lines, "--- Prometheus log (tail):", prom.log_tail()])


async def _check(prom: Prometheus, net: Any) -> None:
    await eventually(lambda: _scraped(prom), timeout=20, every=0.5)

    # 1. Every dashboard expression is valid PromQL and has data.
    panels = dashboard_expressions(dict(GRAFANA_VARIABLES))
    assert panels, "the dashboard has panels"
    for title, expr in panels:
        assert not re.search(r"\$\{?\w", expr), f"{title}: variable left in {expr}"
        body = await prom.query(expr)
        assert body["status"] == "success", f"{title}: {expr}: {body.get('error')}"
    empty: list[str] = []

    async def all_have_data() -> bool:
        empty[:] = await _empty_dashboard_panels(prom, panels)
        return not empty

    try:
        await eventually(all_have_data, timeout=20, every=1)
    except AssertionError:
        raise AssertionError("dashboard panels without data:\n" + "\n".join(empty)) from None

    # ... and every alert expression, as Prometheus loaded it, is valid and evaluates cleanly.
    rules = await eventually(_evaluated_rules(prom), timeout=10, every=0.5)
    shipped = alert_names(SHIPPED_RULES.read_text()) + alert_names(SHIPPED_SLO_RULES.read_text())
    assert sorted(r["name"] for r in rules) == sorted(shipped)
    for rule in rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
        assert rule["duration"] == 2, f"{rule['name']}: for: shortened to 2 s"
        body = await prom.query(rule["query"])
        assert body["status"] == "success", f"{rule['name']}: {rule['query']}: {body.get('error')}"

    # 2. The model loses both hosts: the alert goes pending, then fires; they come back: it resolves.
    # (Before the first probes the model had no healthy host either: that alert must be gone.)
    await eventually(lambda: _healthy_hosts_seen(prom), timeout=20, every=0.5)
    await eventually(lambda: _resolved(prom), timeout=10, every=0.5)
    for name in MODEL_HOSTS:
        net.set_host(name, down=True)
    active = await eventually(lambda: _model_alert(prom), timeout=20, every=0.5)
    assert active["state"] in {"pending", "firing"}
    assert active["labels"]["severity"] == "critical"
    assert MODEL in active["annotations"]["summary"]
    await eventually(lambda: _firing(prom), timeout=10, every=0.5)
    # Each host is down too (with for: shortened, the host-down alert fires as well), with its reason.
    truth = [h for h in net.ground_truth()["hosts"] if h["name"] in MODEL_HOSTS]
    urls = {h["normalized_url"] for h in truth}
    reasons = {r for h in truth for r in h["expected"][MODEL]["acceptable_reasons"]}  # server_error
    down = await eventually(lambda: _hosts_down(prom, urls), timeout=10, every=0.5)
    for alert in down:
        said = re.search(r"reason (\w+)", alert["annotations"]["description"])
        assert said and said.group(1) in reasons, alert["annotations"]["description"]

    for name in MODEL_HOSTS:
        net.set_host(name, down=False)
    await eventually(lambda: _resolved(prom), timeout=30, every=0.5)


async def _hosts_down(prom: Prometheus, urls: set[str]) -> list[dict[str, Any]] | None:
    down = [
        a
        for a in await prom.alerts()
        if a["labels"].get("alertname") == "LibertaiHostDown"
        and a["labels"].get("model") == MODEL
        and a["labels"].get("host") in urls
        and a["state"] == "firing"
    ]
    return down if {a["labels"]["host"] for a in down} == urls else None


def _evaluated_rules(prom: Prometheus) -> Any:
    async def check() -> list[dict[str, Any]] | None:
        rules = await prom.alerting_rules()
        evaluated = all(not r.get("lastEvaluation", "").startswith("0001-") for r in rules)
        return rules if rules and evaluated else None

    return check


async def _healthy_hosts_seen(prom: Prometheus) -> bool:
    result = await prom.result(f'libertai_monitor_model_healthy_hosts{{model="{MODEL}"}} > 0')
    return bool(result)


async def _firing(prom: Prometheus) -> bool:
    alert = await _model_alert(prom)
    return alert is not None and alert["state"] == "firing"


async def _resolved(prom: Prometheus) -> bool:
    return await _model_alert(prom) is None
