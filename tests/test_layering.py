"""The layering of ARCHITECTURE.md, checked on the imports of monitor/'s modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MONITOR = Path(__file__).resolve().parent.parent / "monitor"

# The service's parts: each has one job; only `monitor.service` wires them together.
PARTS = {
    "best_hosts",
    "discovery_run",
    "duties",
    "fleet",
    "follower",
    "maintenance",
    "persistence",
    "probe_once",
    "probing",
    "publisher",
    "readiness",
    "recorder",
    "restore",
    "roles",
    "targets",
    "vantage_views",
}
EDGES = {"api", "metrics", "service_metrics", "server", "cli"}
READERS = {"api", "metrics", "service_metrics", "view"}  # what serves answers: reads, never runs
PURE = {"health", "window", "ranking", "membership", "results", "snapshot", "clock"}


def _imports(module: str) -> set[str]:
    """The monitor modules `module` imports (`monitor.store.x` counts as `store`)."""
    tree = ast.parse((MONITOR / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "monitor":
                names = [f"monitor.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found.update(n.split(".")[1] for n in names if n.startswith("monitor.") and n != "monitor")
    return found - {module}


@pytest.mark.parametrize("module", sorted(READERS))
def test_answers_depend_on_the_read_interface_not_on_the_service(module: str) -> None:
    assert not _imports(module) & ({"service"} | PARTS - {"readiness"} | {"probes", "discovery", "http"})


@pytest.mark.parametrize("module", sorted(PARTS))
def test_a_part_never_imports_the_service_or_an_edge(module: str) -> None:
    assert not _imports(module) & ({"service"} | EDGES)


@pytest.mark.parametrize("module", sorted(PARTS | READERS | {"service"}))
def test_the_store_is_reached_through_its_package_only(module: str) -> None:
    tree = ast.parse((MONITOR / f"{module}.py").read_text())
    deep = [
        n.module
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("monitor.store.")
    ]
    assert deep == []


@pytest.mark.parametrize("module", sorted(PURE))
def test_pure_modules_do_no_io_and_know_no_service(module: str) -> None:
    forbidden = {"service", "store", "probes", "http", "discovery", "scheduler", "view"} | EDGES | PARTS
    assert not _imports(module) & forbidden


def test_only_the_service_and_the_parts_use_the_parts() -> None:
    wirers = {
        p.stem
        for p in MONITOR.glob("*.py")
        if p.stem not in PARTS and p.stem != "service" and _imports(p.stem) & (PARTS - {"readiness"})
    }
    assert wirers == set(), wirers  # the read interface may name `Readiness`, nothing else


def test_only_the_server_and_the_command_import_the_service() -> None:
    importers = {
        p.stem for p in MONITOR.glob("*.py") if p.stem != "service" and "service" in _imports(p.stem)
    }
    assert importers <= {"server", "cli"}, importers
