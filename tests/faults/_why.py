"""Name what ran in every long turn of asyncio's own event loop (imported for `--why`).

A turn of the loop runs every callback that was ready when it began; a long turn is a stall, and
asyncio's debug mode names only a single callback over its threshold, never a turn made long by
many short ones (200 probe steps of a millisecond each) or by the collector running between them.
Importing this module patches `Handle._run` and `BaseEventLoop._run_once` of the standard loop (not
uvloop's) so that each turn over `THRESHOLD_S` prints its length, the time its callbacks took,
garbage collection within it, and the callbacks that took most, grouped by task coroutine or
function. A measuring aid, never imported by the service or the tests.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import gc
import time
from collections import defaultdict
from typing import Any

THRESHOLD_S = 0.1

_spent: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # name -> [seconds, calls]
_gc = {"seconds": 0.0, "began": 0.0}


def _name(callback: Any) -> str:
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return "task " + str(getattr(coro, "__qualname__", repr(coro)))
    return str(getattr(callback, "__qualname__", repr(callback)))[:80]


_handle_run = asyncio.events.Handle._run
_run_once = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]


def _timed_run(self: asyncio.events.Handle) -> None:
    t0 = time.perf_counter()
    try:
        _handle_run(self)
    finally:
        spent = _spent[_name(self._callback)]  # type: ignore[attr-defined]
        spent[0] += time.perf_counter() - t0
        spent[1] += 1


def _collecting(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc["began"] = time.perf_counter()
    else:
        _gc["seconds"] += time.perf_counter() - _gc["began"]


def _timed_turn(self: asyncio.base_events.BaseEventLoop) -> None:
    _spent.clear()
    _gc["seconds"] = 0.0
    t0 = time.perf_counter()
    _run_once(self)
    turn = time.perf_counter() - t0
    if turn > THRESHOLD_S:
        top = sorted(_spent.items(), key=lambda kv: -kv[1][0])[:6]
        ran = sum(v[0] for v in _spent.values())
        calls = sum(int(v[1]) for v in _spent.values())
        named = "; ".join(f"{k} {v[0] * 1000:.0f} ms x{int(v[1])}" for k, v in top)
        print(
            f"WHY turn {turn * 1000:.0f} ms: callbacks {ran * 1000:.0f} ms in {calls}, "
            f"gc {_gc['seconds'] * 1000:.0f} ms; {named}",
            flush=True,
        )


asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]
asyncio.base_events.BaseEventLoop._run_once = _timed_turn  # type: ignore[attr-defined]
gc.callbacks.append(_collecting)
