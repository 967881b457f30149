"""The `libertai-monitor` command: run, demo, simulate, probe-once, best, db upgrade, maintenance,
certs."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from monitor import __version__, runtime
from monitor.commands import best as bestcmd
from monitor.commands import certs as certscmd
from monitor.commands import maintenance as maintenancecmd
from monitor.commands.parsers import command
from monitor.config import CONFIG_ENV, ENV_PREFIX, FIELDS, KEY_ENV, KEY_FILE_ENV, ConfigError, Settings
from monitor.config_load import check_key, check_notify_extra, load_settings, unknown_env_warnings
from monitor.config_values import flag_type, parse_port
from monitor.core.results import HostState
from monitor.logging import configure_logging, get_logger
from monitor.settings_doc import settings_help
from monitor.store.errors import StoreError

if TYPE_CHECKING:
    from monitor.store import Store

log = get_logger("monitor.cli")

EXIT_CONFIG = 2
DEMO_KEY = "demo-key-not-a-secret"
# Short intervals so that the demo's first answers come within seconds; any of them can still be
# overridden by the environment or a flag.
DEMO_DEFAULTS = {
    "discovery_interval": "10",
    "probe_interval": "3",
    "down_probe_interval": "2",
    "completion_interval": "10",
    "probe_timeout": "4",
    "confirm_delay": "0.5",
    "ejection_time": "10",
    "ejection_max_time": "60",
    "retire_after": "30",
}
# The demo's database with `--keep`; without it, a new temporary file each run (the previous run's
# hosts would otherwise be shown down until probed again).
DEMO_KEPT_DATABASE = "sqlite+aiosqlite:///libertai-monitor-demo.db"
DEMO_ALLOWED_HOSTS = "http://127.0.0.1:*,https://127.0.0.1:*"
DEMO_MODEL = "hermes-3-8b-tee"


class _Parser(argparse.ArgumentParser):
    """Every usage error is one line naming the command it is about, and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _flags(command: str) -> argparse.ArgumentParser:
    """`--config` and the settings that `command` takes as flags, from their declarations."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", metavar="FILE", help=f"TOML file of settings (or {CONFIG_ENV})")
    for f in FIELDS:
        if command in f.flag_for:
            parent.add_argument(f.flag, dest=f.name, metavar=f.name.upper(), help=f"{f.meaning} (or {f.env})")
    return parent


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="libertai-monitor",
        description="Discovers LibertAI's inference hosts, probes them and serves the best host per model.",
    )
    parser.add_argument("--version", action="version", version=f"libertai-monitor {__version__}")
    parser.set_defaults(parser=parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter
    command(
        sub, "run", "run the service", parents=[_flags("run")], epilog=settings_help(), formatter_class=raw
    )
    demo = command(sub, "demo", "the simulated network and the service against it", parents=[_flags("demo")])
    demo.add_argument("--seed", type=int, default=1, help="seed of the simulated network")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the history between runs in ./libertai-monitor-demo.db (default: a new temporary "
        "database each run; --database-url chooses another)",
    )
    sim = command(sub, "simulate", "the simulated LibertAI network alone, until interrupted")
    sim.add_argument(
        "--scenario", default="demo", help="a preset (demo, chaos, scale:hosts=N) or a TOML file"
    )
    sim.add_argument(
        "--port", type=flag_type(parse_port), default=0, help="gateway port (default: any free port)"
    )
    sim.add_argument("--seed", type=int, default=1, help="same seed, same behaviour")
    sim.add_argument(
        "--key", action="append", default=[], type=flag_type(_key), help="accept only this key (repeatable)"
    )
    command(
        sub, "probe-once", "one discovery and one probe round, as a table", parents=[_flags("probe-once")]
    )
    best = bestcmd.add_parser(sub)
    best.set_defaults(parser=best)
    db = command(sub, "db", "database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    command(db_sub, "upgrade", "apply pending migrations", parents=[_flags("db")])
    windows = command(sub, "maintenance", "maintenance windows: hosts or models out of routing for a while")
    maintenancecmd.add_parsers(windows, _flags("db"))
    certs = command(sub, "certs", "certificates of HTTPS hosts: list them, accept a changed one")
    certscmd.add_parsers(certs, _flags("db"))
    return parser


def _key(raw: object) -> str:
    if not str(raw).strip():
        raise ValueError("expected a non-empty key")
    return str(raw)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args, unknown = _parser().parse_known_args(argv)
    if unknown:
        # Reported by the command they were given to, not by the top-level parser.
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    return {f.name: getattr(args, f.name) for f in FIELDS if getattr(args, f.name, None) is not None}


def _settings(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    settings = load_settings(config_file=args.config, environ=environ, overrides=_overrides(args))
    check_key(settings, environ)
    return settings


def _start_logging(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    configure_logging(settings.log_level, settings.log_format, settings.api_key)
    for line in unknown_env_warnings(environ):
        log.warning(line)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parse(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    try:
        if args.command == "simulate":
            from monitor.sim.cli import run_simulate

            configure_logging("warning", "auto")
            return run_simulate(args.scenario, args.port, args.seed, args.key)
        if args.command == "demo":
            return _demo(args)
        if args.command == "best":
            return bestcmd.run(args)
        settings = _settings(args)
        _start_logging(settings)
        if args.command == "run":
            check_notify_extra(settings)
            return runtime.run(_serve(settings))
        if args.command == "probe-once":
            return runtime.run(_probe_once(settings), pace=None)
        if args.command == "db":
            return runtime.run(_db_upgrade(settings), pace=None)
        if args.command == "maintenance":
            return runtime.run(
                _with_store(settings, lambda store: maintenancecmd.run(args, store, time.time())), pace=None
            )
        if args.command == "certs":
            return runtime.run(_with_store(settings, lambda store: certscmd.run(args, store)), pace=None)
    except ConfigError as exc:
        print(f"libertai-monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return EXIT_CONFIG


async def _serve(settings: Settings, *, banner: str | None = None) -> int:
    from monitor.server import StartupError, serving

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: a closed terminal or a supervisor's hang-up gets the same clean stop.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serving(settings) as running:
            if settings.api_key is None:
                log.warning("no API key: only the free probes run", hint=f"set {KEY_ENV}")
            runtime.settle()
            log.info("listening", url=running.url, gateway=settings.gateway_url, loop=runtime.loop_name(loop))
            if banner:
                print(banner.replace("{api}", running.url), flush=True)
            await stop.wait()
            log.info("stopping")
    except StartupError as exc:
        print(f"libertai-monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


async def _probe_once(settings: Settings) -> int:
    from monitor.service import Monitor

    monitor = Monitor(settings, store=None)
    await monitor.prepare()
    try:
        await monitor.probe_once()
    finally:
        await monitor.stop()
    snap = monitor.snapshot
    rows = [("MODEL", "HOST", "STATE", "REASON", "TTFT p50 ms", "BEST")]
    for model, view in snap.models.items():
        for h in view.hosts:
            ttft = "-" if h.ttft_ms_p50 is None else f"{h.ttft_ms_p50:.0f}"
            rows.append(
                (model, h.url, h.state.value, h.reason.value, ttft, "*" if h.url == view.best else "")
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if settings.api_key is None:
        print(
            f"no API key: only the free health probes ran (set {KEY_ENV} or {KEY_FILE_ENV})", file=sys.stderr
        )
    untrusted = sum(1 for v in snap.models.values() for h in v.hosts if h.state is HostState.UNTRUSTED)
    if untrusted:
        allowed = next(f.env for f in FIELDS if f.name == "allowed_hosts")
        print(
            f"{untrusted} host(s) untrusted: outside allowed_hosts ({allowed}={settings.allowed_hosts}), "
            "so never probed",
            file=sys.stderr,
        )
    if not snap.models:
        print(f"no models: discovery failed ({monitor.discovery.error})", file=sys.stderr)
        return 1
    missing = [m for m, v in snap.models.items() if not any(h.state is HostState.UP for h in v.hosts)]
    if missing:
        print(f"no healthy host for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


async def _db_upgrade(settings: Settings) -> int:
    from monitor.server import StartupError, open_store

    try:
        store, upgrade = await open_store(settings)
    except StartupError as exc:
        print(f"libertai-monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    await store.close()
    print(upgrade.describe(settings.database_url))
    return 0


async def _with_store(settings: Settings, command: Callable[[Store], Awaitable[int]]) -> int:
    """Run a command that reads or writes the database (`maintenance`, `certs`)."""
    from monitor.server import StartupError, open_store

    try:
        store, _ = await open_store(settings)
    except StartupError as exc:
        print(f"libertai-monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return await command(store)
    except StoreError as exc:
        print(f"libertai-monitor: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()


def _demo(args: argparse.Namespace) -> int:
    return runtime.run(_serve_demo(args))


def demo_database(keep: bool, workdir: Path) -> str:
    """The demo's database: kept in the current directory with `--keep`, else new in `workdir`."""
    return DEMO_KEPT_DATABASE if keep else f"sqlite+aiosqlite:///{workdir / 'demo.db'}"


def demo_snippet(monitor_url: str, gateway_url: str, ca_file: str) -> str:
    """Python that sends a chat completion through the failover transport to the demo, as pasted."""
    return f"""import httpx2
from libertai_failover import FailoverTransport

transport = FailoverTransport(
    "{monitor_url}",
    gateway_url="{gateway_url}",
    allowed_hosts="{DEMO_ALLOWED_HOSTS}",
    ca_bundle="{ca_file}",
)
auth = {{"Authorization": "Bearer {DEMO_KEY}"}}
with httpx2.Client(transport=transport, base_url="{gateway_url}/v1", headers=auth) as client:
    body = {{"model": "{DEMO_MODEL}", "messages": [{{"role": "user", "content": "Hello"}}]}}
    reply = client.post("/chat/completions", json=body)
    print(reply.headers["X-LibertAI-Host"], reply.json()["choices"][0]["message"]["content"])
"""


async def _serve_demo(args: argparse.Namespace) -> int:
    from monitor.sim import SimNetwork, load_scenario

    scenario = load_scenario("demo")
    async with SimNetwork(scenario, seed=args.seed, port=0, host="127.0.0.1") as net:
        ca_dir = tempfile.mkdtemp(prefix="libertai-monitor-demo-")
        try:
            return await _run_demo(args, net.gateway_url, net.ca_pem, Path(ca_dir))
        finally:
            shutil.rmtree(ca_dir, ignore_errors=True)


async def _run_demo(args: argparse.Namespace, gateway_url: str, ca_pem: bytes, workdir: Path) -> int:
    from monitor.server import safe_url

    ca_file = workdir / "sim-ca.pem"
    ca_file.write_bytes(ca_pem)
    env = {ENV_PREFIX + k.upper(): v for k, v in DEMO_DEFAULTS.items()}
    database = demo_database(args.keep, workdir)
    env[ENV_PREFIX + "DATABASE_URL"] = database
    env[ENV_PREFIX + "GATEWAY_URL"] = gateway_url
    env[ENV_PREFIX + "ALLOWED_HOSTS"] = DEMO_ALLOWED_HOSTS
    env[ENV_PREFIX + "CA_BUNDLE"] = str(ca_file)
    env["LIBERTAI_API_KEY"] = DEMO_KEY
    env.update(os.environ)  # the user's own settings win over the demo's
    try:
        settings = _settings(args, environ=env)
    except ConfigError as exc:
        print(f"libertai-monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _start_logging(settings, env)
    kept = "" if settings.database_url != database else " (a new one each run; --keep keeps it)"
    banner = demo_banner(
        gateway_url,
        database=safe_url(settings.database_url) + kept,
        snippet=demo_snippet("{api}", gateway_url, str(ca_file)),
    )
    return await _serve(settings, banner=banner)


def demo_banner(gateway_url: str, database: str | None = None, snippet: str | None = None) -> str:
    """What the demo prints once it serves; `{api}` stands for the monitor's URL. The gateway is
    shown as `--gateway-url` takes it, its base URL."""
    api = "{api}"
    lines = [
        "libertai-monitor demo: the simulated LibertAI network and the monitor against it",
        f"  simulated gateway   {gateway_url}   (for --gateway-url; it lists hosts at /libertai/models)",
        f"  simulator truth     {gateway_url}/_sim/hosts",
        f"  status page         {api}/",
        f"  best host per model {api}/v1/best",
        f"  every host          {api}/v1/hosts",
        f"  models, best first  {api}/libertai/models",
        f"  Prometheus metrics  {api}/metrics",
    ]
    if database is not None:
        lines.append(f"  database            {database}")
    if snippet is not None:
        lines += ["From your application (pip install ./clients/libertai-failover), as pasted:", "", snippet]
    return "\n".join([*lines, "Press Ctrl+C to stop."])
