"""Shared plumbing of the benchmarks: child processes (simulator, monitor, tools), /proc readings,
machine description, percentiles and the results file.

Every benchmark runs the simulated network and the monitor as separate processes (as in production,
where they are separate machines), so that the CPU and memory of each can be read from /proc.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or BENCH / "results")
TOOLS = BENCH / ".tools"
API_KEY = "bench-key"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------ numbers


def pct(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def summary(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "p90": None, "p99": None, "max": None, "mean": None}

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(values),
        "median": r(statistics.median(values)),
        "p90": r(pct(values, 90)),
        "p99": r(pct(values, 99)),
        "max": r(max(values)),
        "mean": r(statistics.fmean(values)),
    }


# ------------------------------------------------------------------------------------------ machine


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    mem = None
    with suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions(extra: Iterable[str] = ()) -> dict[str, str]:
    out = {}
    for name in ("libertai-monitor", "aiohttp", "sqlalchemy", "aiosqlite", "prometheus-client", *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def results_dir(quick: bool) -> Path:
    """bench/results (or $BENCH_RESULTS_DIR); quick runs go to its quick/ folder, so that a smoke
    test never overwrites the figures of a full run."""
    return RESULTS / "quick" if quick else RESULTS


def write_result(name: str, result: dict[str, Any]) -> int:
    """Write bench/results/NAME.json (quick runs under quick/), with the load average at the end,
    and say where; returns 0, the benchmark's exit status."""
    result["loadavg_after"] = loadavg()
    out_dir = results_dir(bool(result.get("quick")))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    log(f"{name}: written to {path}")
    return 0


def base_result(name: str, quick: bool, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": quick,
        "machine": machine(),
        "versions": versions(),
        "parameters": parameters,
        "loadavg_before": loadavg(),
    }


# ------------------------------------------------------------------------------------------ /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (its own threads; not its children)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the peak resident set size of a living process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


# ------------------------------------------------------------------------------------------ processes


def raise_nofile() -> None:
    """preexec_fn: the open-files limit up to the hard limit (thousands of sockets)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 60.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return bytes(r.read())


def http_json(url: str, timeout: float = 60.0) -> Any:
    return json.loads(http_get(url, timeout))


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        with suppress(OSError):
            http_get(url, timeout=2)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGINT, timeout: float = 30.0) -> None:
    """Stop a child we started (by its pid), politely first."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# Hosts per simulator process: one process holds a listening socket per host and the accepted
# connections, under a hard limit of 20,000 open files here; bigger networks are split.
HOSTS_PER_SIMULATOR = 5000


def _start_sim(scenario: str, seed: int, log_path: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "monitor", "simulate", "--scenario", scenario]
    cmd += ["--port", "0", "--seed", str(seed)]
    with log_path.open("wb") as err:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=raise_nofile
        )
    return proc, _read_gateway(proc)


def _read_gateway(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    gateway = ""
    for line in proc.stdout:
        m = re.match(r"gateway:\s+(\S+)", line)
        if m:
            gateway = m.group(1)
        if line.startswith("Press Ctrl-C") or (gateway and "bench.gateway" in str(proc.args)):
            break
    proc.stdout.close()  # nothing more is printed; the pipe must never fill
    if not gateway:
        stop(proc)
        raise RuntimeError(f"did not start: {proc.args!r}")
    return gateway


class Simulator:
    """`libertai-monitor simulate` in child processes: one for up to HOSTS_PER_SIMULATOR hosts; a
    `scale:hosts=N,...` network bigger than that is split over several simulators behind
    bench/gateway.py. Their stderr goes to files (`logs`)."""

    def __init__(self, scenario: str, seed: int = 1) -> None:
        self.scenario = scenario
        self.seed = seed
        self.procs: list[subprocess.Popen[str]] = []
        self.gateway = ""
        self.dir = Path(tempfile.mkdtemp(prefix="libertai-bench-sim-"))

    def _shards(self) -> list[str]:
        m = re.match(r"scale:(.*)$", self.scenario)
        if not m:
            return [self.scenario]
        params = dict(p.split("=", 1) for p in m.group(1).split(",") if "=" in p)
        hosts = int(params.get("hosts", 100))
        n = -(-hosts // HOSTS_PER_SIMULATOR)
        if n <= 1:
            return [self.scenario]
        shards = []
        for i in range(n):
            part = hosts // n + (1 if i < hosts % n else 0)
            shards.append(
                "scale:" + ",".join(f"{k}={part if k == 'hosts' else v}" for k, v in params.items())
            )
        return shards

    def __enter__(self) -> Simulator:
        try:
            gateways = []
            for i, scenario in enumerate(self._shards()):
                proc, gw = _start_sim(scenario, self.seed + i, self.dir / f"sim-{i}.log")
                self.procs.append(proc)
                gateways.append(gw)
            if len(gateways) == 1:
                self.gateway = gateways[0]
            else:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bench.gateway", *gateways],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                self.procs.append(proc)
                self.gateway = _read_gateway(proc)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            stop(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def error_lines(self) -> int:
        """Lines the simulators wrote to stderr (errors: nothing is logged per request)."""
        n = 0
        for path in self.dir.glob("sim-*.log"):
            with path.open("rb") as f:
                n += sum(1 for _ in f)
        return n

    def truth(self) -> dict[str, Any]:
        data: dict[str, Any] = http_json(f"{self.gateway}/_sim/hosts", timeout=120)
        return data


def request_counts(truth: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """normalized host url -> path -> requests received directly."""
    return {h["normalized_url"]: {p: c["total"] for p, c in h["requests"].items()} for h in truth["hosts"]}


class MonitorProc:
    """`libertai-monitor run` in a child process, against a simulator, with a fresh SQLite file."""

    def __init__(
        self,
        gateway: str,
        settings: Mapping[str, Any],
        workdir: Path | None = None,
        profile: Path | None = None,
    ) -> None:
        """`profile`: run under pyinstrument (if installed) and write its text report there."""
        self.profile = profile or (
            Path(os.environ["BENCH_PROFILE"]) if os.environ.get("BENCH_PROFILE") else None
        )
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="libertai-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = self.dir / "monitor.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIBERTAI_")}
        env.update(
            {
                "LIBERTAI_API_KEY": API_KEY,
                "LIBERTAI_MONITOR_GATEWAY_URL": gateway,
                "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*",
                "LIBERTAI_MONITOR_DATABASE_URL": f"sqlite+aiosqlite:///{self.db}",
                "LIBERTAI_MONITOR_LISTEN": f"127.0.0.1:{self.port}",
                "LIBERTAI_MONITOR_LOG_LEVEL": "warning",
                "LIBERTAI_MONITOR_LOG_FORMAT": "json",
            }
        )
        env.update({f"LIBERTAI_MONITOR_{k.upper()}": str(v) for k, v in settings.items()})
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "monitor.log"

    def __enter__(self) -> MonitorProc:
        with self.log.open("wb") as log:
            cmd = [sys.executable, "-m", "monitor", "run"]
            if os.environ.get("BENCH_PATCHES"):
                # Proposed fixes, applied by monkeypatching in the monitor's process (bench/patched.py).
                cmd = [sys.executable, "-m", "bench.patched", "run"]
                self.env["PYTHONPATH"] = str(ROOT)
            if self.profile is not None:
                cmd[1:1] = ["-m", "pyinstrument", "-i", "0.002", "-r", "text", "-o", str(self.profile)]
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_nofile,
            )
        wait_http(f"{self.url}/healthz", timeout=60, proc=self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        stop(self.proc, signal.SIGTERM, timeout=60)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def metrics(self) -> dict[str, float]:
        return parse_metrics(http_get(f"{self.url}/metrics", timeout=120).decode())

    def log_tail(self, n: int = 20) -> list[str]:
        with suppress(OSError):
            return self.log.read_text(errors="replace").splitlines()[-n:]
        return []


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """The service-wide series of the exposition, and probes_total summed by kind and outcome
    (`probes_total{kind,outcome}`); per-host series are left out."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(value)
        except ValueError:
            continue
        if name == "libertai_monitor_probes_total":
            kind = re.search(r'kind="([^"]*)"', labels)
            outcome = re.search(r'outcome="([^"]*)"', labels)
            key = f"probes_total{{{kind.group(1) if kind else ''},{outcome.group(1) if outcome else ''}}}"
            out[key] = out.get(key, 0.0) + v
            out["probes_total"] = out.get("probes_total", 0.0) + v
        elif 'host="' not in labels:
            out[name + labels] = v
    return out


# ------------------------------------------------------------------------------------------ tools


def debian_tool(package: str, binary: str, extra_packages: Sequence[str] = ()) -> Path | None:
    """A Debian package's binary unpacked under bench/.tools (apt-get download + dpkg -x; nothing
    is installed system-wide); None when it cannot be fetched."""
    root = TOOLS / "root"
    path = root / "usr" / "bin" / binary
    if path.exists():
        return path
    debs = TOOLS / "deb"
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in (package, *extra_packages):
        if not list(debs.glob(f"{pkg}_*.deb")):
            r = subprocess.run(
                ["apt-get", "download", pkg], cwd=debs, capture_output=True, text=True, check=False
            )
            if r.returncode != 0:
                # The package lists may be missing on a fresh machine.
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
                subprocess.run(["apt-get", "download", pkg], cwd=debs, capture_output=True, check=False)
        for deb in debs.glob(f"{pkg}_*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], capture_output=True, check=False)
    return path if path.exists() else None


def tool_env() -> dict[str, str]:
    """Environment for unpacked tools: their shared libraries (wrk's LuaJIT) on the library path."""
    libdirs = [str(p) for p in (TOOLS / "root" / "usr" / "lib").glob("*-linux-gnu") if p.is_dir()]
    env = dict(os.environ)
    if libdirs:
        env["LD_LIBRARY_PATH"] = ":".join([*libdirs, env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    return env


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
