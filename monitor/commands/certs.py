"""`libertai-monitor certs list|accept`: the certificates HTTPS hosts showed, and accepting a
changed one. Both read or write the database that every replica reads its pins from
(`monitor.parts.certs`), so an accepted certificate is trusted by all of them within seconds.

Exit 0 on success, 2 for bad input (one line on stderr), as every command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime

from monitor.commands.parsers import command
from monitor.config import ConfigError
from monitor.config_values import flag_type
from monitor.core.certs import HostCert
from monitor.core.urls import normalise_url
from monitor.store import Store

__all__ = ["add_parsers", "run", "table"]


def _host(raw: object) -> str:
    url = normalise_url(str(raw))
    if not url.startswith("https://"):
        raise ValueError("expected an https:// host URL (only HTTPS hosts show certificates)")
    return url


def add_parsers(parent: argparse.ArgumentParser, flags: argparse.ArgumentParser) -> None:
    """`list` and `accept` under `parent` (the `certs` command), each with `flags` (the database
    settings)."""
    sub = parent.add_subparsers(dest="certs_command", required=True, metavar="COMMAND")

    command(sub, "list", "the last certificate each HTTPS host showed, and its pin", parents=[flags])
    accept = command(
        sub, "accept", "trust the certificate a host shows now (with pin_certificates)", parents=[flags]
    )
    accept.add_argument("host", type=flag_type(_host), metavar="HOST", help="the host's URL, as listed")


async def run(args: argparse.Namespace, store: Store) -> int:
    """The `certs` subcommand in `args`, against `store`."""
    if args.certs_command == "list":
        print(table(await store.load_certs()))
        return 0
    record = await store.accept_cert(args.host)
    if record is None:
        raise ConfigError(f"certs accept: no certificate seen from {args.host} (see certs list)")
    print(f"{record.host}: certificate {record.sha256} accepted")
    return 0


def _at(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(records: Sequence[HostCert]) -> str:
    """The records as `certs list` prints them: a host whose pin differs gets no key."""
    if not records:
        return "no certificates seen"
    rows = [("HOST", "SHA256", "NOT AFTER", "CHANGED", "PIN")]
    for r in records:
        pin = "-" if r.pinned is None else ("pinned" if r.trusted else "OTHER: certs accept to trust")
        rows.append((r.host, r.sha256, _at(r.not_after), _at(r.changed_at), pin))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
