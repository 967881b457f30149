"""One frozen `Settings`, built once: defaults < TOML file < environment < command-line flags.

Every setting is declared once, as a field of `Settings` made by `setting(...)`: its type (the
annotation), parser (validation), default, help text and the commands that take it as a flag. The
rest is derived: the TOML key is the name, the environment variable `LIBERTAI_MONITOR_<NAME>`, the
flag `--<name>`, `run --help`'s list and README's table (`monitor.settings_doc`, checked by a test).
Rules across settings are `RULES`, checked when `monitor.config_load` loads the settings. Adding a
setting is one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
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
    parse_identity_reference,
    parse_listen,
    parse_milliseconds,
    parse_nats,
    parse_non_negative,
    parse_notify_urls,
    parse_positive_int,
    parse_public_url,
    parse_ratio,
    parse_seconds,
    parse_title,
    parse_vantage,
)
from monitor.core.identity import Fingerprint
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
    paths_interval: float = setting(
        parse_seconds, "3600", "seconds between free probes of the API paths a host accepts (/v1/hosts paths)"
    )
    throughput_tokens: int = setting(parse_positive_int, "16", "output tokens of a throughput probe")
    identity_interval: float = setting(
        parse_seconds,
        "3600",
        "seconds between billed identity probes (fixed prompt, 4 tokens, log-probabilities)",
    )
    identity_tolerance: float = setting(
        parse_nats, "0.5", "nats two hosts' log-probabilities may differ by and still be the same model"
    )
    identity_reference: Mapping[str, Fingerprint] = setting(
        parse_identity_reference,
        "",
        "JSON or TOML file of reference fingerprints per model (one host is then enough)",
    )
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
    pin_certificates: bool = setting(
        parse_bool, "false", "trust each HTTPS host's first certificate only: no key to it after a change"
    )
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
    notify_quorum: int = setting(
        parse_positive_int,
        "1",
        "vantages that must see a host down before it is announced down (see Notifications)",
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
BY_NAME = {f.name: f for f in FIELDS}
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
