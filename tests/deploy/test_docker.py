"""The Dockerfile, .dockerignore and docker-compose.yml, checked without a Docker engine.

No Docker engine runs here (and no `docker compose`), so the image is never built. What is checked:

- the Dockerfile, read with a small parser of its instructions (continuation lines, comments, JSON
  and shell forms): two stages on python:3.11-slim, an unprivileged USER, VOLUME /data with the
  database on it, LISTEN on every interface, EXPOSE, a HEALTHCHECK on /healthz with the standard
  library only, ENTRYPOINT the installed command, no pip cache;
- **the replay** (slow: a fresh virtual environment and `pip install` of the project, about 30-60 s
  with pip's cache warm, once per run): the builder stage's COPY lines copy the repository into a
  temporary directory as Docker would (.dockerignore applied), its RUN lines run as written with
  the image's paths mapped to temporary ones (`/opt/venv`, `/src`, `/data`) and with pip's cache
  allowed (`--no-cache-dir` dropped, the only change); then the runtime stage's ENTRYPOINT and
  CMD start the service from that environment alone, with the runtime ENV (the listen address
  moved from 0.0.0.0:8787 to a free loopback port, the database in the directory standing for
  /data), and the HEALTHCHECK command, verbatim, must exit 0 while it serves and non-zero after
  it stops. The compose file's `demo` service is replayed the same way;
- docker-compose.yml, read with PyYAML: the profiles, the name Prometheus scrapes, volumes, and
  that every file it mounts exists and is wired to the others (Prometheus target, Grafana
  datasource and dashboards).

What stays untested: the image build itself (base image, apt-free user creation, file ownership,
the copied venv), running as uid 10001, read-only root filesystem, Docker's health states, and
Prometheus and Grafana actually loading their files.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.service.support import FAST, KEY, eventually, network

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"


# -- a Dockerfile parser ------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case
    args: str  # continuation lines joined, comments inside them dropped
    line: int

    def json_form(self) -> list[str] | None:
        """The exec (JSON array) form's items, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None

    def flags(self) -> tuple[dict[str, str], str]:
        """Leading `--name=value` options (COPY --from=..., HEALTHCHECK --interval=...) and the rest."""
        opts: dict[str, str] = {}
        rest = self.args.strip()
        while rest.startswith("--"):
            word, _, rest = rest.partition(" ")
            name, _, value = word[2:].partition("=")
            opts[name] = value
            rest = rest.lstrip()
        return opts, rest


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.image}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """ENV values in order, each `$VAR`/`${VAR}` left as written (expanded at replay)."""
        env: dict[str, str] = {}
        for ins in self.all("ENV"):
            env.update(parse_env(ins.args))
        return env


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with `\\` continuations joined; comment lines (also inside a continuation) and
    parser directives dropped, as Docker does."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(p for p in pending if p)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, "the Dockerfile ends inside a continuation"
    return instructions


def parse_env(args: str) -> dict[str, str]:
    words = shlex.split(args, posix=True)
    if words and "=" not in words[0]:  # legacy `ENV NAME value with spaces`
        return {words[0]: args.strip().partition(" ")[2].strip()}
    pairs = [w.partition("=") for w in words]
    assert all(sep for _, sep, _ in pairs), f"ENV {args!r}: expected NAME=value pairs"
    return {k: v for k, _, v in pairs}


def stages(instructions: list[Instruction]) -> list[Stage]:
    result: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.args.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            result.append(Stage(words[0], name))
        else:
            assert result, f"line {ins.line}: {ins.keyword} before the first FROM"
            result[-1].instructions.append(ins)
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[Stage]:
    return stages(parse_dockerfile(DOCKERFILE.read_text()))


def test_parser_reads_continuations_comments_and_json() -> None:
    text = (
        'FROM a AS b\n# c\nRUN one \\\n    # inside\n    two\nCMD ["x", "y"]\nENV A=1 \\\n  B="two words"\n'
    )
    found = parse_dockerfile(text)
    assert [(i.keyword, i.args) for i in found] == [
        ("FROM", "a AS b"),
        ("RUN", "one two"),
        ("CMD", '["x", "y"]'),
        ("ENV", 'A=1 B="two words"'),
    ]
    assert found[2].json_form() == ["x", "y"]
    assert parse_env(found[3].args) == {"A": "1", "B": "two words"}


# -- the Dockerfile as written -----------------------------------------------------------------------


def test_two_stages_on_slim_python(dockerfile: list[Stage]) -> None:
    assert len(dockerfile) == 2
    build, runtime = dockerfile
    assert build.name, "the builder stage needs a name for COPY --from"
    for stage in dockerfile:
        assert stage.image == "python:3.11-slim"
    copies = [c.flags() for c in runtime.all("COPY")]
    assert copies, "the runtime stage copies the virtual environment from the builder"
    for opts, _ in copies:
        assert opts.get("from") == build.name, "the runtime stage copies only from the builder"
    for run in runtime.all("RUN"):
        assert "pip" not in run.args, "nothing is installed in the runtime stage"


def test_runs_as_an_unprivileged_user(dockerfile: list[Stage]) -> None:
    runtime = dockerfile[-1]
    user = runtime.last("USER").args.split(":")[0]
    assert user not in ("", "root", "0")
    if user.isdigit():  # numeric, so that Kubernetes' runAsNonRoot can verify it
        assert int(user) >= 1000
        created = " ".join(r.args for r in runtime.all("RUN"))
        assert f"--uid {user}" in created, "the user is created in the image"
    last_run = max((r.line for r in runtime.all("RUN")), default=0)
    assert runtime.last("USER").line > last_run, "no RUN as root after USER"


def test_settings_volume_port_and_entrypoint(dockerfile: list[Stage]) -> None:
    runtime = dockerfile[-1]
    env = runtime.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert not [k for k in {**dockerfile[0].env(), **env} if "KEY" in k or "SECRET" in k], "no key baked in"

    volume = runtime.last("VOLUME")
    volumes = volume.json_form() or volume.args.split()
    assert volumes == ["/data"]
    assert runtime.last("WORKDIR").args == "/data"

    host, _, port = env["LIBERTAI_MONITOR_LISTEN"].rpartition(":")
    assert host == "0.0.0.0", "reachable from outside the container"
    assert runtime.last("EXPOSE").args.split() == [port] == ["8787"]

    url = env["LIBERTAI_MONITOR_DATABASE_URL"]
    assert url.startswith("sqlite+aiosqlite:////data/"), "the SQLite file lives on the volume"

    assert env["PATH"].startswith("/opt/venv/bin:")
    assert runtime.last("ENTRYPOINT").json_form() == ["libertai-monitor"]
    assert runtime.last("CMD").json_form() == ["run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "libertai-monitor" in scripts


def test_healthcheck_asks_healthz_with_the_standard_library(dockerfile: list[Stage]) -> None:
    opts, rest = dockerfile[-1].last("HEALTHCHECK").flags()
    assert set(opts) <= {"interval", "timeout", "start-period", "start-interval", "retries"}
    assert rest.startswith("CMD ")
    argv = json.loads(rest[4:])
    assert argv[:2] == ["python", "-c"] and len(argv) == 3
    assert "/healthz" in argv[2] and "urllib.request" in argv[2]
    assert "LIBERTAI_MONITOR_LISTEN" in argv[2] and "'8787'" in argv[2]
    assert "curl" not in rest and "wget" not in rest


def test_pip_keeps_no_cache(dockerfile: list[Stage]) -> None:
    installs = [r for s in dockerfile for r in s.all("RUN") if "pip install" in r.args]
    assert installs
    for run in installs:
        assert "--no-cache-dir" in run.args


# -- .dockerignore ------------------------------------------------------------------------------------


def ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception, regex) per line of .dockerignore, in order: Go's filepath.Match with `**`."""
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line.lstrip("!").strip().strip("/")
        regex, i = "", 0
        while i < len(line):
            if line.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif line.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif line[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif line[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif line[i] == "[":
                end = line.index("]", i)
                regex, i = regex + line[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(line[i]), i + 1
        patterns.append((negate, re.compile(regex + r"\Z")))
    return patterns


def ignored(rel: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves out `rel` (a path relative to the context, with `/`): the
    last pattern that matches it or one of its parent directories decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negate, regex in patterns:
        if any(regex.match(p) for p in prefixes):
            result = not negate
    return result


def test_dockerignore_keeps_out_local_state_and_keeps_in_the_build_inputs(dockerfile: list[Stage]) -> None:
    patterns = ignore_patterns()
    for path in [
        ".git/HEAD",
        ".venv/bin/python",
        ".ci-tools/root/usr/bin/promtool",
        ".env",
        "libertai-monitor.db",
        "libertai-monitor-demo.db-wal",
        "monitor/__pycache__/api.cpython-311.pyc",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        "build/lib/monitor/web/api.py",
        "libertai_monitor.egg-info/PKG-INFO",
        "bench/results/run.json",
    ]:
        assert ignored(path, patterns), path
    sources = [
        src for c in dockerfile[0].all("COPY") for src in shlex.split(c.flags()[1])[:-1] if not c.flags()[0]
    ]
    assert set(sources) >= {"pyproject.toml", "README.md", "monitor", "migrations"}
    for src in sources:
        assert not ignored(src, patterns), f"{src} is copied by the Dockerfile but left out of the context"
    for path in ["monitor/web/api.py", "migrations/env.py", "monitor/sim/presets/demo.toml"]:
        assert not ignored(path, patterns), path


# -- the replay ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replay:
    """The Dockerfile's image paths mapped to a temporary directory, and the commands it runs."""

    def __init__(self, stages_: list[Stage], base: Path) -> None:
        self.build, self.runtime = stages_
        self.base = base
        roots = {"/data"} | {
            "/" + shlex.split(c.flags()[1])[-1].strip("/").split("/")[0] for c in self.build.all("COPY")
        }
        roots |= {shlex.split(c.flags()[1])[-1].rstrip("/") for c in self.runtime.all("COPY")}
        self.roots = {r: base / r.strip("/").replace("/", "_") for r in sorted(roots)}
        # `python` in the builder is the base image's interpreter: here the interpreter this test's
        # virtual environment was made from (not the environment itself, so nothing leaks in).
        self.shim = base / "shim"
        self.shim.mkdir()
        interpreter = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
        for name in ("python", "python3"):
            (self.shim / name).symlink_to(interpreter)

    def map(self, text: str) -> str:
        for root, local in self.roots.items():
            text = re.sub(r"(?<![\w.])" + re.escape(root) + r"(?=[/:\s'\"]|\Z)", str(local), text)
        return text

    def expand(self, value: str, env: Mapping[str, str]) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)

    def stage_env(self, stage: Stage, start: Mapping[str, str]) -> dict[str, str]:
        env = dict(start)
        for ins in stage.all("ENV"):
            for name, value in parse_env(ins.args).items():
                env[name] = self.map(self.expand(value, env))
        return env

    def copy(self, ins: Instruction) -> None:
        words = shlex.split(ins.flags()[1])
        sources, dest = words[:-1], self.map(words[-1])
        patterns = ignore_patterns()
        for src in sources:
            origin = ROOT / src
            assert origin.exists() and not ignored(src, patterns), f"COPY {src}: not in the build context"
            if origin.is_dir():
                target = Path(dest)
                for path in sorted(origin.rglob("*")):
                    rel = path.relative_to(ROOT).as_posix()
                    if path.is_file() and not ignored(rel, patterns):
                        out = target / path.relative_to(origin)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, out)
            else:
                target = (
                    Path(dest) / origin.name if words[-1].endswith("/") or len(sources) > 1 else Path(dest)
                )
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)

    def build_stage(self) -> None:
        """COPY and RUN of the builder stage, in order; RUN through /bin/sh -c as Docker does."""
        passed = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k.lower().endswith("_proxy")}
        base_env = {"PATH": f"{self.shim}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/root")}
        for ins in self.build.instructions:
            if ins.keyword == "COPY":
                self.copy(ins)
            elif ins.keyword == "RUN":
                env = {**passed, **self.stage_env(self.build, base_env)}
                command = self.map(ins.args).replace("--no-cache-dir", "")  # pip's cache may serve here
                done = subprocess.run(
                    ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=600
                )
                assert done.returncode == 0, f"RUN {ins.args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            else:
                assert ins.keyword in ("ENV", "ARG", "WORKDIR", "LABEL"), f"cannot replay {ins.keyword}"

    def runtime_env(self, data: Path, port: int, extra: Mapping[str, str] = {}) -> dict[str, str]:
        """The container's environment: the runtime stage's ENV (base image: PATH, LANG), paths mapped,
        /data standing at `data`, the listen address moved to a loopback port."""
        base_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env = self.stage_env(self.runtime, {"PATH": base_path, "LANG": "C.UTF-8", "HOME": "/data"})
        env.update({k: self.map(self.expand(v, env)) for k, v in extra.items()})
        env = {k: v.replace(str(self.roots["/data"]), str(data)) for k, v in env.items()}
        assert env["LIBERTAI_MONITOR_LISTEN"] == "0.0.0.0:8787"
        env["LIBERTAI_MONITOR_LISTEN"] = f"127.0.0.1:{port}"
        env["TMPDIR"] = str(data.parent / f"tmp-{data.name}")  # the container's own /tmp
        Path(env["TMPDIR"]).mkdir(exist_ok=True)
        return env

    def argv(self, command: list[str] | None = None) -> list[str]:
        entry = self.runtime.last("ENTRYPOINT").json_form()
        cmd = command if command is not None else self.runtime.last("CMD").json_form()
        assert entry is not None and cmd is not None
        return entry + cmd

    def healthcheck(self) -> list[str]:
        argv = json.loads(self.runtime.last("HEALTHCHECK").flags()[1].removeprefix("CMD").strip())
        return list(argv)


@pytest.fixture(scope="module")
def replay(dockerfile: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> Replay:
    """The builder stage replayed once for the module: a clean venv with the project installed."""
    r = Replay(dockerfile, tmp_path_factory.mktemp("image"))
    r.build_stage()
    return r


async def start(replay: Replay, env: dict[str, str], cwd: Path, argv: list[str], log: Path) -> Any:
    exe = shutil.which(argv[0], path=env["PATH"])
    assert exe is not None and exe.startswith(str(replay.roots["/opt/venv"])), exe
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            exe, *argv[1:], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )


async def healthcheck(replay: Replay, env: dict[str, str]) -> int:
    argv = replay.healthcheck()
    exe = shutil.which(argv[0], path=env["PATH"])
    assert exe is not None
    proc = await asyncio.create_subprocess_exec(
        exe, *argv[1:], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return await asyncio.wait_for(proc.wait(), timeout=10)


async def stop(proc: Any) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return int(await asyncio.wait_for(proc.wait(), timeout=20))
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise


async def answer(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    try:
        async with http.get(url) as resp:
            body = await resp.text()
            return resp.status, json.loads(body) if "json" in resp.content_type else body
    except aiohttp.ClientError:
        return 0, None


def data_dir(replay: Replay, name: str) -> Path:
    path = replay.base / name
    path.mkdir()
    return path


@pytest.mark.slow
async def test_the_image_installs_runs_and_passes_its_healthcheck(replay: Replay) -> None:
    """The image's CMD (`run`) against the simulated network, configured by environment only."""
    venv = replay.roots["/opt/venv"]
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import monitor; print(monitor.__file__)"],
        capture_output=True,
        text=True,
        cwd=replay.base,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert where.stdout.startswith(str(venv)), "the package is installed in the venv, not found elsewhere"

    data = data_dir(replay, "data-run")
    port = free_port()
    async with network("demo", keys=[KEY]) as net:
        ca = replay.base / "sim-ca.pem"
        ca.write_bytes(net.ca_pem)
        # What an operator passes with `docker run -e ...`: the gateway, its hosts, the key, and
        # short intervals so that the first answers come within seconds.
        operator = {f"LIBERTAI_MONITOR_{k}": v for k, v in FAST.items() if k != "LISTEN"}
        operator |= {
            "LIBERTAI_MONITOR_GATEWAY_URL": net.gateway_url,
            "LIBERTAI_MONITOR_CA_BUNDLE": str(ca),
            "LIBERTAI_API_KEY": KEY,
        }
        env = {**replay.runtime_env(data, port), **operator}
        proc = await start(replay, env, data, replay.argv(), replay.base / "run.log")
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                await eventually(lambda: _status_is(http, base + "/healthz", 200), timeout=30)
                assert await healthcheck(replay, env) == 0
                await eventually(lambda: _status_is(http, base + "/readyz", 200), timeout=30)
                await eventually(lambda: _has_best_host(http, base), timeout=30)
                status, metrics = await answer(http, base + "/metrics")
                assert status == 200 and "libertai_monitor_" in metrics
        finally:
            code = await stop(proc)
        log = (replay.base / "run.log").read_text(errors="replace")
        assert code == 0, log[-3000:]
        assert KEY not in log
        assert await healthcheck(replay, env) != 0, "the healthcheck fails once the service is gone"
    assert (data / "libertai-monitor.db").stat().st_size > 0, "the history is on the volume"


@pytest.mark.slow
async def test_the_compose_demo_service_runs_from_the_image(replay: Replay) -> None:
    """docker-compose.yml's `demo` service: the image's ENTRYPOINT, the service's command and
    environment, no key and nothing else."""
    service = compose()["services"]["demo"]
    data = data_dir(replay, "data-demo")
    port = free_port()
    env = replay.runtime_env(data, port, service.get("environment") or {})
    assert "LIBERTAI_API_KEY" not in env
    proc = await start(replay, env, data, replay.argv(service["command"]), replay.base / "demo.log")
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            await eventually(lambda: _status_is(http, base + "/healthz", 200), timeout=30)
            assert await healthcheck(replay, env) == 0
            await eventually(lambda: _has_best_host(http, base), timeout=40)
    finally:
        code = await stop(proc)
    assert code == 0, (replay.base / "demo.log").read_text(errors="replace")[-3000:]
    db = env["LIBERTAI_MONITOR_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    assert Path(db).parent == data and Path(db).stat().st_size > 0
    assert Path(db).name != "libertai-monitor.db", "the demo keeps its own database"


async def _status_is(http: aiohttp.ClientSession, url: str, status: int) -> bool:
    return (await answer(http, url))[0] == status


async def _has_best_host(http: aiohttp.ClientSession, base: str) -> bool:
    status, body = await answer(http, base + "/v1/best")
    return status == 200 and any(m.get("host") for m in body["models"].values())


def compose() -> dict[str, Any]:
    parsed = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(parsed, dict)
    return parsed


# -- docker-compose.yml --------------------------------------------------------------------------------


def selected(services: dict[str, Any], profiles: set[str]) -> dict[str, Any]:
    """The services `docker compose --profile P up` starts: those without profiles or with one of P."""
    return {n: s for n, s in services.items() if not s.get("profiles") or set(s["profiles"]) & profiles}


def answers_as(name: str, service: dict[str, Any]) -> set[str]:
    networks = service.get("networks") or {}
    aliases = {a for n in networks.values() if isinstance(n, dict) for a in n.get("aliases", [])}
    return {name} | aliases


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v) for k, v in env.items()}


def mounts(service: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        yield source, target, (mode[0] if mode else "rw")


def test_compose_profiles_each_run_one_monitor_that_prometheus_scrapes() -> None:
    services = compose()["services"]
    assert set(services) >= {"libertai-monitor", "demo", "prometheus", "grafana"}
    assert selected(services, set()) == {}, "plain `up` starts nothing: a profile must be chosen"
    for profile in ("live", "demo"):
        running = selected(services, {profile})
        assert {"prometheus", "grafana"} <= set(running), profile
        monitors = [n for n, s in running.items() if "libertai-monitor" in answers_as(n, s)]
        assert len(monitors) == 1, f"{profile}: {monitors} answer as libertai-monitor"
        monitor = running[monitors[0]]
        assert monitor["build"] == "."
        assert any(p.split(":")[-1] == "8787" for p in monitor["ports"])
        assert "LIBERTAI_MONITOR_LISTEN" not in env_of(monitor), "the image listens on 0.0.0.0:8787"
        for dep in [d for s in running.values() for d in s.get("depends_on", [])]:
            assert dep in running, f"{profile}: depends on {dep}, which does not start"
    live, demo = services["libertai-monitor"], services["demo"]
    assert live["profiles"] == ["live"] and demo["profiles"] == ["demo"]
    assert env_of(live)["LIBERTAI_API_KEY"].startswith("${LIBERTAI_API_KEY")
    assert demo["command"] == ["demo"]
    assert "LIBERTAI_API_KEY" not in env_of(demo), "the demo needs no key and gets none"
    assert ("monitor-data", "/data", "rw") in set(mounts(live))
    demo_volume = next(s for s, t, _ in mounts(demo) if t == "/data")
    assert demo_volume != "monitor-data", "demo history stays out of the real one"
    assert env_of(demo)["LIBERTAI_MONITOR_DATABASE_URL"].startswith("sqlite+aiosqlite:////data/")


def test_compose_ha_profile_runs_two_monitors_on_one_postgresql(dockerfile: list[Stage]) -> None:
    services = compose()["services"]
    running = selected(services, {"ha"})
    monitors = {n: s for n, s in running.items() if s.get("build") == "."}
    assert set(running) == {"postgres", *monitors} and len(monitors) == 2, set(running)
    database = env_of(running["postgres"])
    assert database["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD"), "no password written here"
    urls = {env_of(m)["LIBERTAI_MONITOR_DATABASE_URL"] for m in monitors.values()}
    vantages = {env_of(m)["LIBERTAI_MONITOR_VANTAGE"] for m in monitors.values()}
    assert len(urls) == 1 and len(vantages) == 1, "one database and one vantage: one leader between them"
    url = urls.pop()
    assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/" + database["POSTGRES_DB"] in url
    assert "${POSTGRES_PASSWORD" in url
    host_ports = [p.rsplit(":", 1)[0] for m in monitors.values() for p in m["ports"]]
    assert len(set(host_ports)) == 2, "each replica on its own host port, for the load balancer"
    for name, monitor in monitors.items():
        assert set(monitor["depends_on"]) == {"postgres"}, name
        assert env_of(monitor)["LIBERTAI_API_KEY"].startswith("${LIBERTAI_API_KEY"), name
        assert monitor["read_only"] is True and monitor["cap_drop"] == ["ALL"], name
    assert any(t == "/var/lib/postgresql/data" for _, t, _ in mounts(running["postgres"]))
    installs = [r.args for stage in dockerfile for r in stage.all("RUN")]
    assert any("pip install" in r and "[postgres]" in r for r in installs), "the image has asyncpg"


def test_compose_ports_volumes_and_interpolation() -> None:
    doc = compose()
    assert set(doc) <= {"services", "volumes", "networks", "name"}
    declared = set(doc.get("volumes") or {})
    for name, service in doc["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: {port}"
        for source, _, _ in mounts(service):
            if not source.startswith(("./", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
    text = COMPOSE.read_text()
    for match in re.finditer(r"\$(?!\$)(\{[^}]*\}|\w+)?", text):
        before = text[match.start() - 1] if match.start() else ""
        if before == "$":
            continue
        assert match.group(1) and re.fullmatch(r"\{\w+(:?[-?][^}]*)?\}|\w+", match.group(1)), match.group(0)


def test_compose_mounts_exist_and_are_wired_together() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for source, _, mode in mounts(service):
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
                assert mode == "ro", f"{name}: {source} is configuration, mounted read-only"

    prometheus = services["prometheus"]
    config_dir = next(ROOT / s for s, t, _ in mounts(prometheus) if t == "/etc/prometheus")
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config = config_dir / Path(config_flag.partition("=")[2]).relative_to("/etc/prometheus")
    text = config.read_text()
    assert re.search(r"""["']?libertai-monitor:8787["']?""", text), "Prometheus scrapes the monitor's name"
    for rules in re.findall(r"^\s*-\s*[\"']?([\w./-]+\.ya?ml)[\"']?\s*(?:#.*)?$", text, re.M):
        assert (config_dir / rules).exists(), f"{config.name} names {rules}, which is not beside it"

    grafana = services["grafana"]
    env = env_of(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    targets = {t: ROOT / s for s, t, _ in mounts(grafana)}
    provisioning = targets["/etc/grafana/provisioning"]
    datasources = "".join(p.read_text() for p in sorted((provisioning / "datasources").glob("*.y*ml")))
    assert "http://prometheus:9090" in datasources and "prometheus" in services
    assert any(p.endswith(":9090") for p in prometheus["ports"])
    providers = "".join(p.read_text() for p in sorted((provisioning / "dashboards").glob("*.y*ml")))
    assert "/var/lib/grafana/dashboards" in providers and "/var/lib/grafana/dashboards" in targets
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    mount = next(t for t in targets if home.startswith(t + "/"))
    assert (targets[mount] / home[len(mount) + 1 :]).is_file(), f"no dashboard at {home}"
