"""Memory and duration of one `GET /metrics` at scale, measured in a fresh process per run.

The monitor is fed probe results directly (no simulator, no probing), so the figures are the
scrape's own: the child builds a monitor whose snapshot holds `hosts` hosts over `models` models
(plus a `-thinking` alias of the first model), serves the real app on loopback and scrapes itself
as Prometheus does (OpenMetrics or text 0.0.4, gzip accepted, body read as it arrives and
discarded). Reported per scrape:

- peak RSS (ru_maxrss) before and after, and the rise;
- tracemalloc peak over the scrape (a separate run: tracing slows everything down);
- duration of the scrape, seen by the client, and the worst event-loop stall during it
  (a 1 ms ticker), because a stalled loop spoils the probes' time-to-first-token readings;
- body size, compressed and not, and whether an OpenMetrics body ends with `# EOF`.

Usage: python -m bench.metrics_memory [--hosts 10000] [--samples 50] [--scrapes 3] [--out FILE]

With `--samples 50` every host's windows are full (50 results of each kind), as after a day of
probing: `peak_rss_built_mib` is then the steady-state memory of the state itself, which the
probe_scale benchmark (a few minutes of probing) does not reach.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import time
import tracemalloc
import zlib
from typing import Any

import aiohttp
from aiohttp import web

from monitor.config_load import load_settings
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.logging import configure_logging
from monitor.service import Monitor
from monitor.web.api import make_app

# What Prometheus 2.42 sends (it negotiates OpenMetrics), and what a plain client gets.
ACCEPT = {
    "openmetrics": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "text": "text/plain;version=0.0.4",
}


def build_monitor(hosts: int, models: int, samples: int = 1) -> Monitor:
    """`samples` results of each kind per host: 50 fills every window, as after a day of probing."""
    settings = load_settings(
        environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    )
    m = Monitor(settings)
    names = [f"scale-model-{i}" for i in range(models)]
    listing: dict[str, list[str]] = {name: [] for name in names}
    for i in range(hosts):
        listing[names[i % models]].append(f"http://127.0.0.1:{20000 + i}")
    listing[names[0] + "-thinking"] = list(listing[names[0]])
    now = time.time() - 60
    finish(m.fleet.apply_listing(listing, now))
    for model in names:
        for j, host in enumerate(listing[model]):
            for k in range(samples):
                at = now - 10 * (samples - k)
                m.recorder.record(
                    ProbeResult(model, host, ProbeKind.HEALTH, Outcome.OK, at, 200, 1.0, None, 9.0)
                )
                ok = (j + k) % 10 != 0
                outcome = Outcome.OK if ok else Outcome.SERVER_ERROR
                ttft = 50.0 + (j + k) % 97 if ok else None
                m.recorder.record(
                    ProbeResult(model, host, ProbeKind.COMPLETION, outcome, at + 1, 200, 1.0, ttft, 80.0)
                )
                m.recorder.record(
                    ProbeResult("", host, ProbeKind.AUTH, Outcome.OK, at + 2, 200, 1.0, None, 3.0)
                )
    finish(m.publisher.publish(force=True))
    return m


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def _ticker(stalls: list[float]) -> None:
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        stalls.append(time.perf_counter() - t - 0.001)


async def _scrape(http: aiohttp.ClientSession, url: str, accept: str) -> dict[str, Any]:
    plain = zlib.decompressobj(wbits=47)  # gzip or zlib, whichever the server chose
    compressed = size = 0
    tail = b""
    started = time.perf_counter()
    async with http.get(url, headers={"Accept": accept, "Accept-Encoding": "gzip"}) as r:
        assert r.status == 200, r.status
        encoding = r.headers.get("Content-Encoding", "identity")
        async for chunk in r.content.iter_any():
            compressed += len(chunk)
            data = plain.decompress(chunk) if encoding != "identity" else chunk
            size += len(data)
            tail = (tail + data)[-64:]
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "content_type": r.headers["Content-Type"],
        "content_encoding": encoding,
        "bytes_on_wire": compressed,
        "body_bytes": size,
        "ends_with_eof": tail.endswith(b"# EOF\n"),
    }


async def child(hosts: int, models: int, samples: int, fmt: str, scrapes: int, trace: bool) -> dict[str, Any]:
    configure_logging("warning", "json")  # thousands of "host up" lines would drown the figures
    m = build_monitor(hosts, models, samples)
    gc.collect()
    built_rss = _max_rss_mib()
    runner = web.AppRunner(make_app(m), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/metrics"
    out: dict[str, Any] = {
        "hosts": hosts,
        "samples_per_kind": samples,
        "format": fmt,
        "tracemalloc": trace,
        "peak_rss_built_mib": round(built_rss, 1),
        "scrapes": [],
    }
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        await asyncio.sleep(0.1)
        for _ in range(scrapes):
            gc.collect()
            before = _max_rss_mib()
            if trace:
                tracemalloc.start()
            stalls: list[float] = []
            ticker = asyncio.create_task(_ticker(stalls))
            result = await _scrape(http, url, ACCEPT[fmt])
            ticker.cancel()
            if trace:
                result["tracemalloc_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
                tracemalloc.stop()
            after = _max_rss_mib()
            result |= {
                "peak_rss_before_mib": round(before, 1),
                "peak_rss_after_mib": round(after, 1),
                "peak_rss_rise_mib": round(after - before, 1),
                "worst_loop_stall_ms": round(1000 * max(stalls, default=0.0), 1),
            }
            out["scrapes"].append(result)
    await runner.cleanup()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", type=int, default=10_000)
    p.add_argument("--models", type=int, default=10)
    p.add_argument("--scrapes", type=int, default=3)
    p.add_argument("--samples", type=int, default=3, help="results of each kind per host (50: full windows)")
    p.add_argument("--out", help="write the results (JSON) here too")
    p.add_argument("--child", choices=sorted(ACCEPT), help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        result = asyncio.run(
            child(args.hosts, args.models, args.samples, args.child, args.scrapes, args.trace)
        )
        print(json.dumps(result))
        return
    runs = []
    for fmt in ("openmetrics", "text"):
        for trace in (False, True):
            cmd = [sys.executable, "-m", "bench.metrics_memory", "--child", fmt]
            cmd += ["--hosts", str(args.hosts), "--models", str(args.models), "--scrapes", str(args.scrapes)]
            cmd += ["--samples", str(args.samples)]
            if trace:
                cmd.append("--trace")
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(runs, f, indent=2)


if __name__ == "__main__":
    main()
