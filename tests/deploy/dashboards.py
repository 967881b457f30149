"""The Grafana dashboard's panels and PromQL expressions, for its lint and the Prometheus end-to-end test.

from tests.deploy.dashboards import dashboard_expressions
for title, expr in dashboard_expressions({"model": ".*", "host": ".*", "__rate_interval": "30s"}): ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "dashboards" / "libertai-monitor.json"

# $name, ${name}, ${name:format} and the deprecated [[name]]: group 1, 2 or 3 is the name.
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")

# Grafana's own variables (https://grafana.com/docs/grafana/latest/dashboards/variables/add-template-variables/)
BUILTINS = frozenset(
    {
        "__all",
        "__interval",
        "__interval_ms",
        "__rate_interval",
        "__rate_interval_ms",
        "__range",
        "__range_s",
        "__range_ms",
        "__from",
        "__to",
        "__dashboard",
        "__org",
        "__user",
        "timeFilter",
    }
)

# What Grafana would put in for "All" on the model and host variables and a typical rate interval.
DEFAULT_SUBSTITUTIONS: dict[str, str] = {"model": ".*", "host": ".*", "__rate_interval": "30s"}


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from iter_panels(panel)


def content_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(dashboard) if p.get("type") != "row"]


def variables_in(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in VARIABLE.finditer(text)}


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Replaces every variable by its value; KeyError names a variable without one."""

    def value(m: re.Match[str]) -> str:
        name = next(g for g in m.groups() if g)
        if name not in values:
            raise KeyError(f"no value for ${name} in {text!r}")
        return values[name]

    return VARIABLE.sub(value, text)


def dashboard_expressions(
    substitute: Mapping[str, str] | None = None, dashboard: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target, variables replaced (keys as `model` or `$model`)."""
    values = {k.lstrip("$").strip("{}"): v for k, v in (substitute or DEFAULT_SUBSTITUTIONS).items()}
    board = dashboard if dashboard is not None else load_dashboard()
    return [
        (panel["title"], interpolate(target["expr"], values))
        for panel in content_panels(board)
        for target in panel.get("targets", [])
    ]
