"""What the failover client costs and what it saves.

1. Added latency: the official openai SDK (sync) calls one simulated host directly, and the same
   SDK calls it through `FailoverTransport` (with the monitor's answer for that model cached, as
   in steady use), alternating request by request in one run, so both see the same machine.
   Reported: p50 and p99 of each, and their differences (target: under 1 ms at p50).
   Also the transport's own cost in process (an in-memory inner transport, no network), which
   the loopback figure cannot resolve on a busy machine.
2. Failover under load: `AsyncOpenAI` through `AsyncFailoverTransport` sends 20 requests/s (half
   streamed) for 60 s; a third of the way in, the model's best host is killed (connections
   refused, as a dead machine). Reported: failed requests (target 0 outside streams in flight at
   the kill), and which hosts answered.

The simulated network and the monitor run in child processes; this process is the client.

    python -m bench.client_overhead            # 2 x 2,000 requests, then 60 s at 20/s
    python -m bench.client_overhead --quick    # 2 x 150 requests, then 8 s at 20/s (a smoke test)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx2
import openai

from bench.common import API_KEY, MonitorProc, Simulator, base_result, log, pct, summary, write_result
from monitor.client import HOST_HEADER, AsyncFailoverTransport, Attempt, FailoverTransport

NAME = "client_overhead"
MODEL = "m"
MESSAGES: Any = [{"role": "user", "content": "Hi"}]
SCENARIO = """
name = "client-bench"
[[models]]
id = "m"
[defaults]
tokens = 4
itl = 1
[[hosts]]
name = "h0"
models = ["m"]
ttft = 2
[[hosts]]
name = "h1"
models = ["m"]
ttft = 6
[[hosts]]
name = "h2"
models = ["m"]
ttft = 10
"""
MONITOR = {
    "probe_interval": 1,
    "down_probe_interval": 0.5,
    "completion_interval": 1,
    "discovery_interval": 5,
    "probe_timeout": 2,
    "confirm_delay": 0.2,
    "jitter": 0.05,
}


def _best(monitor: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{monitor}/v1/best/{MODEL}", timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code != 404:  # 404: not discovered yet
            raise
        return {}
    return data


def _wait_best(monitor: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        host = _best(monitor).get("host")
        if host:
            return str(host)
        time.sleep(0.2)
    raise RuntimeError("the monitor named no best host in time")


def in_process(n: int) -> dict[str, Any]:
    """The transport's own cost, without the network's noise: the same SDK-shaped requests sent
    through an in-memory inner transport alone, and through `FailoverTransport` wrapping it (its
    answer cached), alternating."""
    body = b'{"id":"c","object":"chat.completion","choices":[]}'

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"Content-Type": "application/json"})

    inner = httpx2.MockTransport(handler)
    t = FailoverTransport(
        "http://127.0.0.1:9", transport=httpx2.MockTransport(handler), allowed_hosts="http://127.0.0.1:*"
    )
    cache = t._core.cache  # prime the answer as a first request would
    _, fetch, _ = cache.want(MODEL)
    assert fetch is not None
    cache.got(
        fetch, 200, None, json.dumps({"model": MODEL, "host": "http://127.0.0.1:1", "fallbacks": []}).encode()
    )
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    content = json.dumps({"model": MODEL, "messages": MESSAGES, "max_tokens": 2}).encode()
    alone: list[float] = []
    via: list[float] = []
    for i in range(n + 200):
        for transport, out in ((inner, alone), (t, via)) if i % 2 else ((t, via), (inner, alone)):
            req = httpx2.Request(
                "POST", "https://api.libertai.io/v1/chat/completions", headers=headers, content=content
            )
            t0 = time.perf_counter()
            transport.handle_request(req).read()
            if i >= 200:  # after warming up
                out.append((time.perf_counter() - t0) * 1000)
    return {
        "requests_each": n,
        "inner_alone_ms": summary(alone, 4),
        "via_transport_ms": summary(via, 4),
        "added_ms_p50": round((pct(via, 50) or 0) - (pct(alone, 50) or 0), 4),
        "added_ms_p99": round((pct(via, 99) or 0) - (pct(alone, 99) or 0), 4),
    }


def overhead(monitor: str, gateway: str, n: int) -> dict[str, Any]:
    t = FailoverTransport(monitor, gateway_url=gateway, allowed_hosts="http://127.0.0.1:*")
    via = openai.OpenAI(
        base_url=gateway + "/v1", api_key=API_KEY, max_retries=0, http_client=httpx2.Client(transport=t)
    )
    direct_ms: list[float] = []
    via_ms: list[float] = []
    other_host = 0

    def one(client: openai.OpenAI) -> tuple[str, float]:
        t0 = time.perf_counter()
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, max_tokens=2)
        raw.parse()
        return str(raw.headers.get(HOST_HEADER, "")), (time.perf_counter() - t0) * 1000

    for _ in range(20):  # warm up: connections, the answer cache, the sticky host
        host, _ = one(via)
    # The direct client calls the host the transport sticks to, so both measure the same host.
    direct = openai.OpenAI(base_url=host + "/v1", api_key=API_KEY, max_retries=0, http_client=httpx2.Client())
    for _ in range(20):
        one(direct)
    for i in range(n):
        if i % 2 == 0:
            d = one(direct)[1]
            answered, v = one(via)
        else:
            answered, v = one(via)
            d = one(direct)[1]
        if answered != host:  # the transport moved: not a like-for-like pair
            other_host += 1
            continue
        direct_ms.append(d)
        via_ms.append(v)
    paired = [v - d for v, d in zip(via_ms, direct_ms, strict=True)]
    return {
        "requests_each": n,
        "host": host,
        "pairs_on_another_host_dropped": other_host,
        "direct_ms": summary(direct_ms),
        "via_transport_ms": summary(via_ms),
        "added_ms_p50": round((pct(via_ms, 50) or 0) - (pct(direct_ms, 50) or 0), 3),
        "added_ms_p99": round((pct(via_ms, 99) or 0) - (pct(direct_ms, 99) or 0), 3),
        "paired_difference_ms": summary(paired),
    }


def _wait_stable_best(monitor: str, seconds: float = 3.0, timeout: float = 60.0) -> str:
    """The best host once it has stayed the same for `seconds` (start-up picks churn at first)."""
    deadline = time.monotonic() + timeout
    best, since = _wait_best(monitor), time.monotonic()
    while time.monotonic() < deadline:
        now_best = _wait_best(monitor)
        if now_best != best:
            best, since = now_best, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return best
        time.sleep(0.2)
    return best


async def failover(
    monitor: str, gateway: str, best: str, names: dict[str, str], rate: float, seconds: float
) -> dict[str, Any]:
    attempts: list[Attempt] = []
    t = AsyncFailoverTransport(
        monitor, gateway_url=gateway, allowed_hosts="http://127.0.0.1:*", on_attempt=attempts.append
    )
    client = openai.AsyncOpenAI(
        base_url=gateway + "/v1", api_key=API_KEY, max_retries=0, http_client=httpx2.AsyncClient(transport=t)
    )
    killed_at: float | None = None
    results: list[dict[str, Any]] = []

    async def one(i: int) -> None:
        stream = i % 2 == 1
        t0 = time.perf_counter()
        rec: dict[str, Any] = {"stream": stream, "started": t0, "ok": False}
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL, messages=MESSAGES, max_tokens=4, stream=stream
            )
            parsed: Any = raw.parse()
            if stream:
                async for _ in parsed:
                    pass
            rec.update(ok=True, host=raw.headers.get(HOST_HEADER))
        except openai.OpenAIError as exc:
            rec["error"] = type(exc).__name__
        rec["ms"] = (time.perf_counter() - t0) * 1000
        rec["ended"] = time.perf_counter()
        results.append(rec)

    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    tasks = []
    i = 0
    while (now := time.perf_counter()) - start < seconds:
        if killed_at is None and now - start >= seconds / 3:
            await loop.run_in_executor(None, _kill, gateway, names[best])
            killed_at = time.perf_counter()
            log(f"{NAME}: killed {names[best]} ({best}) at {killed_at - start:.1f} s")
        tasks.append(asyncio.create_task(one(i)))
        i += 1
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
    await asyncio.gather(*tasks)
    await t.aclose()
    assert killed_at is not None
    failed = [r for r in results if not r["ok"]]
    in_flight = [r for r in failed if r["stream"] and r["started"] < killed_at < r["ended"]]
    after = [r["ms"] for r in results if r["ok"] and r["started"] > killed_at]
    before = [r["ms"] for r in results if r["ok"] and r["ended"] < killed_at]
    answered: dict[str, int] = {}
    for r in results:
        if r["ok"]:
            answered[r["host"]] = answered.get(r["host"], 0) + 1
    passed_over = [a for a in attempts if a.passed_over]
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "requests": len(results),
        "failed": len(failed),
        "failed_streams_in_flight_at_kill": len(in_flight),
        "failed_otherwise": len(failed) - len(in_flight),
        "errors": sorted({r.get("error", "") for r in failed}),
        "killed_host": best,
        "answered_by": answered,
        "passed_over_attempts": len(passed_over),
        "passed_over_reasons": sorted({a.reason.value for a in passed_over}),
        "latency_ms_before_kill": summary(before),
        "latency_ms_after_kill": summary(after),
    }


def _kill(gateway: str, name: str) -> None:
    body = json.dumps({"down": True, "down_mode": "refuse"}).encode()
    req = urllib.request.Request(
        f"{gateway}/_sim/hosts/{name}", data=body, headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(req, timeout=10).close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    args = p.parse_args()
    n, seconds, rate = (150, 8.0, 20.0) if args.quick else (2000, 60.0, 20.0)
    result = base_result(NAME, args.quick, {"requests_each": n, "seconds": seconds, "rate_per_s": rate})
    scenario = Path(tempfile.mkdtemp(prefix="libertai-bench-client-")) / "client.toml"
    scenario.write_text(SCENARIO)
    with Simulator(str(scenario)) as sim, MonitorProc(sim.gateway, MONITOR) as mon:
        best = _wait_stable_best(mon.url)
        names = {h["normalized_url"]: h["name"] for h in sim.truth()["hosts"]}
        log(f"{NAME}: best host {best}; {n} requests each way")
        result["overhead"] = overhead(mon.url, sim.gateway, n)
        best = _wait_stable_best(mon.url)
        log(f"{NAME}: {rate:g} requests/s for {seconds:g} s, killing {best}")
        result["failover"] = asyncio.run(failover(mon.url, sim.gateway, best, names, rate, seconds))
    result["in_process"] = in_process(n * 5)
    o, f, ip = result["overhead"], result["failover"], result["in_process"]
    result["figures"] = {
        "added_ms_p50": o["added_ms_p50"],
        "added_ms_p99": o["added_ms_p99"],
        "transport_cpu_ms_p50": ip["added_ms_p50"],
        "transport_cpu_ms_p99": ip["added_ms_p99"],
        "failed_requests": f["failed_otherwise"],
        "failed_streams_in_flight": f["failed_streams_in_flight_at_kill"],
    }
    log(f"{NAME}: {json.dumps(result['figures'])}")
    return write_result(NAME, result)


if __name__ == "__main__":
    raise SystemExit(main())
