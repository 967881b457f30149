"""`run_simulate`: prints the gateway URL and a host table, serves until a signal, exits 0."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from monitor.sim import load_scenario
from monitor.sim.cli import host_table
from monitor.sim.network import SimHostInfo

ROOT = Path(__file__).resolve().parents[2]


def simulate(scenario: str) -> subprocess.Popen[str]:
    code = f"from monitor.sim.cli import run_simulate; raise SystemExit(run_simulate({scenario!r}, 0, 1, []))"
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow  # the simulator as a child process
def test_simulate_prints_the_gateway_and_the_hosts_then_stops_on_sigint() -> None:
    proc = simulate("scale:hosts=3,ttft_ms=5")
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    out = "".join(lines)
    gateway = re.search(r"gateway:\s+(http://127\.0\.0\.1:\d+)", out)
    assert gateway is not None, out
    assert "h1" in out and "scale-model-0" in out and "ttft 5ms" in out
    with urllib.request.urlopen(gateway.group(1) + "/libertai/models", timeout=5) as r:
        assert r.status == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


@pytest.mark.slow  # the simulator as a child process
def test_simulate_stops_on_sigterm() -> None:
    proc = simulate("demo")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Press Ctrl-C"):
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


@pytest.mark.slow  # the simulator as a child process
def test_a_bad_scenario_is_one_line_on_stderr_and_exit_2() -> None:
    proc = simulate("no-such-scenario.toml")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert err.count("\n") == 1 and "no-such-scenario.toml" in err


def test_the_host_table_is_cut_for_big_networks() -> None:
    sc = load_scenario("scale", hosts=100)
    infos = [
        SimHostInfo(
            h.name, f"http://127.0.0.1:{i}", f"http://127.0.0.1:{i}", i, h.models, False, h.behaviour, "ok"
        )
        for i, h in enumerate(sc.hosts)
    ]
    table = host_table(infos, max_rows=10)
    assert table.count("\n") == 11
    assert table.endswith("... and 90 more hosts")
