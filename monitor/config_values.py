"""Parsers of setting values: text (from the environment or a flag) or a TOML value in, a typed and
validated value out, or `ValueError` saying what was expected (the caller adds where it came from).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import ssl
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from monitor.core.identity import Fingerprint, references_from
from monitor.core.secret import Secret
from monitor.core.urls import AllowList, normalise_url
from monitor.store import check_vantage

T = TypeVar("T")


def flag_type(parse: Callable[[object], T]) -> Callable[[str], T]:
    """A parser as an argparse `type`: its message, not argparse's "invalid value", on a bad one."""

    def convert(raw: str) -> T:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (got {raw!r})") from None

    return convert


def _number(raw: object, ok: Callable[[float], bool], expected: str) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else float("nan")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if value != value or value == float("inf") or not ok(value):
        raise ValueError(f"expected {expected}")
    return value


def parse_seconds(raw: object) -> float:
    return _number(raw, lambda v: v > 0, "a positive number of seconds")


def parse_days(raw: object) -> float:
    return _number(raw, lambda v: v > 0, "a positive number of days")


def parse_non_negative(raw: object) -> float:
    return _number(raw, lambda v: v >= 0, "a number of seconds >= 0")


def parse_positive_int(raw: object) -> int:
    value = _number(raw, lambda v: v >= 1 and v == int(v), "a whole number >= 1")
    if isinstance(raw, str) and not raw.strip().isdigit():
        raise ValueError("expected a whole number >= 1")
    return int(value)


def parse_fraction(raw: object) -> float:
    return _number(raw, lambda v: 0 <= v < 1, "a number from 0 to below 1")


def parse_ratio(raw: object) -> float:
    return _number(raw, lambda v: 0 < v < 1, "a number above 0 and below 1")


def parse_milliseconds(raw: object) -> float:
    return _number(raw, lambda v: v > 0, "a positive number of milliseconds")


def parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def parse_title(raw: object) -> str:
    text = " ".join(str(raw).split())
    if not text or len(text) > 120:
        raise ValueError("expected a title of 1 to 120 characters")
    return text


def parse_globs(raw: object) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def parse_allow_list(raw: object) -> AllowList:
    text = ",".join(str(i) for i in raw) if isinstance(raw, list) else str(raw)
    return AllowList.parse(text)


def parse_port(raw: object) -> int:
    text = str(raw).strip()
    if not text.isdigit() or int(text) > 65535:
        raise ValueError("expected a port from 0 to 65535 (0: any free port)")
    return int(text)


def parse_listen(raw: object) -> tuple[str, int]:
    """`HOST:PORT`, an IPv6 address in brackets (`[::1]:8787`); the host is returned bare."""
    host, sep, port = str(raw).strip().rpartition(":")
    expected = "expected HOST:PORT, for example 127.0.0.1:8787 or [::1]:8787"
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(expected)
    if host.startswith("[") or host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1] if host[:1] + host[-1:] == "[]" else "!")
        except ValueError:
            raise ValueError(f"{expected} (an IPv6 address in brackets)") from None
        host = host[1:-1]
    return host, int(port)


LISTING_PATH = "/libertai/models"


def parse_gateway_url(raw: object) -> str:
    """The gateway's base URL; the listing's own URL is refused, naming the form to give."""
    url = normalise_url(str(raw))
    if url.endswith(LISTING_PATH):
        base = url[: -len(LISTING_PATH)]
        raise ValueError(f"expected the gateway's base URL, without {LISTING_PATH} ({base})")
    return url


def parse_database_url(raw: object) -> str:
    text = str(raw).strip()
    if "://" not in text:
        raise ValueError("expected an SQLAlchemy URL such as sqlite+aiosqlite:///monitor.db")
    return text


def parse_vantage(raw: object) -> str:
    """A vantage name (where this monitor probes from), as the store checks it."""
    # The store's own rule, so that a name the settings accept is one the store accepts.
    return check_vantage(str(raw).strip())


def parse_choice(*allowed: str) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        text = str(raw).strip().lower()
        if text not in allowed:
            raise ValueError(f"expected {', '.join(allowed[:-1])} or {allowed[-1]}")
        return text

    return parse


def parse_ca_bundle(raw: object) -> str | None:
    text = str(raw).strip()
    if not text:
        return None
    if not Path(text).is_file():
        raise ValueError(f"no such file: {text}")
    # Loaded here, not first when the HTTP session is made, so that a file that is not PEM
    # certificates stops the command with one line instead of a traceback mid-start.
    try:
        ssl.create_default_context().load_verify_locations(cafile=text)
    except (OSError, ssl.SSLError, ValueError):
        raise ValueError(f"{text} holds no PEM certificate") from None
    return text


def parse_notify_urls(raw: object) -> Secret | None:
    """Comma-separated Apprise URLs, kept as a secret (they hold tokens); "" for none. The error
    never quotes the value."""
    items = raw if isinstance(raw, list) else str(raw).split(",")
    urls = [str(item).strip() for item in items if str(item).strip()]
    if not urls:
        return None
    if any("://" not in url for url in urls):
        raise ValueError("expected comma-separated Apprise URLs such as tgram://BOT_TOKEN/CHAT_ID")
    return Secret(",".join(urls))


def parse_public_url(raw: object) -> str | None:
    """The status page's public base URL, for links in messages; "" for none."""
    text = str(raw).strip().rstrip("/")
    if not text:
        return None
    if not text.startswith(("http://", "https://")) or text[-3:] == "://":
        raise ValueError("expected an http:// or https:// URL such as https://status.example.org")
    return text


def parse_nats(raw: object) -> float:
    return _number(raw, lambda v: v > 0, "a positive number of nats")


def parse_identity_reference(raw: object) -> Mapping[str, Fingerprint]:
    """A JSON or TOML file of reference fingerprints per model (`monitor.core.identity`); "" for none.
    Read and checked here, so that a bad file stops the command with one line."""
    text = str(raw).strip()
    if not text:
        return MappingProxyType({})
    path = Path(text)
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {text}: {exc.strerror or exc}") from None
    try:
        data = json.loads(content) if path.suffix.lower() == ".json" else tomllib.loads(content)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(
            f"{text} is not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{text}: expected a table 'models'")
    return MappingProxyType(references_from(data, text))
