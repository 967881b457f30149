"""Loading the settings: defaults < TOML file < environment < command-line flags, each value
validated once by its declaration in `monitor.config`; and the checks the commands add on top."""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.config import (
    BY_NAME,
    CONFIG_ENV,
    ENV_PREFIX,
    FIELDS,
    KEY_ENV,
    KEY_FILE_ENV,
    MIN_KEY_CHARS,
    RULES,
    SECRET_SETTINGS,
    ConfigError,
    Settings,
    env_name,
)
from monitor.core.secret import Secret


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
            if name not in BY_NAME:
                raise ConfigError(f"{path}: unknown setting {name!r}{_did_you_mean(name)}")
            raw[name] = (value, f"{path}: {name}")
    for f in FIELDS:
        if f.env in env:
            raw[f.name] = (env[f.env], f.env)
    for name, value in (overrides or {}).items():
        if value is not None:
            raw[name] = (value, BY_NAME[name].flag)

    values: dict[str, Any] = {}
    for name, (value, source) in raw.items():
        try:
            values[name] = BY_NAME[name].parse(value)
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
    close = difflib.get_close_matches(name.lower(), list(BY_NAME), n=1, cutoff=0.6)
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
        close = difflib.get_close_matches(suffix.lower(), list(BY_NAME), n=1, cutoff=0.6)
        hint = f"did you mean {env_name(close[0])}?" if close else "no setting has that name"
        lines.append(f"{var} is not a setting and is ignored: {hint}")
    return lines


def describe_settings() -> list[tuple[str, str, str, str]]:
    """(name, environment variable, default, meaning) for every setting."""
    return [(f.name, f.env, f.default, f.meaning) for f in FIELDS]
