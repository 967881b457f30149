"""bench/status_page.py runs end to end at its tiny size (a smoke test: no target is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_status_page_benchmark_writes_its_figures(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.status_page", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "quick" / "status_page.json").read_text())
    figures = result["figures"]
    assert figures["render_p99_ms"] > 0
    assert 0 < figures["page_gzip_kib"] < figures["page_kib"]
    assert result["parameters"] == {"models": 10, "hosts": 5, "renders": 10}
