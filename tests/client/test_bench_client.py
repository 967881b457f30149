"""Smoke test of bench/client_overhead.py at its `--quick` size: it runs end to end and writes its
figures. Nothing here asserts a timing: only that the benchmark still works and lost no request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_client_overhead_quick_runs_and_loses_no_request(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.client_overhead", "--quick"],
        cwd=ROOT,
        env={**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((tmp_path / "quick" / "client_overhead.json").read_text())
    figures = result["figures"]
    assert set(figures) >= {"added_ms_p50", "added_ms_p99", "transport_cpu_ms_p50", "failed_requests"}
    assert figures["failed_requests"] == 0
    assert result["failover"]["requests"] > 0 and result["overhead"]["via_transport_ms"]["n"] > 0
