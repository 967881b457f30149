"""The herd: what happens when many applications follow the same answer.

The `herd` preset (one model on two fast hosts of 4 slots, a medium one of 8, a slow one of 16, and
one that answers /health with 202) serves several client processes (bench/herd_client.py), each
holding many conversations of several streamed turns, under four routers in turn:

1. `spread`: the failover transport following the monitor (`spread=True`: power of two choices over
   the answer's `candidates`, conversations kept on their host; without `candidates` in the answer it
   has the best host and its fallbacks only);
2. `single`: the transport with `spread=False` (every request to the single best host);
3. `gateway`: the simulated gateway with `routing = "least_in_flight"` (LibertAI's behaviour);
4. `round_robin`: the listed hosts whose /health answers 200, in turn.

Each router gets a fresh simulator and monitor (the same seed), so that no queue, prefix cache or
probe history carries over. Reported per router: client TTFT (request sent to the first content)
p50/p95/p99 over the measured window, each host's share of requests against its share of the
slots, conversation affinity (mean share of a conversation's requests on its most used host) and
prefix-cache hits of the turns after the first (from the simulator's ground truth: the monitor's
probes carry a nonce, so every hit is a client's).

    python -m bench.herd            # 8 processes x 6 conversations, 60 s measured per router
    python -m bench.herd --quick    # 3 x 3, 8 s per router: a smoke test, not a measurement
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    MonitorProc,
    Simulator,
    base_result,
    http_json,
    log,
    pct,
    stop,
    versions,
    write_result,
)
from bench.herd_client import ROUTERS

NAME = "herd"
MODEL = "herd-model"
# Probing often enough that the monitor sees the load change within a 60 s run.
MONITOR = {
    "probe_interval": 1,
    "down_probe_interval": 1,
    "completion_interval": 2,
    "discovery_interval": 5,
    "probe_timeout": 10,
    "confirm_delay": 0.5,
    "jitter": 0.05,
}
FULL: dict[str, Any] = {
    "processes": 8,
    "conversations": 6,
    "turns": 6,
    "think_s": [0.5, 1.5],
    "warmup_s": 10.0,
    "seconds": 60.0,
}
QUICK: dict[str, Any] = {
    "processes": 3,
    "conversations": 3,
    "turns": 3,
    "think_s": [0.2, 0.5],
    "warmup_s": 2.0,
    "seconds": 6.0,
}


def _post(url: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(req, timeout=10).close()


def _best(monitor: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = http_json(f"{monitor}/v1/best/{MODEL}", timeout=10)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:  # 404: not discovered yet
            raise
        return {}
    return data


def _ranked(answer: dict[str, Any]) -> list[str]:
    if answer.get("candidates"):
        return [c["url"] for c in answer["candidates"]]
    return [answer["host"], *answer.get("fallbacks", [])] if answer.get("host") else []


def _wait_monitor(monitor: str, hosts: int, settle: float, timeout: float = 120.0) -> dict[str, Any]:
    """The monitor's answer once it ranks every warm host and its best host has not changed for
    `settle` seconds (its first picks churn until each host has a few completions); at the timeout,
    the answer as it is then."""
    deadline = time.monotonic() + timeout
    answer: dict[str, Any] = {}
    best, since = None, time.monotonic()
    while time.monotonic() < deadline:
        answer = _best(monitor)
        ranked = _ranked(answer)
        if len(ranked) < hosts or ranked[0] != best:
            best, since = (ranked[0] if ranked else None), time.monotonic()
        elif time.monotonic() - since >= settle:
            return answer
        time.sleep(0.5)
    return answer


def warm_hosts(gateway: str) -> list[str]:
    """The listed hosts of the model whose /health answers 200 (the 202 one is not loaded)."""
    servers = http_json(f"{gateway}/libertai/models")[MODEL]["servers"]
    warm = []
    for url in servers:
        try:
            with urllib.request.urlopen(f"{url}/health/{MODEL}", timeout=5) as r:
                if r.status == 200:
                    warm.append(url)
        except urllib.error.URLError:
            pass
    return warm


def _capacity(truth: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """host name -> its url, slots, loaded, and counters of the model (cumulative)."""
    out = {}
    for h in truth["hosts"]:
        cap = h["capacity"][MODEL]
        out[h["name"]] = {
            "url": h["normalized_url"],
            "slots": cap["slots"] or 0,
            "loaded": h["behaviour"].get("loaded", True),
            "cache_hits": cap["cache_hits"],
            "cache_misses": cap["cache_misses"],
            "via_gateway": sum(v for k, v in h["via_gateway"].items() if k.endswith("/chat/completions")),
        }
    return out


def run_router(router: str, size: dict[str, Any], seed: int, workdir: Path) -> dict[str, Any]:
    with Simulator("herd", seed=seed) as sim, MonitorProc(sim.gateway, MONITOR) as mon:
        if router == "gateway":
            _post(f"{sim.gateway}/_sim/gateway", {"routing": "least_in_flight"})
        warm = warm_hosts(sim.gateway)
        answer = _wait_monitor(mon.url, len(warm), settle=4 * float(MONITOR["completion_interval"]))
        before = _capacity(sim.truth())
        start_at = time.time() + 3 + 0.5 * size["processes"]  # the processes import the SDK first
        measure_from = start_at + size["warmup_s"]
        until = measure_from + size["seconds"]
        procs, outs = [], []
        for i in range(size["processes"]):
            out = workdir / f"{router}-{i}.jsonl"
            outs.append(out)
            cmd = [sys.executable, "-m", "bench.herd_client", "--router", router, "--monitor", mon.url]
            cmd += [
                "--gateway",
                sim.gateway,
                "--hosts",
                ",".join(warm),
                "--model",
                MODEL,
                "--process",
                str(i),
            ]
            cmd += ["--conversations", str(size["conversations"]), "--turns", str(size["turns"])]
            cmd += ["--think-min", str(size["think_s"][0]), "--think-max", str(size["think_s"][1])]
            cmd += ["--start-at", str(start_at), "--until", str(until), "--out", str(out)]
            procs.append(subprocess.Popen(cmd, cwd=ROOT))
        try:
            for p in procs:
                p.wait(timeout=until - time.time() + 180)
        finally:
            for p in procs:
                stop(p)
        failed = [p.returncode for p in procs if p.returncode != 0]
        if failed:
            raise RuntimeError(f"{router}: client processes exited with {failed}")
        answer_after = _best(mon.url)
        after = _capacity(sim.truth())
    records = [json.loads(line) for out in outs for line in out.read_text().splitlines()]
    return summarise(router, records, before, after, measure_from, until) | {
        "monitor_candidates": {"before": "candidates" in answer, "after": "candidates" in answer_after},
        "monitor_answer_before": answer,
        "monitor_answer_after": answer_after,
    }


def summarise(
    router: str,
    records: list[dict[str, Any]],
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    measure_from: float,
    until: float,
) -> dict[str, Any]:
    window = [r for r in records if measure_from <= r["started"] < until]
    ok = [r for r in window if r["ok"]]
    ttft = [r["ttft_ms"] for r in ok]
    by_url = {v["url"]: name for name, v in after.items()}
    warm_slots = sum(v["slots"] for v in after.values() if v["loaded"])
    # Shares of requests: the host each client saw answer; through the gateway, the simulator's count
    # of what the gateway forwarded (the answer does not name the host).
    if router == "gateway":
        counts = {n: after[n]["via_gateway"] - before[n]["via_gateway"] for n in after}
    else:
        c = Counter(by_url.get(r.get("host") or "", "other") for r in records if r["ok"])
        counts = {n: c.get(n, 0) for n in after} | ({"other": c["other"]} if c.get("other") else {})
    total = sum(counts.values()) or 1
    shares = {
        n: {
            "requests": counts[n],
            "share": round(counts[n] / total, 3),
            "capacity_share": round(after[n]["slots"] / warm_slots, 3)
            if n in after and after[n]["loaded"]
            else 0.0,
        }
        for n in counts
    }
    affinity = None
    if router != "gateway":
        per_conv: dict[str, Counter[str]] = defaultdict(Counter)
        for r in records:
            if r["ok"]:
                per_conv[r["conversation"]][r.get("host") or ""] += 1
        multi = [c for c in per_conv.values() if sum(c.values()) >= 2]
        if multi:
            affinity = round(sum(max(c.values()) / sum(c.values()) for c in multi) / len(multi), 3)
    hits = sum(after[n]["cache_hits"] - before[n]["cache_hits"] for n in after)
    later = sum(1 for r in records if r["ok"] and r["turn"] > 0)

    def r1(x: float | None) -> float | None:
        return None if x is None else round(x, 1)

    return {
        "router": router,
        "requests": len(records),
        "requests_in_window": len(window),
        "failed_in_window": len(window) - len(ok),
        "errors": sorted(Counter(r.get("error", "no content") for r in window if not r["ok"]).items()),
        "throughput_per_s": round(len(ok) / (until - measure_from), 2),
        "ttft_ms": {
            "p50": r1(pct(ttft, 50)),
            "p95": r1(pct(ttft, 95)),
            "p99": r1(pct(ttft, 99)),
            "max": r1(max(ttft, default=None)),
        },
        "hosts": shares,
        "affinity": affinity,
        "later_turns": later,
        "cache_hits": hits,
        "cache_hit_rate": round(min(1.0, hits / later), 3) if later else None,
    }


def targets(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def p99(name: str) -> float | None:
        value = runs.get(name, {}).get("ttft_ms", {}).get("p99")
        return None if value is None else float(value)

    s, lif, single = p99("spread"), p99("gateway"), p99("single")
    spread = runs.get("spread", {})
    checks = {
        "p99_vs_least_in_flight": None if not (s and lif) else round(s / lif, 3),
        "p99_vs_single_best": None if not (s and single) else round(s / single, 3),
        "affinity": spread.get("affinity"),
        "cache_hit_rate": spread.get("cache_hit_rate"),
    }
    met = {
        "p99_vs_least_in_flight": checks["p99_vs_least_in_flight"] is not None
        and checks["p99_vs_least_in_flight"] <= 0.8,
        "p99_vs_single_best": checks["p99_vs_single_best"] is not None
        and checks["p99_vs_single_best"] <= 0.5,
        "affinity": checks["affinity"] is not None and checks["affinity"] >= 0.9,
        "cache_hit_rate": checks["cache_hit_rate"] is not None and checks["cache_hit_rate"] >= 0.8,
    }
    return {"figures": checks, "met": met}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    p.add_argument("--routers", nargs="+", choices=ROUTERS, default=list(ROUTERS))
    p.add_argument("--seconds", type=float, help="measured seconds per router")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    size: dict[str, Any] = dict(QUICK if args.quick else FULL)
    if args.seconds:
        size["seconds"] = args.seconds
    params = {
        **size,
        "routers": args.routers,
        "concurrent_conversations": size["processes"] * size["conversations"],
        "preset": "herd",
        "seed": args.seed,
        "monitor": MONITOR,
        "fresh_simulator_and_monitor_per_router": True,
        "client": "openai AsyncOpenAI, streamed chat completions, max_retries=0",
    }
    result = base_result(NAME, args.quick, params)
    result["versions"] = versions(("openai", "httpx2", "libertai-failover"))
    workdir = Path(tempfile.mkdtemp(prefix="libertai-bench-herd-"))
    runs: dict[str, dict[str, Any]] = {}
    for router in args.routers:
        log(
            f"{NAME}: {router}: {size['processes']} processes x {size['conversations']} conversations, "
            f"{size['seconds']:g} s"
        )
        runs[router] = run_router(router, size, args.seed, workdir)
        r = runs[router]
        log(f"{NAME}: {router}: TTFT {r['ttft_ms']}, affinity {r['affinity']}, cache {r['cache_hit_rate']}")
    result["runs"] = runs
    t = targets(runs)
    result["figures"] = {
        **{f"{name}_ttft_ms": r["ttft_ms"] for name, r in runs.items()},
        **{f"{name}_affinity": r["affinity"] for name, r in runs.items()},
        **{f"{name}_cache_hit_rate": r["cache_hit_rate"] for name, r in runs.items()},
        **{f"spread_{k}": v for k, v in t["figures"].items() if k.startswith("p99")},
    }
    result["target"] = {
        "p99_vs_least_in_flight": "spread p99 <= 0.8 x gateway (least_in_flight) p99",
        "p99_vs_single_best": "spread p99 <= 0.5 x single p99",
        "affinity": "spread affinity >= 0.9",
        "cache_hit_rate": "spread cache hits >= 0.8 of the turns after the first",
    }
    result["targets_met"] = t["met"]
    result["meets_target"] = all(t["met"].values())
    return write_result(NAME, result)


if __name__ == "__main__":
    raise SystemExit(main())
