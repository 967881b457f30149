"""`libertai-monitor maintenance add|list|end`: maintenance windows, written to the database that
every replica reads them from (`monitor.parts.windows`). There is no HTTP write endpoint: whoever
can reach the database decides.

TIME is ISO 8601 (a time without a zone is UTC) or `now`. Exit 0 on success, 2 for bad input (one
line on stderr), as every command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from monitor.commands.parsers import command
from monitor.config import ConfigError
from monitor.config_values import flag_type
from monitor.core.maintenance import Window
from monitor.core.urls import normalise_url
from monitor.store import Store

__all__ = ["add_parsers", "parse_time", "run"]

EXIT_BAD_INPUT = 2
Instant = float | Literal["now"]


def parse_time(raw: object) -> Instant:
    """`now`, or an ISO 8601 time as epoch seconds (UTC when it names no zone)."""
    text = str(raw).strip()
    if text.lower() == "now":
        return "now"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expected an ISO 8601 time (2026-12-24T08:00Z) or now") from None
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def _minutes(raw: object) -> float:
    try:
        value = float(str(raw))
    except ValueError:
        raise ValueError("expected a number of minutes") from None
    if not 0 < value < 10 * 365 * 24 * 60:
        raise ValueError("expected a positive number of minutes")
    return value


def _host(raw: object) -> str:
    return normalise_url(str(raw))


def _text(raw: object) -> str:
    text = str(raw).strip()
    if not text:
        raise ValueError("expected a non-empty reason")
    return text


def _window_id(raw: object) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise ValueError("expected a window id (a number, see `maintenance list`)") from None
    if value < 1:
        raise ValueError("expected a window id (a number, see `maintenance list`)")
    return value


def add_parsers(parent: argparse.ArgumentParser, flags: argparse.ArgumentParser) -> None:
    """`add`, `list` and `end` under `parent` (the `maintenance` command), each with `flags` (the
    database settings)."""
    sub = parent.add_subparsers(dest="maintenance_command", required=True, metavar="COMMAND")

    add = command(
        sub, "add", "take a host, or every host of a model, out of routing for a while", parents=[flags]
    )
    scope = add.add_mutually_exclusive_group(required=True)
    scope.add_argument("--host", type=flag_type(_host), metavar="URL", help="the host (every model of it)")
    scope.add_argument("--model", type=flag_type(_text), metavar="ID", help="the model (every host of it)")
    add.add_argument(
        "--start", type=flag_type(parse_time), default="now", metavar="TIME", help="ISO 8601 or now (default)"
    )
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--end", type=flag_type(parse_time), metavar="TIME", help="ISO 8601 or now")
    until.add_argument("--minutes", type=flag_type(_minutes), metavar="N", help="the window's length")
    add.add_argument("--reason", type=flag_type(_text), required=True, metavar="TEXT", help="shown to all")
    command(sub, "list", "the maintenance windows, oldest first", parents=[flags])
    end = command(sub, "end", "end a maintenance window now", parents=[flags])
    end.add_argument("id", type=flag_type(_window_id), metavar="ID", help="the window's id (see list)")


def window_times(args: argparse.Namespace, now: float) -> tuple[float, float]:
    """(start, end) of `maintenance add` (ConfigError: the window would end before it starts)."""
    start = now if args.start == "now" else float(args.start)
    if args.minutes is not None:
        end = start + float(args.minutes) * 60
    else:
        end = now if args.end == "now" else float(args.end)
    if not end > start:
        raise ConfigError("maintenance add: --end must be after --start")
    return start, end


async def run(args: argparse.Namespace, store: Store, now: float) -> int:
    """The `maintenance` subcommand in `args`, against `store`, at `now`."""
    if args.maintenance_command == "add":
        start, end = window_times(args, now)
        try:
            window_id = await store.add_window(args.host, args.model, start, end, args.reason)
        except ValueError as exc:
            raise ConfigError(f"maintenance add: {exc}") from None
        scope = f"host {args.host}" if args.host is not None else f"model {args.model}"
        print(f"maintenance window {window_id}: {scope} from {_at(start)} until {_at(end)}: {args.reason}")
        return 0
    if args.maintenance_command == "list":
        print(table(await store.load_windows(), now))
        return 0
    ended = await store.end_window(args.id, now)
    if ended is None:
        raise ConfigError(f"maintenance end: no window {args.id} (see maintenance list)")
    print(f"maintenance window {ended.id}: over since {_at(ended.until)}")
    return 0


def _at(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scope(w: Window) -> str:
    if w.host is not None and w.model is not None:
        return f"host {w.host} of model {w.model}"
    return f"host {w.host}" if w.host is not None else f"model {w.model}"


def table(windows: Sequence[Window], now: float) -> str:
    """The windows as `maintenance list` prints them."""
    if not windows:
        return "no maintenance windows"
    rows: list[tuple[Any, ...]] = [("ID", "STATE", "STARTS", "ENDS", "SCOPE", "REASON")]
    rows += [(w.id, w.state(now), _at(w.starts_at), _at(w.until), _scope(w), w.reason) for w in windows]
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
