"""One frozen `Settings`, built once: defaults < TOML file < environment < command-line flags.

Every setting is declared once, as a field of `Settings` made by `setting(...)`: its type (the
annotation), parser (validation), default, help text and the commands that take it as a flag. The
rest is derived: the TOML key is the name, the environment variable `LIBERTAI_MONITOR_<NAME>`, the
flag `--<name>`, `run --help`'s list and README's table (`monitor.settings_doc`, checked by a test).
Rules across settings are `RULES`, checked when the settings load. Adding a setting is one line.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from monitor.config_values import (
    parse_allow_list,
    parse_bool,
    parse_ca_bundle,
    parse_choice,
    parse_database_url,
    parse_days,
    parse_fraction,
    parse_gateway_url,
    parse_globs,
    parse_listen,
    parse_milliseconds,
    parse_non_negative,
    parse_notify_urls,
    parse_positive_int,
    parse_public_url,
    parse_ratio,
    parse_seconds,
    parse_title,
    parse_vantage,
)
from monitor.core.secret import Secret
from monitor.core.urls import AllowList

ENV_PREFIX = "LIBERTAI_MONITOR_"
KEY_ENV = "LIBERTAI_API_KEY"
KEY_FILE_ENV = ENV_PREFIX + "API_KEY_FILE"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
# Shorter than any key LibertAI issues and than every key the simulator, tests and benchmarks use:
# what it refuses is a typo or a placeholder ("x", "changeme"), which would also make masking the
# key's value in logs hit ordinary words.
MIN_KEY_CHARS = 8


class ConfigError(Exception):
    """A bad setting. The message is one line a user can act on, and never holds the key."""


@dataclass(frozen=True, slots=True)
class Field:
    """How one setting is read: everything but its type, which is its annotation in `Settings`."""

    name: str
    parse: Callable[[object], Any]
    default: str
    meaning: str
    flag_for: frozenset[str]  # the commands that take it as `--name`

    @property
    def env(self) -> str:
        return env_name(self.name)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def setting(parse: Callable[[object], Any], default: str, meaning: str, *, flag_for: str = "") -> Any:
    """Declare a setting as a field of `Settings` (the default is given as text, as in the environment)."""
    meta = {"parse": parse, "default": default, "meaning": meaning, "flag_for": frozenset(flag_for.split())}
    return dataclass_field(default_factory=lambda: parse(default), metadata=meta)


@dataclass(frozen=True, slots=True)
class Settings:
    gateway_url: str = setting(
        parse_gateway_url,
        "https://api.libertai.io",
        "LibertAI gateway to discover hosts from",
        flag_for="run demo probe-once",
    )
    listen: tuple[str, int] = setting(
        parse_listen, "127.0.0.1:8787", "address of the HTTP API and /metrics", flag_for="run demo"
    )
    database_url: str = setting(
        parse_database_url,
        "sqlite+aiosqlite:///libertai-monitor.db",
        "history database (SQLAlchemy URL; SQLite file by default)",
        flag_for="run demo db",
    )
    vantage: str = setting(
        parse_vantage,
        "default",
        "where this monitor probes from (monitors on one PostgreSQL database and vantage elect a leader)",
        flag_for="run",
    )
    allowed_hosts: AllowList = setting(  # noqa: RUF009 - a field(), made fresh per Settings
        parse_allow_list,
        "https://*.libertai.io",
        "comma-separated URL patterns of hosts that may be probed with the key",
    )
    discovery_interval: float = setting(parse_seconds, "60", "seconds between polls of /libertai/models")
    probe_interval: float = setting(parse_seconds, "30", "seconds between free probes (health) of a host")
    down_probe_interval: float = setting(
        parse_seconds, "15", "seconds between probes of a host that is down (capped at probe_interval)"
    )
    completion_interval: float = setting(
        parse_seconds,
        "300",
        "seconds between billed one-token completions (and embeddings, host auth checks)",
    )
    throughput_interval: float = setting(
        parse_seconds,
        "1800",
        "seconds between billed throughput probes (a streamed completion of throughput_tokens tokens)",
    )
    throughput_tokens: int = setting(parse_positive_int, "16", "output tokens of a throughput probe")
    probe_timeout: float = setting(parse_seconds, "10", "seconds a probe may take, body included")
    confirm_delay: float = setting(
        parse_non_negative, "2", "seconds before a failed probe is confirmed by a re-probe"
    )
    jitter: float = setting(
        parse_fraction, "0.1", "fraction of an interval added at random to each probe's slot"
    )
    max_concurrency: int = setting(parse_positive_int, "256", "probes in flight at once")
    completion_probes: bool = setting(
        parse_bool, "true", "send billed completion and embedding probes at all"
    )
    health_only_models: tuple[str, ...] = setting(
        parse_globs,
        "*image*,*flux*,*sdxl*,*stable-diffusion*,kokoro-*,*whisper*,*tts*,*audio*",
        "model id globs probed only with free health checks (image, audio)",
    )
    embedding_models: tuple[str, ...] = setting(
        parse_globs,
        "bge-*,*-embed*,*embedding*,e5-*,gte-*,nomic-embed-*",
        "model id globs probed with an embedding instead of a completion",
    )
    ca_bundle: str | None = setting(parse_ca_bundle, "", "PEM file of extra CAs or pinned host certificates")
    unhealthy_threshold: int = setting(parse_positive_int, "2", "consecutive failures that take a host down")
    healthy_threshold: int = setting(parse_positive_int, "2", "consecutive successes that bring a host back")
    window: int = setting(parse_positive_int, "50", "probe results per host kept for scores and availability")
    ranking_margin: float = setting(
        parse_fraction, "0.2", "how much faster a challenger must be to take best"
    )
    ranking_min_samples: int = setting(
        parse_positive_int, "3", "latency samples a challenger needs to take best"
    )
    ranking_half_life: float = setting(
        parse_seconds,
        "1800",
        "seconds after which a result weighs half as much in a host's score (latency, failure share)",
    )
    ejection_time: float = setting(
        parse_seconds,
        "30",
        "seconds a host that went down stays out of best, counted from when it went down (doubled per "
        "ejection in an hour, at most ejection_max_time)",
    )
    ejection_max_time: float = setting(parse_seconds, "300", "cap of the ejection time")
    retire_after: float = setting(
        parse_non_negative, "600", "seconds a host missing from the list is kept before retiring"
    )
    raw_retention_days: float = setting(parse_days, "7", "days of raw probe results kept")
    rollup_retention_days: float = setting(parse_days, "400", "days of hourly roll-ups kept")
    log_level: str = setting(
        parse_choice("debug", "info", "warning", "error"), "info", "debug, info, warning or error"
    )
    log_format: str = setting(
        parse_choice("auto", "json", "console"), "auto", "json, console, or auto (console on a terminal)"
    )
    metrics_max_hosts: int = setting(
        parse_positive_int,
        "10000",
        "(model, host) pairs with per-host series in /metrics; past it, each model's best-ranked hosts, "
        "an equal share",
    )
    status_page: bool = setting(
        parse_bool,
        "true",
        "serve the status page (/, /status, /status/{model}, /status/feed.atom, /badge/{model}.svg)",
    )
    status_title: str = setting(parse_title, "LibertAI status", "title of the status page")
    slo_availability: float = setting(
        parse_ratio, "0.99", "objective: share of a model's probes that succeed (see SLOs)"
    )
    slo_ttft_ms: float = setting(
        parse_milliseconds, "2000", "milliseconds to the first token a completion must not exceed (see SLOs)"
    )
    slo_ttft_target: float = setting(
        parse_ratio, "0.95", "objective: share of a model's completions within slo_ttft_ms (see SLOs)"
    )
    notify_urls: Secret | None = setting(  # noqa: RUF009 - a field(), made fresh per Settings
        parse_notify_urls,
        "",
        "comma-separated Apprise URLs to send notifications to (a secret: never shown; see Notifications)",
    )
    notify_min_interval: float = setting(
        parse_seconds,
        "300",
        "seconds between two messages about one host or model (a flapping one: one, with a count)",
    )
    notify_gateway_after: float = setting(
        parse_seconds, "300", "seconds the gateway's list must keep failing before a message says so"
    )
    public_url: str | None = setting(
        parse_public_url, "", "public base URL of the status page, linked from notifications"
    )
    api_key: Secret | None = None  # not a setting: from LIBERTAI_API_KEY or the key file only

    @property
    def listen_url(self) -> str:
        return listen_url(*self.listen)


def listen_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches a listen address at (IPv6 in brackets)."""
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


def listen_text(host: str, port: int) -> str:
    """A listen address as written in the setting (`[::1]:8787` for IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


FIELDS: tuple[Field, ...] = tuple(
    Field(f.name, f.metadata["parse"], f.metadata["default"], f.metadata["meaning"], f.metadata["flag_for"])
    for f in fields(Settings)
    if "parse" in f.metadata
)
_BY_NAME = {f.name: f for f in FIELDS}
SECRET_SETTINGS: frozenset[str] = frozenset({"notify_urls"})  # never quoted in an error


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule across settings: `broken(values)` is True when the loaded values break it."""

    names: tuple[str, ...]  # the settings it names, for the message's sources
    broken: Callable[[Mapping[str, Any]], bool]
    message: str


RULES: tuple[Rule, ...] = (
    Rule(
        ("ejection_time", "ejection_max_time"),
        lambda v: v["ejection_time"] > v["ejection_max_time"],
        "ejection_time ({ejection_time:g} s) must not exceed ejection_max_time ({ejection_max_time:g} s)",
    ),
)


def _derive(values: dict[str, Any]) -> None:
    """Values that follow from others (not errors: documented in the settings' help)."""
    values["down_probe_interval"] = min(values["down_probe_interval"], values["probe_interval"])


def load_settings(
    *,
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Layer the sources and validate every value once; raise ConfigError on the first bad one."""
    env = os.environ if environ is None else environ
    raw: dict[str, tuple[object, str]] = {f.name: (f.default, "default") for f in FIELDS}

    path = config_file or env.get(CONFIG_ENV)
    if path:
        for name, value in _read_toml(path).items():
            if name not in _BY_NAME:
                raise ConfigError(f"{path}: unknown setting {name!r}{_did_you_mean(name)}")
            raw[name] = (value, f"{path}: {name}")
    for f in FIELDS:
        if f.env in env:
            raw[f.name] = (env[f.env], f.env)
    for name, value in (overrides or {}).items():
        if value is not None:
            raw[name] = (value, _BY_NAME[name].flag)

    values: dict[str, Any] = {}
    for name, (value, source) in raw.items():
        try:
            values[name] = _BY_NAME[name].parse(value)
        except (ValueError, TypeError) as exc:
            reason = str(exc) if str(exc) else type(exc).__name__
            shown = "a secret value" if name in SECRET_SETTINGS else _shown(value)
            raise ConfigError(f"{source}: {reason} (got {shown})") from None
    for rule in RULES:
        if rule.broken(values):
            sources = ", ".join(raw[n][1] for n in rule.names if raw[n][1] != "default")
            raise ConfigError(rule.message.format(**values) + (f" (from {sources})" if sources else ""))
    _derive(values)
    values["api_key"] = _read_key(env)
    return Settings(**values)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(_BY_NAME), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _read_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if "api_key" in data:
        raise ConfigError(f"{path}: do not put the key in the file; use {KEY_ENV} or {KEY_FILE_ENV}")
    return data


def _read_key(env: Mapping[str, str]) -> Secret | None:
    key_file = env.get(KEY_FILE_ENV)
    if key_file:
        try:
            value = Path(key_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{KEY_FILE_ENV}: cannot read {key_file}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{KEY_FILE_ENV}: {key_file} is empty")
        return Secret(value)
    value = env.get(KEY_ENV, "").strip()
    return Secret(value) if value else None


def check_key(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a key too short to be real (the commands call this; library users choose their keys)."""
    key = settings.api_key
    if key is not None and len(key.reveal()) < MIN_KEY_CHARS:
        env = os.environ if environ is None else environ
        source = KEY_FILE_ENV if env.get(KEY_FILE_ENV) else KEY_ENV
        raise ConfigError(
            f"{source}: the API key is {len(key.reveal())} characters, too short to be a LibertAI key "
            f"(at least {MIN_KEY_CHARS}); check for a typo or a placeholder"
        )


def check_notify_extra(settings: Settings) -> None:
    """Refuse notification URLs without Apprise installed (`run` calls this)."""
    if settings.notify_urls is not None and importlib.util.find_spec("apprise") is None:
        raise ConfigError(
            "notify_urls is set but Apprise is not installed: pip install 'libertai-monitor[notify]'"
        )


# Variables an orchestrator sets on its own for a service named libertai-monitor (Kubernetes'
# service links, Docker's legacy links): not settings, and not worth a warning.
_INJECTED = re.compile(r"(PORT|PORT_\d+_(TCP|UDP|SCTP)(_\w+)?|SERVICE_HOST|SERVICE_PORT(_\w+)?|NAME|ENV_\w+)")


def unknown_env_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per `LIBERTAI_MONITOR_*` variable that names no setting (a typo is otherwise silent)."""
    env = os.environ if environ is None else environ
    known = {f.env for f in FIELDS} | {KEY_FILE_ENV, CONFIG_ENV}
    lines = []
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var in known:
            continue
        suffix = var[len(ENV_PREFIX) :]
        if _INJECTED.fullmatch(suffix):
            continue
        close = difflib.get_close_matches(suffix.lower(), list(_BY_NAME), n=1, cutoff=0.6)
        hint = f"did you mean {env_name(close[0])}?" if close else "no setting has that name"
        lines.append(f"{var} is not a setting and is ignored: {hint}")
    return lines


def describe_settings() -> list[tuple[str, str, str, str]]:
    """(name, environment variable, default, meaning) for every setting."""
    return [(f.name, f.env, f.default, f.meaning) for f in FIELDS]
