"""Benchmark 1, probe scale: how many hosts one monitor process keeps probed within the interval.

For each size, a simulator (`scale` preset, fixed TTFT) and `libertai-monitor run` in two child
processes, default settings but the intervals given. After a warm-up that covers the first round of
every probe kind, a window of `windows` probe intervals is measured:

- probes per second: requests the simulated hosts received (health, completion, host auth check),
  counted by the simulator, so the monitor's /metrics is not scraped inside the window;
- round time / interval: expected health probes (hosts x window / interval) over the ones received;
  plus hosts that got no health probe at all in the window, the worst scheduler lag
  (`libertai_monitor_scheduler_lag_seconds`, worst since the previous scrape) and skipped runs;
- CPU: utime + stime of the monitor process over the window (/proc/PID/stat), in cores and per probe;
- peak RSS: VmHWM of the monitor process at the end (start-up, first rounds and window included).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from bench.common import (
    MonitorProc,
    Simulator,
    base_result,
    cpu_seconds,
    loadavg,
    log,
    peak_rss_mib,
    request_counts,
    rss_mib,
    write_result,
)

NAME = "probe_scale"
TARGET = {"hosts": 10_000, "round_time_ratio_max": 1.0, "cpu_cores_max": 0.5, "peak_rss_mib_max": 250}


def run_size(hosts: int, interval: float, completion: float, windows: int, ttft_ms: float) -> dict[str, Any]:
    scenario = f"scale:hosts={hosts},models=10,ttft_ms={ttft_ms:g},itl_ms=10,tokens=8"
    settings = {"probe_interval": interval, "completion_interval": completion}
    # First probes of new targets are spread over max(5 s, targets / 200 s), capped at the interval.
    ramp = min(max(5.0, hosts / 200.0), completion)
    warmup = max(min(interval, max(5.0, hosts / 200.0)), ramp) + min(5.0, interval)
    window = windows * interval
    with Simulator(scenario) as sim, MonitorProc(sim.gateway, settings) as mon:
        log(f"{NAME}: {hosts} hosts, warm-up {warmup:.0f} s, window {window:.0f} s")
        started = time.monotonic()
        time.sleep(max(0.0, warmup - (time.monotonic() - started)))
        peak_before_scrape = peak_rss_mib(mon.pid)
        m0 = mon.metrics()  # also resets the "worst lag since the previous scrape"
        ta = time.monotonic()
        truth0 = request_counts(sim.truth())
        t0 = (ta + time.monotonic()) / 2
        cpu0, sim_cpu0 = cpu_seconds(mon.pid), sim.cpu_seconds()
        time.sleep(window)
        cpu1, sim_cpu1 = cpu_seconds(mon.pid), sim.cpu_seconds()
        ta = time.monotonic()
        truth1 = request_counts(sim.truth())
        t1 = (ta + time.monotonic()) / 2
        m1 = mon.metrics()
        peak = peak_rss_mib(mon.pid)
        rss = rss_mib(mon.pid)
        tail = mon.log_tail(5)
        sim_errors = sim.error_lines()
        simulators = len([p for p in sim.pids])
    elapsed = t1 - t0
    per_path: Counter[str] = Counter()
    health_per_host: list[int] = []
    for url, paths in truth1.items():
        before = truth0.get(url, {})
        h = 0
        for path, n in paths.items():
            d = n - before.get(path, 0)
            key = "health" if path.startswith("/health/") else path
            per_path[key] += d
            if path.startswith("/health/"):
                h += d
        health_per_host.append(h)
    probes = sum(per_path.values())
    cpu = cpu1 - cpu0
    expected_health = hosts * elapsed / interval
    outcomes = {
        k[len("probes_total") :]: round(m1.get(k, 0) - m0.get(k, 0))
        for k in m1
        if k.startswith("probes_total{")
    }
    skipped = {
        k: round(m1[k] - m0.get(k, 0)) for k in m1 if k.startswith("libertai_monitor_scheduler_skipped")
    }
    return {
        "hosts": hosts,
        "targets": m1.get("libertai_monitor_probe_targets"),
        "window_s": round(elapsed, 2),
        "warmup_s": warmup,
        "probes": probes,
        "probes_by_path": dict(per_path),
        "probes_per_s": round(probes / elapsed, 1),
        "health_probes_per_s": round(per_path["health"] / elapsed, 1),
        "expected_health_probes_per_s": round(hosts / interval, 1),
        "round_time_ratio": round(expected_health / max(per_path["health"], 1), 3),
        "hosts_without_health_probe_in_window": sum(1 for h in health_per_host if h == 0),
        "health_probes_per_host_in_window": dict(sorted(Counter(health_per_host).items())),
        "worst_scheduler_lag_s": m1.get("libertai_monitor_scheduler_lag_seconds"),
        "skipped_runs_in_window": skipped,
        "monitor_outcomes_in_window": outcomes,
        "cpu_s": round(cpu, 2),
        "cpu_cores": round(cpu / elapsed, 3),
        "cpu_ms_per_probe": round(1000 * cpu / max(probes, 1), 3),
        "peak_rss_mib": peak,
        "peak_rss_mib_before_first_metrics_scrape": peak_before_scrape,
        "rss_mib_end": rss,
        "simulator_cpu_cores": round((sim_cpu1 - sim_cpu0) / elapsed, 3),
        "db_queue_depth_end": m1.get("libertai_monitor_db_queue_depth"),
        "db_dropped_results": m1.get("libertai_monitor_db_dropped_results_total"),
        "monitor_log_tail": tail,
        "simulator_processes": simulators,
        "simulator_stderr_lines": sim_errors,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (a smoke test)")
    p.add_argument("--sizes", type=int, nargs="*", help="host counts")
    p.add_argument("--interval", type=float, help="probe interval, s (default 30; quick 3)")
    p.add_argument("--completion-interval", type=float, help="default 300; quick 2")
    p.add_argument("--windows", type=int, default=2, help="measured intervals (default 2)")
    p.add_argument("--ttft-ms", type=float, default=50.0)
    args = p.parse_args(argv)
    sizes = args.sizes or ([20] if args.quick else [100, 1_000, 5_000, 10_000])
    interval = args.interval or (2.0 if args.quick else 30.0)
    completion = args.completion_interval or (2.0 if args.quick else 300.0)
    params = {
        "sizes": sizes,
        "probe_interval_s": interval,
        "completion_interval_s": completion,
        "measured_intervals": args.windows,
        "ttft_ms": args.ttft_ms,
        "models": 10,
        "max_concurrency": 256,
        "note": "default settings otherwise (jitter 0.1); completions and host auth checks at their "
        "default 300 s interval run in the window too",
    }
    result = base_result(NAME, args.quick, params)
    runs = []
    for n in sizes:
        before = loadavg()
        run = run_size(n, interval, completion, args.windows, args.ttft_ms)
        run["loadavg_before"], run["loadavg_after"] = before, loadavg()
        runs.append(run)
        log(
            f"{NAME}: {n} hosts: {run['probes_per_s']} probes/s, round ratio {run['round_time_ratio']}, "
            f"{run['cpu_cores']} cores, {run['cpu_ms_per_probe']} ms CPU/probe, "
            f"peak RSS {run['peak_rss_mib']} MiB"
        )
    result["runs"] = runs
    big = max(runs, key=lambda r: r["hosts"])
    result["target"] = TARGET
    result["figures"] = {
        "hosts": big["hosts"],
        "probes_per_s": big["probes_per_s"],
        "round_time_ratio": big["round_time_ratio"],
        "hosts_without_health_probe_in_window": big["hosts_without_health_probe_in_window"],
        "cpu_cores": big["cpu_cores"],
        "cpu_ms_per_probe": big["cpu_ms_per_probe"],
        "peak_rss_mib": big["peak_rss_mib"],
    }
    result["meets_target"] = (
        big["hosts"] >= TARGET["hosts"]
        and big["round_time_ratio"] <= 1.02
        and big["hosts_without_health_probe_in_window"] == 0
        and big["cpu_cores"] < TARGET["cpu_cores_max"]
        and big["peak_rss_mib"] < TARGET["peak_rss_mib_max"]
    )
    return write_result(NAME, result)


if __name__ == "__main__":
    raise SystemExit(main())
