"""`libertai-monitor` with proposed fixes applied by monkeypatching, to measure them before they are
made in monitor/ (the benchmarks use it when BENCH_PATCHES is set: `BENCH_PATCHES=keepalive,scores
python -m bench.probe_scale --sizes 10000`).

Patches (comma-separated names):
- `keepalive`: the probe session keeps idle connections for 75 s (aiohttp's default is 15 s), longer
  than the 30 s health interval, so a host's connection is reused by its next probe instead of a new
  TCP connection (and a new socket in both processes) for nearly every probe.
- `scores`: `ranking._latencies` / `ranking._scored` remember their answer per immutable `HostHealth`
  object, so the publisher (every 250 ms, every model that got a probe) re-sorts hosts instead of
  recomputing every host's percentiles; only hosts probed since the last publish are scored again.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def keepalive(seconds: float = 75.0) -> None:
    import aiohttp

    base = aiohttp.TCPConnector

    class KeepAliveConnector(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("keepalive_timeout", seconds)
            super().__init__(*args, **kwargs)

    aiohttp.TCPConnector = KeepAliveConnector  # type: ignore[misc]


def scores() -> None:
    from monitor.core import ranking

    latencies, scored = ranking._latencies, ranking._scored
    cache: dict[tuple[int, Any], tuple[Any, Any]] = {}

    def remember(key: tuple[int, Any], h: Any, compute: Any) -> Any:
        hit = cache.get(key)
        if hit is not None and hit[0] is h:
            return hit[1]
        if len(cache) > 200_000:
            cache.clear()
        value = compute()
        cache[key] = (h, value)
        return value

    def cached_latencies(h: Any, basis: Any) -> Any:
        return remember((id(h), ("l", basis)), h, lambda: latencies(h, basis))

    def cached_scored(h: Any, basis: Any, policy: Any) -> Any:
        return remember((id(h), ("s", basis, id(policy))), h, lambda: scored(h, basis, policy))

    ranking._latencies = cached_latencies
    ranking._scored = cached_scored


def timing() -> None:
    """Not a fix: record how long the synchronous steps that run on the event loop take (publish,
    rank, building the snapshot, a health update, garbage collections) and
    write a summary to
    $BENCH_TIMING at exit. A step of 100 ms delays every probe and request behind it by 100 ms."""
    import atexit
    import json
    import time

    from monitor import service
    from monitor.parts import best_hosts, fleet, publisher, recorder

    spans: dict[str, list[float]] = {}
    # (label, wall-clock start, ms) of every step of 2 ms or more, to line up with probe errors.
    long_steps: list[tuple[str, float, float]] = []

    def note(label: str, t0: float) -> None:
        ms = (time.perf_counter() - t0) * 1000
        spans.setdefault(label, []).append(ms)
        if ms >= 2.0:
            long_steps.append((label, time.time() - ms / 1000, round(ms, 2)))

    def wrap(owner: Any, name: str, label: str) -> None:
        fn = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                note(label, t0)

        setattr(owner, name, timed)

    wrap(publisher.Publisher, "publish", "Publisher.publish")
    wrap(best_hosts, "rank", "ranking.rank")
    wrap(publisher, "model_view", "snapshot.model_view")
    wrap(publisher, "with_aliases", "snapshot.with_aliases")
    wrap(best_hosts.BestHosts, "rank", "BestHosts.rank (one model)")
    wrap(recorder, "apply", "health.apply")
    wrap(publisher, "host_view", "snapshot.host_view")
    wrap(fleet.Fleet, "apply_listing", "Fleet.apply_listing")
    wrap(fleet.Fleet, "_sync", "Fleet._sync")
    wrap(recorder.Recorder, "record", "Recorder.record")

    import gc

    started: list[float] = [0.0]
    young: list[int] = [0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            young[0] = len(gc.get_objects(0)) if info.get("generation") == 0 else -1
            started[0] = time.perf_counter()
        else:
            note(f"gc.collect(generation {info.get('generation')})", started[0])
            ms = (time.perf_counter() - started[0]) * 1000
            if ms >= 2.0:  # what a long collection found: how many young objects, how much garbage
                detail = f"gc detail: young {young[0]}, collected {info.get('collected')}"
                long_steps.append((detail, time.time(), 0))

    gc.callbacks.append(on_gc)

    # The event loop's own lateness, whatever its cause (including steps not wrapped above and
    # other threads holding the GIL): a task that asks to wake every 2 ms and records how late it is.
    import asyncio

    run = service.Monitor.run

    async def run_with_lag_probe(self: Any) -> None:
        await run(self)

        async def lag() -> None:
            while True:
                t0 = time.perf_counter()
                await asyncio.sleep(0.002)
                late = (time.perf_counter() - t0 - 0.002) * 1000
                spans.setdefault("loop lateness", []).append(late)
                if late >= 2.0:
                    long_steps.append(("loop lateness", time.time() - late / 1000, round(late, 2)))

        self._tasks.append(asyncio.create_task(lag()))

    service.Monitor.run = run_with_lag_probe  # type: ignore[method-assign]

    def dump() -> None:
        out = {}
        for label, values in spans.items():
            v = sorted(values)
            out[label] = {
                "calls": len(v),
                "total_s": round(sum(v) / 1000, 3),
                "median_ms": round(v[len(v) // 2], 3),
                "p99_ms": round(v[min(len(v) - 1, int(len(v) * 0.99))], 3),
                "max_ms": round(v[-1], 3),
            }
        path = os.environ.get("BENCH_TIMING")
        if path:
            with open(path, "w") as f:
                json.dump({"summary": out, "long_steps": long_steps}, f, indent=1)

    atexit.register(dump)


def gcfreeze() -> None:
    """Fewer and shorter full garbage collections: `gc.freeze()` once the service has started (the
    long-lived objects of start-up leave the collected generations, as the simulator does), and a
    higher threshold for the young generation so that the per-probe garbage is not scanned as often."""
    import asyncio
    import gc

    from monitor import service

    run = service.Monitor.run

    async def run_then_freeze(self: Any) -> None:
        await run(self)

        async def later() -> None:
            await asyncio.sleep(5)
            gc.collect()
            gc.freeze()

        self._tasks.append(asyncio.create_task(later()))

    service.Monitor.run = run_then_freeze  # type: ignore[method-assign]
    gc.set_threshold(50_000, 20, 100)


def uvloop() -> None:
    """Not adopted, measured: the monitor on uvloop's event loop (libuv) instead of asyncio's, to see
    how much of the remaining tail latency is the event loop's own per-callback cost."""
    import asyncio

    import uvloop as uv

    asyncio.set_event_loop_policy(uv.EventLoopPolicy())


PATCHES = {"keepalive": keepalive, "scores": scores, "timing": timing, "gcfreeze": gcfreeze, "uvloop": uvloop}


def main() -> int:
    for name in filter(None, os.environ.get("BENCH_PATCHES", "").split(",")):
        PATCHES[name.strip()]()
    from monitor.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
