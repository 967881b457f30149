"""`libertai-monitor simulate`: run the simulated network in the foreground until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import tempfile
from collections.abc import Sequence

from monitor.runtime import pace_gc
from monitor.sim.network import SimHostInfo, SimNetwork
from monitor.sim.presets import PRESETS, load_scenario

MAX_TABLE_ROWS = 60


def run_simulate(scenario: str, port: int, seed: int, keys: list[str]) -> int:
    """Start the simulated network, print the gateway URL and the host table, run until SIGINT or
    SIGTERM; return the exit status (0, or 2 for a bad scenario or a port that cannot be bound).

    `scenario` is a preset name (`demo`, `chaos`, `herd`, `scale`), a preset with parameters written
    `NAME:key=value,key=value` (for example `scale:hosts=5000,ttft_ms=50`; values are read as
    booleans, integers, floats or else strings), or the path of a TOML scenario file.
    `keys`, when not empty, are the only API keys accepted; otherwise the scenario's, and if it
    names none, any non-empty key.
    """
    try:
        loaded = load_scenario(scenario)
    except ValueError as exc:
        print(f"libertai-monitor simulate: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(SimNetwork(loaded, seed=seed, port=port, keys=keys or None)))
    except (OSError, OverflowError) as exc:  # OverflowError: a port outside 0-65535
        print(f"libertai-monitor simulate: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve(net: SimNetwork) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    ca_path: str | None = None
    try:
        async with net:
            if any(h.tls for h in net.hosts):
                fd, ca_path = tempfile.mkstemp(prefix="libertai-sim-ca-", suffix=".pem")
                with os.fdopen(fd, "wb") as f:
                    f.write(net.ca_pem)
            # This process is the simulator alone: keep the long-lived host tables out of every
            # garbage collection, and collect on the clock, so collections stay short and do not
            # delay answers (a delay before a handler starts is not in the host's recorded TTFT).
            gc.freeze()
            pacer = asyncio.create_task(pace_gc())
            print(banner(net, ca_path), flush=True)
            try:
                await stop.wait()
            finally:
                pacer.cancel()
                await asyncio.gather(pacer, return_exceptions=True)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if ca_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(ca_path)


def banner(net: SimNetwork, ca_path: str | None) -> str:
    sc = net.scenario
    lines = [
        f"Simulated LibertAI network '{sc.name}' (seed {net.seed}): "
        f"{len(sc.hosts)} hosts, {len(sc.models)} models",
        f"gateway:  {net.gateway_url}   (GET /libertai/models; ground truth at /_sim/hosts)",
        f"keys:     {net.keys_summary}",
    ]
    if ca_path:
        lines.append(f"TLS CA:   {ca_path}   (for LIBERTAI_MONITOR_CA_BUNDLE)")
    lines.append("")
    lines.append(host_table(net.hosts))
    lines.append("")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def host_table(hosts: Sequence[SimHostInfo], max_rows: int = MAX_TABLE_ROWS) -> str:
    shown = list(hosts[:max_rows])
    rows = [("HOST", "URL (as listed)", "MODELS", "BEHAVIOUR")]
    rows += [(h.name, h.url, ",".join(h.models), h.summary) for h in shown]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out = ["  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(r)) for r in rows]
    if len(hosts) > len(shown):
        out.append(f"... and {len(hosts) - len(shown)} more hosts")
    return "\n".join(out)


__all__ = ["PRESETS", "banner", "host_table", "run_simulate"]
