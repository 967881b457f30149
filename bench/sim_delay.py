"""How much delay does the simulated network add of its own?

Starts the simulator in a subprocess (`scale` preset, fixed TTFT), drives streamed chat completions
at a steady rate from this process with aiohttp (open loop: requests start on schedule, bounded
concurrency), and reports, against the configured TTFT:

- client-observed TTFT (request sent -> first SSE data line) minus the configured TTFT: what a
  benchmark of the monitor would see on top of the configured value (includes this client's own
  overhead);
- host-recorded TTFT truth (request reached the handler -> first body byte written) minus the
  configured TTFT: the simulator's own scheduling delay.

Writes bench/results/sim_delay.json and prints a table.

    python -m bench.sim_delay [--quick] [--rate 1000] [--duration 10] [--hosts 50] [--ttft-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import loadavg, machine, results_dir

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": round(statistics.median(values), 3) if values else float("nan"),
        "p90": round(pct(values, 90), 3),
        "p99": round(pct(values, 99), 3),
        "max": round(max(values), 3) if values else float("nan"),
    }


def start_simulator(
    hosts: int, ttft_ms: float, itl_ms: float, tokens: int
) -> tuple[subprocess.Popen[str], str]:
    spec = f"scale:hosts={hosts},models={min(hosts, 10)},ttft_ms={ttft_ms},itl_ms={itl_ms},tokens={tokens}"
    code = f"from monitor.sim.cli import run_simulate; raise SystemExit(run_simulate({spec!r}, 0, 1, []))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    assert proc.stdout is not None
    gateway = None
    for line in proc.stdout:
        m = re.match(r"gateway:\s+(\S+)", line)
        if m:
            gateway = m.group(1)
        if line.startswith("Press Ctrl-C"):
            break
    if gateway is None:
        proc.kill()
        raise SystemExit("the simulator did not start")
    return proc, gateway


async def drive(
    gateway: str, rate: float, duration: float, warmup: float, concurrency: int
) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async with http.get(f"{gateway}/_sim/hosts") as r:
            hosts = [(h["direct_url"], h["models"][0]) for h in (await r.json())["hosts"]]
        sem = asyncio.Semaphore(concurrency)
        ttfts: list[float] = []
        lags: list[float] = []
        errors: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        headers = {"Authorization": "Bearer sk-bench"}

        async def one(i: int, planned: float, measure: bool) -> None:
            url, model = hosts[i % len(hosts)]
            body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
            async with sem:
                t0 = loop.time()
                try:
                    async with http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
                        if resp.status != 200:
                            errors[str(resp.status)] = errors.get(str(resp.status), 0) + 1
                            return
                        while True:
                            line = await resp.content.readline()
                            if line.startswith(b"data:") or not line:
                                break
                        first = loop.time() - t0
                        await resp.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    return
            if measure:
                ttfts.append(first * 1000.0)
                lags.append((t0 - planned) * 1000.0)

        tasks = []
        start = loop.time() + 0.1
        total = int(rate * (warmup + duration))
        for i in range(total):
            planned = start + i / rate
            delay = planned - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, planned, measure=i >= rate * warmup)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
        async with http.get(f"{gateway}/_sim/hosts") as r:
            truth = [t for h in (await r.json())["hosts"] for t in h["ttft_truth_ms"]]
    return {
        "ttfts": ttfts,
        "lags": lags,
        "truth": truth,
        "errors": errors,
        "sent": total,
        "achieved_rate": round(total / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="streamed requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not measured")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--quick", action="store_true", help="200/s for 2 s over 10 hosts (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rate, args.duration, args.warmup, args.hosts = 200.0, 2.0, 0.5, 10
    args.output = args.output or results_dir(args.quick) / "sim_delay.json"
    load_before = loadavg()

    proc, gateway = start_simulator(args.hosts, args.ttft_ms, args.itl_ms, args.tokens)
    # The client's own garbage-collection pauses would otherwise show up as simulator delay.
    gc.disable()
    try:
        run = asyncio.run(drive(gateway, args.rate, args.duration, args.warmup, args.concurrency))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)

    client = [t - args.ttft_ms for t in run["ttfts"]]
    host = [t - args.ttft_ms for t in run["truth"]]
    result = {
        "benchmark": "sim_delay",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "versions": {p: metadata.version(p) for p in ("aiohttp", "trustme")},
        "parameters": {
            "rate_per_s": args.rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "hosts": args.hosts,
            "ttft_ms": args.ttft_ms,
            "itl_ms": args.itl_ms,
            "tokens": args.tokens,
            "concurrency": args.concurrency,
            "client": "aiohttp, keep-alive, one process; the simulator in another process",
        },
        "sent": run["sent"],
        "measured": len(run["ttfts"]),
        "achieved_rate_per_s": run["achieved_rate"],
        "errors": run["errors"],
        "client_ttft_minus_configured_ms": summary(client),
        "host_truth_minus_configured_ms": summary(host),
        "client_start_lag_ms": summary(run["lags"]),
        "figures": {
            "host_added_median_ms": round(statistics.median(host), 3) if host else None,
            "host_added_p99_ms": round(pct(host, 99), 3) if host else None,
            "client_added_median_ms": round(statistics.median(client), 3) if client else None,
            "client_added_p99_ms": round(pct(client, 99), 3) if client else None,
        },
        "quick": args.quick,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "notes": "host truth covers the last 100 answers of each host (the end of the run); client figures "
        "include the benchmark client's own overhead on a shared machine",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")

    rows = [
        ("client TTFT - configured", result["client_ttft_minus_configured_ms"]),
        ("host truth - configured", result["host_truth_minus_configured_ms"]),
        ("client start lag", result["client_start_lag_ms"]),
    ]
    print(
        f"sim_delay: {run['sent']} streamed requests at {args.rate:g}/s target "
        f"({run['achieved_rate']}/s achieved) over {args.hosts} hosts, TTFT {args.ttft_ms:g} ms; "
        f"errors: {run['errors'] or 'none'}"
    )
    print(f"{'ms':<26}{'n':>7}{'median':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for label, s in rows:
        print(f"{label:<26}{s['n']:>7}{s['median']:>9.2f}{s['p90']:>9.2f}{s['p99']:>9.2f}{s['max']:>9.2f}")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
