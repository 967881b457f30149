"""The worst event-loop stall of the WHOLE service while a gateway lists a huge number of servers.

    python -m tests.faults.measure_service_stall [SERVERS] [MODELS] [SECONDS]
        [--trusted] [--debug] [--why] [--census] [--no-metrics]

Starts the hostile gateway (`tests.faults.hostile`) in another process, listing SERVERS servers
(default 100,000) over MODELS models (default 10; 1 puts them all in one model), then runs the
service in this process as `libertai-monitor run` does (`server.serving`, the runtime's loop and
collection pacing, a SQLite database) for SECONDS (default 40): discovery polls every 10 s, the
publisher ranks, a /metrics scrape, /v1/hosts and /v1/best are read once the fleet is in. A ticker
measures the longest gap between its turns of the loop, printed per phase and in total.

Untrusted servers (default) are listed, stored and ranked but never probed; with `--trusted` they
are all probed too (each one's probe is refused at once: they all go down). Not a test: it prints
figures, which depend on how busy the machine is. `--debug` names every callback over 100 ms
(asyncio's debug mode, on the standard loop; slower); `--why` names what ran in every turn of the
loop over 100 ms, however many callbacks made it long (`tests/faults/_why.py`, standard loop);
`--census` counts the objects the collector tracks, by type, before the full collections;
`--no-metrics` leaves the /metrics scrape out (minutes at 100,000 probed hosts).
Logging is configured as `run` does it (JSON lines on stdout: redirect them).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from monitor import runtime
from monitor.config_load import load_settings
from monitor.logging import configure_logging
from monitor.server import serving
from monitor.service import Monitor

TICK_S = 0.005


class Ticker:
    def __init__(self) -> None:
        self.worst = 0.0
        self.total_worst = 0.0
        self.running = True

    async def run(self) -> None:
        last = time.perf_counter()
        while self.running:
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            gap = now - last - TICK_S
            self.worst = max(self.worst, gap)
            self.total_worst = max(self.total_worst, gap)
            last = now

    def phase(self, name: str) -> None:
        print(f"  {name}: worst loop stall {self.worst * 1000:.0f} ms", flush=True)
        self.worst = 0.0


class GcTimes:
    """The longest garbage collection of each generation (the pacer's and any other)."""

    def __init__(self) -> None:
        self.worst = [0.0, 0.0, 0.0]
        self._t0 = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            g = info["generation"]
            self.worst[g] = max(self.worst[g], time.perf_counter() - self._t0)

    def report(self) -> None:
        print("  longest collection per generation: " + ", ".join(f"{w * 1000:.0f} ms" for w in self.worst))
        self.worst = [0.0, 0.0, 0.0]


async def _gateway(servers: int, models: int, trusted: bool) -> tuple[asyncio.subprocess.Process, str]:
    args = [sys.executable, "-m", "tests.faults.hostile", str(servers), str(models)]
    proc = await asyncio.create_subprocess_exec(
        *args,
        *(["--trusted"] if trusted else []),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    url = (await proc.stdout.readline()).decode().strip()
    return proc, url


def _listed(monitor: Monitor, t0: float, seconds: float) -> bool:
    """Every member in the snapshot (or out of time)."""
    known = sum(v.known for v in monitor.snapshot.models.values())
    return known >= len(monitor.fleet.health) * 0.99 or time.perf_counter() - t0 >= seconds


async def _curl(url: str) -> str:
    """A request from another process (curl), so that reading a large answer is not measured."""
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "--compressed",
        "-w",
        "%{http_code}, %{size_download} bytes in %{time_total} s",
        url,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return out.decode()


def _time_stop_steps(monitor: Monitor) -> None:
    """Print how long each step of the monitor's stop takes."""
    steps: list[tuple[Any, str]] = [
        (monitor, "stop"),
        (monitor.roles, "close"),
        (monitor, "_final_publish"),
    ]
    if monitor.persistence is not None:
        steps.append((monitor.persistence, "drain"))
    for owner, name in steps:
        step = getattr(owner, name)

        async def timed(*args: Any, _step: Any = step, _name: str = name) -> Any:
            t0 = time.perf_counter()
            try:
                return await _step(*args)
            finally:
                print(f"    {_name} took {time.perf_counter() - t0:.1f} s", flush=True)

        setattr(owner, name, timed)


def _census(title: str, top: int = 25) -> None:
    """How many objects of each type the collector tracks (outside the frozen ones)."""
    counts: dict[str, int] = {}
    for o in gc.get_objects():
        name = type(o).__qualname__
        counts[name] = counts.get(name, 0) + 1
    print(f"  {title}: {sum(counts.values())}")
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {n:>9} {name}")


async def measure(servers: int, models: int, seconds: float, trusted: bool) -> None:
    gateway, url = await _gateway(servers, models, trusted)
    ticker = Ticker()
    collections = GcTimes()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            environ={
                "LIBERTAI_MONITOR_GATEWAY_URL": url,
                "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*,https://127.0.0.1:*",
                "LIBERTAI_MONITOR_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'monitor.db'}",
                "LIBERTAI_MONITOR_LISTEN": "127.0.0.1:0",
                "LIBERTAI_MONITOR_DISCOVERY_INTERVAL": "10",
                "LIBERTAI_MONITOR_LOG_FORMAT": "json",
                "LIBERTAI_API_KEY": "sk-measure-0123456789abcdef",
            }
        )
        configure_logging(settings.log_level, settings.log_format, settings.api_key)  # as `run` does
        if "--debug" in sys.argv:  # name the callbacks that stall (plain asyncio: uvloop has no debug)
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = 0.1
        tick = asyncio.create_task(ticker.run())
        print(f"{servers} servers over {models} models, {'trusted' if trusted else 'untrusted'}", flush=True)
        t0 = time.perf_counter()
        async with serving(settings) as running:
            ticker.phase("start (restore, before the port opens)")
            monitor = running.monitor
            while len(monitor.fleet.health) < servers * 0.99 and time.perf_counter() - t0 < seconds:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            print(f"  fleet in after {time.perf_counter() - t0:.1f} s: {len(monitor.fleet.health)} members")
            while not _listed(monitor, t0, seconds):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            print(f"  snapshot in after {time.perf_counter() - t0:.1f} s")
            ticker.phase("first discovery, membership, first snapshot")
            collections.report()
            reads = (
                ("/v1/hosts", "/v1/best", "/healthz")
                if "--no-metrics" in sys.argv
                else ("/metrics", "/v1/hosts", "/v1/best", "/healthz")
            )
            for path in reads:
                print(f"  GET {path}: {await _curl(running.url + path)}")
            ticker.phase("reading /metrics, /v1/hosts, /v1/best")
            while time.perf_counter() - t0 < seconds:  # noqa: ASYNC110
                await asyncio.sleep(1)
            ticker.phase(f"running until {seconds:.0f} s (discovery every 10 s, ranking, probes)")
            collections.report()
            if "--census" in sys.argv:
                _census("objects the collector walks (not frozen)")
            c0 = time.perf_counter()
            gc.collect()  # what the runtime's pacer does every 5 s (then it freezes the survivors)
            print(f"  a collection of what is not frozen takes {(time.perf_counter() - c0) * 1000:.0f} ms")
            frozen = gc.get_freeze_count()
            gc.unfreeze()
            if "--census" in sys.argv:
                _census("all objects the collector tracks")
            c0 = time.perf_counter()
            if "--census" in sys.argv:
                gc.set_debug(gc.DEBUG_SAVEALL)  # keep the garbage found, to say what it is
            found = gc.collect()  # a walk of everything: what the pacer never does at this size
            print(
                f"  a walk of everything ({frozen} frozen) takes {(time.perf_counter() - c0) * 1000:.0f} ms"
                f" and finds {found} objects of cyclic garbage"
            )
            if "--census" in sys.argv:
                gc.set_debug(0)
                kinds: dict[str, int] = {}
                for o in gc.garbage:
                    kinds[type(o).__qualname__] = kinds.get(type(o).__qualname__, 0) + 1
                print(
                    "    of which: "
                    + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:15])
                )
                gc.garbage.clear()
            gc.freeze()
            await asyncio.sleep(5)
            if "--census" in sys.argv:
                _census("objects that are new 5 s after the freeze")
            c0 = time.perf_counter()
            gc.collect()
            print(f"  5 s after freezing its survivors, one takes {(time.perf_counter() - c0) * 1000:.0f} ms")
            if monitor.store is not None:
                print(f"  store before the stop: {monitor.store.stats}")
            _time_stop_steps(monitor)
            ticker.worst = 0.0
            s0 = time.perf_counter()
        print(f"  stop took {time.perf_counter() - s0:.1f} s")
        ticker.phase("stop")
        ticker.running = False
        await tick
    gateway.terminate()
    await gateway.wait()
    print(f"worst loop stall over the whole run: {ticker.total_worst * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if "--why" in sys.argv:
        from tests.faults import _why  # noqa: F401
    runtime.run(
        prefer_uvloop="--debug" not in sys.argv and "--why" not in sys.argv,
        main=measure(
            int(args[0]) if args else 100_000,
            int(args[1]) if len(args) > 1 else 10,
            float(args[2]) if len(args) > 2 else 40.0,
            "--trusted" in sys.argv,
        ),
    )
