"""Smoke tests of the benchmarks (bench/): each runs at its tiny `--quick` size in its own process
and must write its results file with the expected keys and sane values. Not timed: nothing here
asserts a target, only that every benchmark still runs end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # each benchmark in its own process

ROOT = Path(__file__).resolve().parents[1]
COMMON = {"benchmark", "when", "machine", "versions", "parameters", "loadavg_before", "loadavg_after"}


def run_bench(name: str, tmp_path: Path, timeout: float = 90) -> dict[str, Any]:
    env = {**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    skip = next((x for x in proc.stdout.splitlines() + proc.stderr.splitlines() if "skip:" in x), None)
    if proc.returncode != 0 and skip:
        pytest.skip(skip.split("skip:", 1)[1].strip())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    path = tmp_path / "quick" / f"{name}.json"
    assert path.exists()
    result: dict[str, Any] = json.loads(path.read_text())
    assert set(result) >= COMMON, set(result)
    assert result["benchmark"] == name
    assert result["machine"]["cpus"] >= 1 and result["machine"]["cpu_model"]
    assert len(result["loadavg_before"]) == 3
    return result


def test_probe_scale(tmp_path: Path) -> None:
    r = run_bench("probe_scale", tmp_path)
    (run,) = r["runs"]
    assert run["hosts"] == 20 and run["probes"] > 0 and run["probes_per_s"] > 0
    assert 0.5 < run["round_time_ratio"] < 2
    assert run["cpu_cores"] >= 0 and run["cpu_ms_per_probe"] >= 0
    assert 10 < run["peak_rss_mib"] < 2000
    assert set(r["figures"]) >= {"probes_per_s", "round_time_ratio", "cpu_ms_per_probe", "peak_rss_mib"}


def test_accuracy(tmp_path: Path) -> None:
    r = run_bench("accuracy", tmp_path)
    run = r["runs"][0]
    assert run["completions_paired"] > 0
    e = run["error_ms"]
    # The monitor measures a little more than the host's own record (transport), never far off.
    assert e["median"] is not None and -2 < e["median"] < 50
    assert set(r["figures"]) >= {"median_error_ms", "p99_error_ms"}


def test_blackbox(tmp_path: Path) -> None:
    r = run_bench("blackbox", tmp_path)
    run = r["runs"][0]
    assert run["monitor"]["probes_in_window"] > 0
    assert run["blackbox_exporter"]["probes_in_window"] > 0
    assert run["monitor"]["error_ms"]["n"] + run["blackbox_exporter"]["error_ms"]["n"] > 0
    assert set(r["figures"]) >= {"accuracy_ratio_median", "cpu_per_probe_ratio"}


def test_api_load(tmp_path: Path) -> None:
    r = run_bench("api_load", tmp_path)
    for name in (
        "v1_best",
        "v1_best_gzip",
        "v1_best_model_gzip",
        "ceiling_trivial",
        "ceiling_same_size",
        "metrics",
    ):
        run = r["runs"][name]
        assert run["requests"] > 0 and run["requests_per_s"] > 0, name
        assert run["errors"] == 0, name
    assert r["figures"]["v1_best_share_of_ceiling"] > 0


def test_storage(tmp_path: Path) -> None:
    r = run_bench("storage", tmp_path)
    (run,) = r["runs"]
    assert run["rows_per_day"] == 10 * (2880 + 288 + 288)
    assert 10 < run["raw_bytes_per_row"] < 200
    assert run["restored_hosts"] == 10 and run["restore_s"] > 0
    assert run["history_30d_host_points"] == 30 * 24  # one point an hour, whatever the minute


def test_sim_delay(tmp_path: Path) -> None:
    r = run_bench("sim_delay", tmp_path)
    assert r["measured"] > 0
    assert r["host_truth_minus_configured_ms"]["median"] is not None


def test_herd(tmp_path: Path) -> None:
    r = run_bench("herd", tmp_path, timeout=300)  # four routers, each with a fresh simulator and monitor
    assert set(r["runs"]) == {"spread", "single", "gateway", "round_robin"}
    for name, run in r["runs"].items():
        assert run["requests_in_window"] > 0 and run["failed_in_window"] == 0, name
        assert run["ttft_ms"]["p50"] is not None and run["ttft_ms"]["p50"] > 0, name
        assert sum(h["requests"] for h in run["hosts"].values()) > 0, name
        assert 0 <= (run["cache_hit_rate"] or 0) <= 1, name
    # The transport names the host that answered; the gateway does not, so it has no affinity.
    assert r["runs"]["spread"]["affinity"] is not None and r["runs"]["gateway"]["affinity"] is None
    # Round-robin never calls the host that is not loaded.
    assert r["runs"]["round_robin"]["hosts"]["cold"]["requests"] == 0
    assert set(r["targets_met"]) == {
        "p99_vs_least_in_flight",
        "p99_vs_single_best",
        "affinity",
        "cache_hit_rate",
    }
