"""Lint of the Grafana dashboard (grafana/dashboards/libertai-monitor.json) and its provisioning.

Grafana itself is not installable here, so these check what Grafana would otherwise show as broken
panels: datasource, units, variables, rate windows, and metric names the service really exposes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.server import serving
from tests.deploy.dashboards import (
    BUILTINS,
    DASHBOARD,
    content_panels,
    dashboard_expressions,
    iter_panels,
    load_dashboard,
    variables_in,
)
from tests.service.support import network, settings_for

ROOT = DASHBOARD.parents[2]
TEMPLATED_DS = {"type": "prometheus", "uid": "${datasource}"}
METRIC = re.compile(r"\blibertai_monitor_[a-z0-9_]+")
RATE = re.compile(r"\b(?:rate|irate|increase)\s*\(")
RANGE = re.compile(r"\[([^\]]*)\]")


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return load_dashboard()


def _exprs(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in content_panels(board) for t in p.get("targets", [])]


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def test_is_a_dashboard_with_uid_title_and_schema(board: dict[str, Any]) -> None:
    assert board["uid"] == "libertai-monitor"
    assert board["title"] == "LibertAI monitor"
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert board["panels"] and board["templating"]["list"]


def test_rows_are_the_five_sections(board: dict[str, Any]) -> None:
    rows = [p["title"] for p in iter_panels(board) if p["type"] == "row"]
    assert rows == ["Overview", "Per host", "Probe outcomes", "Discovery health", "Service health"]


def test_panel_ids_are_unique(board: dict[str, Any]) -> None:
    ids = [p["id"] for p in iter_panels(board)]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_panels_fit_the_grid_without_overlapping(board: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in iter_panels(board):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_every_panel_and_target_uses_the_datasource_variable(board: dict[str, Any]) -> None:
    for p in content_panels(board):
        assert p.get("datasource") == TEMPLATED_DS, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t.get("datasource") == TEMPLATED_DS, (p["title"], t["refId"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_every_panel_has_a_unit(board: dict[str, Any]) -> None:
    for p in content_panels(board):
        assert p["fieldConfig"]["defaults"].get("unit"), p["title"]


def test_targets_have_an_expression_and_unique_ref_ids(board: dict[str, Any]) -> None:
    for p in content_panels(board):
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        assert all(t.get("expr", "").strip() for t in p["targets"]), p["title"]


def test_rate_and_increase_use_the_rate_interval(board: dict[str, Any]) -> None:
    for title, expr in _exprs(board):
        if RATE.search(expr):
            windows = RANGE.findall(expr)
            assert windows and all(w == "$__rate_interval" for w in windows), (title, expr)


def test_every_variable_used_is_defined(board: dict[str, Any]) -> None:
    defined = {v["name"] for v in board["templating"]["list"]}
    used = {name for s in _strings(board) for name in variables_in(s)}
    assert used - defined - BUILTINS == set()
    assert {"datasource", "model", "host"} <= used


def test_model_and_host_variables_are_multi_with_all_as_match_anything(board: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["model"]["definition"] == "label_values(libertai_monitor_host_up, model)"
    assert variables["host"]["definition"] == 'label_values(libertai_monitor_host_up{model=~"$model"}, host)'
    for name in ("model", "host"):
        v = variables[name]
        assert v["type"] == "query" and v["datasource"] == TEMPLATED_DS
        assert v["multi"] and v["includeAll"] and v["allValue"] == ".*"
        assert v["query"]["query"] == v["definition"]


def test_model_and_host_filters_are_regex_matchers(board: dict[str, Any]) -> None:
    for title, expr in _exprs(board):
        for name in ("model", "host"):
            for m in re.finditer(rf"(\w+)\s*(=~|!~|!=|=)\s*\"\$\{{?{name}\b", expr):
                assert m.group(1) == name and m.group(2) == "=~", (title, expr)


def test_dashboard_expressions_substitutes_every_variable(board: dict[str, Any]) -> None:
    exprs = dashboard_expressions({"$model": "m.*", "host": "h.*", "${__rate_interval}": "1m"})
    assert len(exprs) == len(_exprs(board))
    assert all("$" not in expr for _, expr in exprs)
    assert any('model=~"m.*",host=~"h.*"' in expr for _, expr in exprs)
    assert any("[1m]" in expr for _, expr in exprs)
    with pytest.raises(KeyError, match="__rate_interval"):
        dashboard_expressions({"model": ".*", "host": ".*"})


@pytest.mark.subprocess  # promtool
def test_every_expression_parses_as_promql(board: dict[str, Any], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing: .ci/run unpacks Debian's prometheus package")
        pytest.skip("promtool not installed (Debian package prometheus)")
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, expr) in enumerate(dashboard_expressions()):
        rules += [f"      - record: dashboard:expr_{i}", f"        expr: {json.dumps(expr)}"]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text("\n".join(rules) + "\n", encoding="utf-8")
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _exposed(text: str) -> set[str]:
    """Series names of an exposition (the stateset's label is named as the stateset itself)."""
    return {re.split(r"[{\s]", line, maxsplit=1)[0] for line in text.splitlines() if line[:1].isalpha()}


@pytest.mark.e2e
async def test_every_metric_name_is_exposed_by_the_service(board: dict[str, Any], tmp_path: Path) -> None:
    used = {m for _, expr in _exprs(board) for m in METRIC.findall(expr)}
    markers = {"libertai_monitor_host_ttft_p50_seconds", "libertai_monitor_probes_total"}
    exposed: set[str] = set()
    async with (
        network("demo") as net,
        serving(settings_for(net, tmp_path)) as svc,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
    ):
        deadline = time.monotonic() + 30
        # Some series (TTFT, a host's key status) appear only after the first probes: wait for them.
        while not (markers | used) <= exposed and time.monotonic() < deadline:
            async with http.get(svc.url + "/metrics") as r:
                assert r.status == 200
                exposed = _exposed(await r.text())
            await asyncio.sleep(0.3)
    assert markers <= exposed, markers - exposed
    assert used - exposed == set()
