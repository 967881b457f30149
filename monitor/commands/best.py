"""`libertai-monitor best MODEL`: the monitor's best host and fallbacks for one model, for shells.

Exit 0 when the model has a healthy host, 1 when it has none (or the monitor cannot say), 2 for
bad configuration. Uses only the standard library, so it works without the `client` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from monitor.client.answers import MAX_ANSWER_BYTES, parse_answer
from monitor.config import ConfigError
from monitor.config_load import load_settings
from monitor.config_values import flag_type, parse_seconds
from monitor.core.urls import normalise_url

__all__ = ["add_parser", "run"]

EXIT_NO_HOST = 1
EXIT_CONFIG = 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    about = "the best host and fallbacks of a model, from a running monitor"
    best: argparse.ArgumentParser = subparsers.add_parser("best", help=about, description=about + ".")
    best.add_argument("model", metavar="MODEL", help="model id, as in /v1/best")
    best.add_argument("--monitor-url", metavar="URL", help="the monitor's API (default: the listen setting)")
    best.add_argument("--json", action="store_true", help="print JSON for scripts")
    best.add_argument("--config", metavar="FILE", help="TOML file of settings (for the listen address)")
    best.add_argument(
        "--listen", metavar="HOST:PORT", help="address of the monitor's HTTP API ([::1]:PORT for IPv6)"
    )
    best.add_argument(
        "--timeout", type=flag_type(parse_seconds), default=5.0, help="seconds to wait for the monitor"
    )
    return best


def _monitor_url(args: argparse.Namespace) -> str:
    if args.monitor_url:
        try:
            return normalise_url(str(args.monitor_url))
        except ValueError as exc:
            raise ConfigError(f"--monitor-url: {exc}") from None
    return load_settings(config_file=args.config, overrides={"listen": args.listen}).listen_url


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return int(resp.status), resp.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(MAX_ANSWER_BYTES + 1)


def run(args: argparse.Namespace) -> int:
    model: str = args.model
    try:
        base = _monitor_url(args)
    except ConfigError as exc:
        print(f"libertai-monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        status, body = _get(f"{base}/v1/best/{quote(model, safe='')}", args.timeout)
    except (OSError, ValueError) as exc:
        print(f"libertai-monitor: cannot read {base}: {exc}", file=sys.stderr)
        return EXIT_NO_HOST
    if status == 404:
        print(f"libertai-monitor: the monitor does not know model {model!r}", file=sys.stderr)
        return EXIT_NO_HOST
    try:
        if status != 200:
            raise ValueError(f"HTTP {status}")
        answer = parse_answer(model, body)
        healthy = json.loads(body).get("host") is not None
    except ValueError as exc:
        print(f"libertai-monitor: {base} gave no usable answer ({exc})", file=sys.stderr)
        return EXIT_NO_HOST
    host = answer.order[0] if healthy and answer.order else None
    fallbacks = list(answer.order[1:] if host else answer.order)
    if args.json:
        out = {
            "model": model,
            "host": host,
            "fallbacks": fallbacks,
            "upstream_model": answer.upstream_model,
            "request_fields": answer.request_fields,
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"{model}: {host or 'no healthy host'}")
        for url in fallbacks:
            print(f"  fallback  {url}" if host else f"  try       {url}")
        if answer.upstream_model != model or answer.request_fields:
            extra = f" with {json.dumps(answer.request_fields)}" if answer.request_fields else ""
            print(f"  send model {answer.upstream_model!r}{extra}")
    return 0 if host else EXIT_NO_HOST
