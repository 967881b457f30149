"""Benchmark 3, side by side with Prometheus' blackbox_exporter.

The same simulated hosts are probed in the same run by the monitor and by Debian's
`prometheus-blackbox-exporter` (unpacked under bench/.tools by `apt-get download` + `dpkg -x`,
nothing installed), each in its own process. The exporter gets modules equivalent to the monitor's
probes and the same request mix: `GET /health/{model}` (200) and `GET /libertai/auth/check` with the
key (405, as the monitor's host auth check) every `probe_interval` / `completion_interval`, and the
monitor's exact streamed one-token chat completion as a POST (200, body must hold `data: [DONE]`)
every `completion_interval`. This process plays Prometheus: it calls the exporter's
`/probe?module=..&target=..` for every target on a fixed slot in its interval.

Figures, over a window after the warm-up:
- accuracy: the monitor's TTFT and the exporter's `probe_duration_seconds` of each completion against
  the time the host recorded for that very request (bench/truthpair.py); error = reported - truth;
- CPU per probe of each process (/proc utime + stime over the window / probes made in the window).
  The exporter's figure leaves out the scraping (Prometheus', here this process's) and the storage of
  the samples; the monitor's includes its database writes, state and snapshot.
The ratios: exporter error / monitor error (>= 1: the monitor at least as accurate) and monitor CPU
per probe / exporter CPU per probe (<= 1: no more CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import tempfile
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    API_KEY,
    MonitorProc,
    Simulator,
    base_result,
    cpu_seconds,
    debian_tool,
    free_port,
    log,
    peak_rss_mib,
    raise_nofile,
    stop,
    summary,
    wait_http,
    write_result,
)
from bench.truthpair import Event, monitor_completions, pair
from monitor.probe.bodies import completion_body

NAME = "blackbox"
TARGET = {"accuracy_ratio_min": 1.0, "cpu_per_probe_ratio_max": 1.0}
_DURATION = re.compile(r"^probe_duration_seconds (\S+)$", re.M)
_SUCCESS = re.compile(r"^probe_success (\S+)$", re.M)


def exporter_config(models: list[str], timeout: float) -> str:
    common = {"no_follow_redirects": True, "preferred_ip_protocol": "ip4", "ip_protocol_fallback": False}
    modules: dict[str, Any] = {
        "health": {
            "prober": "http",
            "timeout": f"{timeout:g}s",
            "http": {"method": "GET", "valid_status_codes": [200], **common},
        },
        "auth": {
            "prober": "http",
            "timeout": f"{timeout:g}s",
            "http": {
                "method": "GET",
                "valid_status_codes": [405, 404, 200],
                "headers": {"Authorization": f"Bearer {API_KEY}"},
                **common,
            },
        },
    }
    for i, model in enumerate(models):
        modules[f"completion_{i}"] = {
            "prober": "http",
            "timeout": f"{timeout:g}s",
            "http": {
                "method": "POST",
                "valid_status_codes": [200],
                "headers": {
                    "Authorization": f"Bearer {API_KEY}",
                    "Content-Type": "application/json",
                    "Accept": "text/event-stream",
                },
                "body": completion_body(model).decode(),  # the monitor's own probe body
                "fail_if_body_not_matches_regexp": [r"data: \[DONE\]"],
                **common,
            },
        }
    # YAML is a superset of JSON.
    return json.dumps({"modules": modules}, indent=1)


class Exporter:
    def __init__(self, binary: Path, config: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="libertai-bench-bbe-"))
        (self.dir / "blackbox.yml").write_text(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Exporter:
        log_file = (self.dir / "exporter.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                f"--config.file={self.dir / 'blackbox.yml'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile,
        )
        log_file.close()
        wait_http(f"{self.url}/metrics", timeout=30, proc=self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


async def drive_exporter(
    exporter: str,
    targets: list[tuple[str, str, int]],
    interval: float,
    completion: float,
    until: float,
) -> dict[str, Any]:
    """Play Prometheus: every target on its slot until `until` (monotonic). Returns per host the
    completion events (start epoch, duration ms) and the start times of every probe."""
    completions: dict[str, list[Event]] = defaultdict(list)
    starts: list[float] = []  # monotonic start of every probe
    failures: dict[str, int] = defaultdict(int)
    jobs: list[tuple[str, str, str, float]] = []
    for url, model, model_index in targets:
        jobs.append((url, "health", f"{url}/health/{model}", interval))
        jobs.append((url, "auth", f"{url}/libertai/auth/check", completion))
        jobs.append((url, f"completion_{model_index}", f"{url}/v1/chat/completions", completion))
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as http:
        loop = asyncio.get_running_loop()
        t_start = loop.time()

        async def one(url: str, module: str, target: str, every: float) -> None:
            offset = zlib.crc32(f"{module}{target}".encode()) / 2**32 * every
            n = 0
            while True:
                due = t_start + offset + n * every
                n += 1
                if due >= until:
                    return
                await asyncio.sleep(max(0.0, due - loop.time()))
                started, mono = time.time(), time.monotonic()
                try:
                    async with http.get(
                        f"{exporter}/probe", params={"module": module, "target": target}
                    ) as r:
                        text = await r.text()
                except aiohttp.ClientError as exc:
                    failures[type(exc).__name__] += 1
                    continue
                starts.append(mono)
                ok = _SUCCESS.search(text)
                if not ok or float(ok.group(1)) != 1.0:
                    failures[module.split("_")[0]] += 1
                if module.startswith("completion"):
                    d = _DURATION.search(text)
                    completions[url].append((started, "blackbox", float(d.group(1)) * 1000 if d else None))

        await asyncio.gather(*(one(*j) for j in jobs))
    return {"completions": dict(completions), "starts": starts, "failures": dict(failures)}


def run(hosts: int, interval: float, completion: float, warmup: float, window: float) -> dict[str, Any]:
    binary = debian_tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    if binary is None:
        raise SystemExit("skip: prometheus-blackbox-exporter could not be fetched (apt-get download)")
    scenario = f"scale:hosts={hosts},models=10,ttft_ms=50,itl_ms=10,tokens=8"
    settings = {"probe_interval": interval, "completion_interval": completion}
    with Simulator(scenario) as sim:
        truth0 = sim.truth()
        models = sorted({m for h in truth0["hosts"] for m in h["models"]})
        targets = [
            (h["normalized_url"], h["models"][0], models.index(h["models"][0])) for h in truth0["hosts"]
        ]
        with (
            Exporter(binary, exporter_config(models, 10.0)) as bbe,
            MonitorProc(sim.gateway, settings) as mon,
        ):
            log(f"{NAME}: {hosts} hosts, warm-up {warmup:.0f} s, window {window:.0f} s")
            t_begin = time.monotonic()
            w0 = t_begin + warmup
            w1 = w0 + window
            readings: dict[str, Any] = {}

            async def measure() -> None:
                await asyncio.sleep(max(0.0, w0 - time.monotonic()))
                m0 = await asyncio.to_thread(mon.metrics)
                readings["cpu0"] = (cpu_seconds(mon.pid), cpu_seconds(bbe.pid), time.monotonic(), time.time())
                await asyncio.sleep(max(0.0, w1 - time.monotonic()))
                readings["cpu1"] = (cpu_seconds(mon.pid), cpu_seconds(bbe.pid), time.monotonic(), time.time())
                m1 = await asyncio.to_thread(mon.metrics)
                readings["probes"] = m1.get("probes_total", 0) - m0.get("probes_total", 0)

            async def both() -> dict[str, Any]:
                driven, _ = await asyncio.gather(
                    drive_exporter(bbe.url, targets, interval, completion, w1 + 0.5), measure()
                )
                result: dict[str, Any] = driven
                return result

            driven = asyncio.run(both())
            rss = (peak_rss_mib(mon.pid), peak_rss_mib(bbe.pid))
            mon.stop()
        truth = sim.truth()
    (mcpu0, bcpu0, mono0, e0), (mcpu1, bcpu1, mono1, e1) = readings["cpu0"], readings["cpu1"]
    bb_probes = sum(1 for s in driven["starts"] if mono0 <= s < mono1)
    paired = pair(truth, [monitor_completions(mon.db), driven["completions"]])
    err: dict[str, list[float]] = {"monitor": [], "blackbox": []}
    for _url, start, src, reported, t in paired["pairs"]:
        if e0 <= start < e1 and reported is not None:
            err[src].append(reported - t)
    mon_cpp = (mcpu1 - mcpu0) / max(readings["probes"], 1) * 1000
    bb_cpp = (bcpu1 - bcpu0) / max(bb_probes, 1) * 1000
    ms, bs = summary(err["monitor"]), summary(err["blackbox"])
    mabs, babs = summary([abs(x) for x in err["monitor"]]), summary([abs(x) for x in err["blackbox"]])

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else round(a / b, 2)

    return {
        "hosts": hosts,
        "window_s": round(mono1 - mono0, 1),
        "monitor": {
            "probes_in_window": round(readings["probes"]),
            "cpu_s": round(mcpu1 - mcpu0, 2),
            "cpu_ms_per_probe": round(mon_cpp, 3),
            "peak_rss_mib": rss[0],
            "error_ms": ms,
            "abs_error_ms": mabs,
        },
        "blackbox_exporter": {
            "probes_in_window": bb_probes,
            "cpu_s": round(bcpu1 - bcpu0, 2),
            "cpu_ms_per_probe": round(bb_cpp, 3),
            "peak_rss_mib": rss[1],
            "error_ms": bs,
            "abs_error_ms": babs,
            "failures": driven["failures"],
        },
        "hosts_left_out_count_mismatch": paired["mismatched_hosts"],
        "probes_left_out_ambiguous_order": paired["ambiguous_dropped"],
        "accuracy_ratio_median": ratio(babs["median"], mabs["median"]),
        "accuracy_ratio_p99": ratio(babs["p99"], mabs["p99"]),
        "cpu_per_probe_ratio": ratio(mon_cpp, bb_cpp),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (a smoke test)")
    p.add_argument("--hosts", type=int)
    p.add_argument("--interval", type=float, help="health interval, s (default 15; quick 2)")
    p.add_argument("--completion-interval", type=float, help="completion interval, s (default 15; quick 2)")
    p.add_argument("--window", type=float, help="measured seconds (default 60; quick 4)")
    args = p.parse_args(argv)
    hosts = args.hosts or (10 if args.quick else 1000)
    interval = args.interval or (2.0 if args.quick else 15.0)
    completion = args.completion_interval or (2.0 if args.quick else 15.0)
    window = args.window or (4.0 if args.quick else 60.0)
    warmup = min(max(5.0, hosts / 200.0), completion) + min(5.0, completion)
    params = {
        "hosts": hosts,
        "probe_interval_s": interval,
        "completion_interval_s": completion,
        "warmup_s": warmup,
        "window_s": window,
        "ttft_ms": 50,
        "exporter": "prometheus-blackbox-exporter (Debian), modules health / auth / completion_N; "
        "driven by this process as Prometheus would scrape it",
    }
    result = base_result(NAME, args.quick, params)
    result["versions"]["prometheus-blackbox-exporter"] = _exporter_version()
    r = run(hosts, interval, completion, warmup, window)
    result["runs"] = [r]
    result["target"] = TARGET
    result["figures"] = {
        "monitor_median_abs_error_ms": r["monitor"]["abs_error_ms"]["median"],
        "exporter_median_abs_error_ms": r["blackbox_exporter"]["abs_error_ms"]["median"],
        "monitor_p99_abs_error_ms": r["monitor"]["abs_error_ms"]["p99"],
        "exporter_p99_abs_error_ms": r["blackbox_exporter"]["abs_error_ms"]["p99"],
        "accuracy_ratio_median": r["accuracy_ratio_median"],
        "accuracy_ratio_p99": r["accuracy_ratio_p99"],
        "monitor_cpu_ms_per_probe": r["monitor"]["cpu_ms_per_probe"],
        "exporter_cpu_ms_per_probe": r["blackbox_exporter"]["cpu_ms_per_probe"],
        "cpu_per_probe_ratio": r["cpu_per_probe_ratio"],
    }
    am, ap, c = r["accuracy_ratio_median"], r["accuracy_ratio_p99"], r["cpu_per_probe_ratio"]
    result["meets_target"] = bool(
        am is not None and ap is not None and c is not None and am >= 1.0 and ap >= 1.0 and c <= 1.0
    )
    log(f"{NAME}: {json.dumps(result['figures'])}")
    return write_result(NAME, result)


def _exporter_version() -> str:
    binary = debian_tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    if binary is None:
        return "unavailable"
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    text = out.stdout + out.stderr
    m = re.search(r"version (\S+)", text)
    return m.group(1) if m else text.strip()[:80]


if __name__ == "__main__":
    raise SystemExit(main())
