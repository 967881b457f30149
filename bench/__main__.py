"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, each in its own process (each
starts the simulated network and the monitor in processes of their own), write
bench/results/NAME.json and print a table of the figures against their targets.

    python -m bench                 # everything at full size (about 20 minutes on 2 cores)
    python -m bench --quick         # tiny sizes, about a minute: a smoke test, not a measurement
    python -m bench --only storage accuracy
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench.common import ROOT, results_dir

# name -> what it measures (the module bench.NAME runs it)
BENCHMARKS = {
    "probe_scale": "probes/s, CPU per probe, peak RSS, round time at 100 to 10,000 hosts",
    "accuracy": "reported TTFT against the hosts' own record at 10 and 5,000 hosts",
    "blackbox": "the same hosts probed by blackbox_exporter: accuracy and CPU per probe",
    "api_load": "/v1/best and /metrics under load while 5,000 hosts are probed, against a ceiling",
    "storage": "database growth per day, 400-day projection, restore and history times",
    "sim_delay": "the simulator's own added delay (what the others do not count)",
    "herd": "many clients on hosts of finite capacity: TTFT, spread, affinity, cache hits per router",
}


def _f(x: Any, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        x = round(x, 3)
    return f"{x:,}{unit}" if isinstance(x, int | float) else f"{x}{unit}"


def rows_of(name: str, r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, target) rows of one result file."""
    f = r.get("figures", {})
    if name == "probe_scale":
        out = []
        for run in r["runs"]:
            out.append(
                (
                    f"{run['hosts']:,} hosts: probes/s, round/interval, CPU cores, ms CPU/probe, peak RSS",
                    f"{run['probes_per_s']}, {run['round_time_ratio']} "
                    f"({run['hosts_without_health_probe_in_window']} missed), {run['cpu_cores']}, "
                    f"{run['cpu_ms_per_probe']}, {run['peak_rss_mib']} MiB",
                    "10,000 hosts: <= 1, < 0.5, -, < 250 MiB" if run["hosts"] >= 10_000 else "",
                )
            )
        return out
    if name == "accuracy":
        out = []
        for run in r["runs"]:
            e = run["error_ms"]
            tgt = "median < 2, p99 < 10" if run["hosts"] >= 5000 else ""
            out.append(
                (f"{run['hosts']:,} hosts: TTFT error median / p99 ms", f"{e['median']} / {e['p99']}", tgt)
            )
        return out
    if name == "blackbox":
        return [
            (
                "|error| median ms: monitor / exporter",
                f"{_f(f.get('monitor_median_abs_error_ms'))} / {_f(f.get('exporter_median_abs_error_ms'))}",
                "",
            ),
            (
                "|error| p99 ms: monitor / exporter",
                f"{_f(f.get('monitor_p99_abs_error_ms'))} / {_f(f.get('exporter_p99_abs_error_ms'))}",
                "",
            ),
            (
                "accuracy ratio (exporter/monitor) median, p99",
                f"{_f(f.get('accuracy_ratio_median'))}, {_f(f.get('accuracy_ratio_p99'))}",
                ">= 1",
            ),
            (
                "ms CPU/probe: monitor / exporter (ratio)",
                f"{_f(f.get('monitor_cpu_ms_per_probe'))} / {_f(f.get('exporter_cpu_ms_per_probe'))} "
                f"({_f(f.get('cpu_per_probe_ratio'))})",
                "ratio <= 1",
            ),
        ]
    if name == "api_load":
        return [
            (
                f"/v1/best gzipped req/s, p99 ms ({_f(f.get('hosts'))} hosts)",
                f"{_f(f.get('v1_best_requests_per_s'))}, {_f(f.get('v1_best_p99_ms'))}",
                "p99 < 20",
            ),
            (
                "/v1/best gzipped share of trivial ceiling (median of pairs)",
                f"{_f(f.get('v1_best_share_of_ceiling'))} {f.get('v1_best_share_of_ceiling_pairs', '')}",
                ">= 0.7",
            ),
            (
                "/v1/best plain: share of trivial (same-size) ceiling",
                f"{_f(f.get('v1_best_identity_share_of_ceiling'))} "
                f"({_f(f.get('v1_best_identity_share_of_same_size_ceiling'))})",
                "",
            ),
            (
                "/v1/best/{model} gzipped req/s, p99 ms",
                f"{_f(f.get('v1_best_model_requests_per_s'))}, {_f(f.get('v1_best_model_p99_ms'))}",
                "",
            ),
            (
                "/metrics req/s, p99 ms",
                f"{_f(f.get('metrics_requests_per_s'))}, {_f(f.get('metrics_p99_ms'))}",
                "",
            ),
        ]
    if name == "storage":
        out = []
        for run in r["runs"]:
            out.append(
                (
                    f"{run['hosts']:,} hosts: MiB/day raw, roll-ups; GiB 400 days",
                    f"{run['growth_mib_per_day_raw']}, {run['growth_mib_per_day_rollups']}; "
                    f"{run['projected_gib_400_days']}",
                    "< 1 GiB" if run["hosts"] >= 1000 else "",
                )
            )
            out.append(
                (
                    f"{run['hosts']:,} hosts: restore s; history 30 d s (model, host)",
                    f"{run['restore_s']}; {run['history_30d_model_s']}, {run['history_30d_host_s']}",
                    "restore < 2 s" if run["hosts"] >= 1000 else "",
                )
            )
        return out
    if name == "sim_delay":
        return [
            (
                "added by the simulator, median / p99 ms",
                f"{_f(f.get('host_added_median_ms'))} / {_f(f.get('host_added_p99_ms'))}",
                "",
            )
        ]
    if name == "herd":
        return herd_rows(r)
    return []


def herd_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for router, run in r.get("runs", {}).items():
        t = run["ttft_ms"]
        hosts = ", ".join(
            f"{h} {v['share']:.2f} ({v['capacity_share']:.2f})" for h, v in run["hosts"].items()
        )
        out += [
            (f"{router}: TTFT p50 / p95 / p99 ms", f"{_f(t['p50'])} / {_f(t['p95'])} / {_f(t['p99'])}", ""),
            (
                f"{router}: affinity; cache hits of later turns",
                f"{_f(run['affinity'])}; {_f(run['cache_hit_rate'])}",
                "",
            ),
            (f"{router}: share of requests (of slots)", hosts, ""),
        ]
    f = r.get("figures", {})
    met = r.get("targets_met", {})
    out += [
        (
            "spread p99 / least-in-flight p99",
            f"{_f(f.get('spread_p99_vs_least_in_flight'))} ({_f(met.get('p99_vs_least_in_flight'))})",
            "<= 0.8",
        ),
        (
            "spread p99 / single-best p99",
            f"{_f(f.get('spread_p99_vs_single_best'))} ({_f(met.get('p99_vs_single_best'))})",
            "<= 0.5",
        ),
        (
            "spread affinity; cache hits",
            f"{_f(f.get('spread_affinity'))}; {_f(f.get('spread_cache_hit_rate'))}",
            ">= 0.9; >= 0.8",
        ),
    ]
    return out


def table(names: list[str], status: dict[str, str], quick: bool = False) -> str:
    lines = []
    rows: list[tuple[str, str, str, str, str]] = []
    for name in names:
        path = results_dir(quick) / f"{name}.json"
        if status.get(name, "ok") != "ok" or not path.exists():
            rows.append((name, status.get(name, "no results"), "", "", ""))
            continue
        r = json.loads(path.read_text())
        met = r.get("meets_target")
        for i, (fig, val, tgt) in enumerate(rows_of(name, r)):
            rows.append(
                (name if i == 0 else "", fig, val, tgt, _f(met) if i == 0 and met is not None else "")
            )
    header = ("BENCHMARK", "FIGURE", "VALUE", "TARGET", "MET")
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test; figures mean nothing)")
    p.add_argument("names", nargs="*", metavar="NAME", help="the same as --only")
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME", help=", ".join(BENCHMARKS))
    p.add_argument("--table", action="store_true", help="only print the table of the existing results")
    args = p.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r} (choose from {', '.join(BENCHMARKS)})")
    names = args.names + (args.only or []) or list(BENCHMARKS)
    status: dict[str, str] = {}
    if not args.table:
        for name in names:
            t0 = time.monotonic()
            print(f"== {name}: {BENCHMARKS[name]}", file=sys.stderr, flush=True)
            cmd = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if args.quick else [])]
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
            out = proc.stdout.strip()
            if out:
                print(out, file=sys.stderr)
            if proc.returncode != 0:
                skip = next((x for x in out.splitlines() if x.startswith("skip:")), None)
                status[name] = skip or f"failed (exit {proc.returncode})"
            print(f"== {name}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    print(table(names, status, args.quick))
    return 1 if any(v.startswith("failed") for v in status.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
