"""One frozen `Settings`, built once: defaults < TOML file < environment < command-line flags.

Every setting is declared once in `FIELDS` (name, parser, default, meaning); the environment
variable is `LIBERTAI_MONITOR_<NAME>` and the TOML key is the name itself. README's settings table
is checked against `FIELDS` by a test, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from monitor.secret import Secret
from monitor.urls import AllowList, normalise_url

ENV_PREFIX = "LIBERTAI_MONITOR_"
KEY_ENV = "LIBERTAI_API_KEY"


class ConfigError(Exception):
    """A bad setting. The message is one line a user can act on, and never holds the key."""


def _number(raw: object, ok: Callable[[float], bool], expected: str) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else float("nan")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if value != value or value == float("inf") or not ok(value):
        raise ValueError(f"expected {expected}")
    return value


def _seconds(raw: object) -> float:
    return _number(raw, lambda v: v > 0, "a positive number of seconds")


def _non_negative(raw: object) -> float:
    return _number(raw, lambda v: v >= 0, "a number of seconds >= 0")


def _positive_int(raw: object) -> int:
    value = _number(raw, lambda v: v >= 1 and v == int(v), "a whole number >= 1")
    if isinstance(raw, str) and not raw.strip().isdigit():
        raise ValueError("expected a whole number >= 1")
    return int(value)


def _fraction(raw: object) -> float:
    return _number(raw, lambda v: 0 <= v < 1, "a number from 0 to below 1")


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _globs(raw: object) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _allow_list(raw: object) -> AllowList:
    text = ",".join(str(i) for i in raw) if isinstance(raw, list) else str(raw)
    return AllowList.parse(text)


def _listen(raw: object) -> tuple[str, int]:
    host, sep, port = str(raw).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT, for example 127.0.0.1:8787")
    return host.strip("[]"), int(port)


def _url(raw: object) -> str:
    return normalise_url(str(raw))


def _database_url(raw: object) -> str:
    text = str(raw).strip()
    if "://" not in text:
        raise ValueError("expected an SQLAlchemy URL such as sqlite+aiosqlite:///monitor.db")
    return text


def _log_format(raw: object) -> str:
    text = str(raw).strip().lower()
    if text not in {"auto", "json", "console"}:
        raise ValueError("expected auto, json or console")
    return text


def _log_level(raw: object) -> str:
    text = str(raw).strip().lower()
    if text not in {"debug", "info", "warning", "error"}:
        raise ValueError("expected debug, info, warning or error")
    return text


def _optional_path(raw: object) -> str | None:
    text = str(raw).strip()
    if not text:
        return None
    if not Path(text).is_file():
        raise ValueError(f"no such file: {text}")
    return text


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    parse: Callable[[object], Any]
    default: str
    meaning: str


FIELDS: tuple[Field, ...] = (
    Field("gateway_url", _url, "https://api.libertai.io", "LibertAI gateway to discover hosts from"),
    Field("listen", _listen, "127.0.0.1:8787", "address of the HTTP API and /metrics"),
    Field(
        "database_url",
        _database_url,
        "sqlite+aiosqlite:///libertai-monitor.db",
        "history database (SQLAlchemy URL; SQLite file by default)",
    ),
    Field(
        "allowed_hosts",
        _allow_list,
        "https://*.libertai.io",
        "comma-separated URL patterns of hosts that may be probed with the key",
    ),
    Field("discovery_interval", _seconds, "60", "seconds between polls of /libertai/models"),
    Field("probe_interval", _seconds, "30", "seconds between free probes (health) of a host"),
    Field(
        "down_probe_interval",
        _seconds,
        "15",
        "seconds between probes of a host that is down (capped at probe_interval)",
    ),
    Field(
        "completion_interval",
        _seconds,
        "300",
        "seconds between billed one-token completions (and embeddings, host auth checks)",
    ),
    Field(
        "throughput_interval",
        _seconds,
        "1800",
        "seconds between billed throughput probes (a streamed completion of throughput_tokens tokens)",
    ),
    Field("throughput_tokens", _positive_int, "16", "output tokens of a throughput probe"),
    Field("probe_timeout", _seconds, "10", "seconds a probe may take, body included"),
    Field("confirm_delay", _non_negative, "2", "seconds before a failed probe is confirmed by a re-probe"),
    Field("jitter", _fraction, "0.1", "fraction of an interval added at random to each probe's slot"),
    Field("max_concurrency", _positive_int, "256", "probes in flight at once"),
    Field("completion_probes", _bool, "true", "send billed completion and embedding probes at all"),
    Field(
        "health_only_models",
        _globs,
        "*image*,*flux*,*sdxl*,*stable-diffusion*,kokoro-*,*whisper*,*tts*,*audio*",
        "model id globs probed only with free health checks (image, audio)",
    ),
    Field(
        "embedding_models",
        _globs,
        "bge-*,*-embed*,*embedding*,e5-*,gte-*,nomic-embed-*",
        "model id globs probed with an embedding instead of a completion",
    ),
    Field("ca_bundle", _optional_path, "", "PEM file of extra CAs or pinned host certificates"),
    Field("unhealthy_threshold", _positive_int, "2", "consecutive failures that take a host down"),
    Field("healthy_threshold", _positive_int, "2", "consecutive successes that bring a host back"),
    Field("window", _positive_int, "50", "probe results per host kept for scores and availability"),
    Field("ranking_margin", _fraction, "0.2", "how much faster a challenger must be to take best"),
    Field("ranking_min_samples", _positive_int, "3", "latency samples a challenger needs to take best"),
    Field(
        "ranking_half_life",
        _seconds,
        "1800",
        "seconds after which a result weighs half as much in a host's score (latency, failure share)",
    ),
    Field("ejection_time", _seconds, "30", "seconds a host that went down stays out of best once up"),
    Field("ejection_max_time", _seconds, "300", "cap of the ejection time, doubled per ejection in an hour"),
    Field(
        "retire_after", _non_negative, "600", "seconds a host missing from the list is kept before retiring"
    ),
    Field("raw_retention_days", _seconds, "7", "days of raw probe results kept"),
    Field("rollup_retention_days", _seconds, "400", "days of hourly roll-ups kept"),
    Field("log_level", _log_level, "info", "debug, info, warning or error"),
    Field("log_format", _log_format, "auto", "json, console, or auto (console on a terminal)"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    gateway_url: str
    listen: tuple[str, int]
    database_url: str
    allowed_hosts: AllowList
    discovery_interval: float
    probe_interval: float
    down_probe_interval: float
    completion_interval: float
    throughput_interval: float
    throughput_tokens: int
    probe_timeout: float
    confirm_delay: float
    jitter: float
    max_concurrency: int
    completion_probes: bool
    health_only_models: tuple[str, ...]
    embedding_models: tuple[str, ...]
    ca_bundle: str | None
    unhealthy_threshold: int
    healthy_threshold: int
    window: int
    ranking_margin: float
    ranking_min_samples: int
    ranking_half_life: float
    ejection_time: float
    ejection_max_time: float
    retire_after: float
    raw_retention_days: float
    rollup_retention_days: float
    log_level: str
    log_format: str
    api_key: Secret | None = None

    @property
    def listen_url(self) -> str:
        host, port = self.listen
        shown = "127.0.0.1" if host in {"0.0.0.0", ""} else host
        return f"http://{shown}:{port}"


assert [f.name for f in FIELDS] == [f.name for f in fields(Settings)][:-1], "FIELDS and Settings differ"
_BY_NAME = {f.name: f for f in FIELDS}


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def load_settings(
    *,
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Layer the sources and validate every value once; raise ConfigError on the first bad one."""
    env = os.environ if environ is None else environ
    raw: dict[str, tuple[object, str]] = {f.name: (f.default, "default") for f in FIELDS}

    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        for name, value in _read_toml(path).items():
            if name not in _BY_NAME:
                raise ConfigError(f"{path}: unknown setting {name!r}")
            raw[name] = (value, f"{path}: {name}")
    for f in FIELDS:
        if env_name(f.name) in env:
            raw[f.name] = (env[env_name(f.name)], env_name(f.name))
    for name, value in (overrides or {}).items():
        if value is not None:
            raw[name] = (value, "--" + name.replace("_", "-"))

    values: dict[str, Any] = {}
    for name, (value, source) in raw.items():
        try:
            values[name] = _BY_NAME[name].parse(value)
        except (ValueError, TypeError) as exc:
            reason = str(exc) if str(exc) else type(exc).__name__
            raise ConfigError(f"{source}: {reason} (got {_shown(value)})") from None
    values["down_probe_interval"] = min(values["down_probe_interval"], values["probe_interval"])
    values["api_key"] = _read_key(env)
    return Settings(**values)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
        raise ConfigError(
            f"{path}: do not put the key in the file; use {KEY_ENV} or {ENV_PREFIX}API_KEY_FILE"
        )
    return data


def _read_key(env: Mapping[str, str]) -> Secret | None:
    key_file = env.get(ENV_PREFIX + "API_KEY_FILE")
    if key_file:
        try:
            value = Path(key_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{ENV_PREFIX}API_KEY_FILE: cannot read {key_file}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{ENV_PREFIX}API_KEY_FILE: {key_file} is empty")
        return Secret(value)
    value = env.get(KEY_ENV, "").strip()
    return Secret(value) if value else None


def describe_settings() -> list[tuple[str, str, str, str]]:
    """(name, environment variable, default, meaning) for every setting: the README table."""
    return [(f.name, env_name(f.name), f.default, f.meaning) for f in FIELDS]
