"""Attribute long event-loop iterations (standard asyncio loop) to the callbacks that ran in them."""
from __future__ import annotations
import asyncio, asyncio.base_events, asyncio.events, gc, time
from collections import defaultdict

THRESH = 0.1
_acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
_gc = [0.0, 0.0]

def _key(cb) -> str:
    owner = getattr(cb, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return "task " + getattr(coro, "__qualname__", repr(coro))
    return getattr(cb, "__qualname__", repr(cb))

_orig_run = asyncio.events.Handle._run
def _run(self):
    t0 = time.perf_counter()
    try:
        return _orig_run(self)
    finally:
        a = _acc[_key(self._callback)]
        a[0] += time.perf_counter() - t0; a[1] += 1
asyncio.events.Handle._run = _run

def _gccb(phase, info):
    if phase == "start": _gc[1] = time.perf_counter()
    else: _gc[0] += time.perf_counter() - _gc[1]
gc.callbacks.append(_gccb)

_orig_once = asyncio.base_events.BaseEventLoop._run_once
def _run_once(self):
    _acc.clear(); _gc[0] = 0.0
    sel = self._selector
    t0 = time.perf_counter()
    _orig_once(self)
    dt = time.perf_counter() - t0
    if dt > THRESH:
        top = sorted(_acc.items(), key=lambda kv: -kv[1][0])[:6]
        ran = sum(v[0] for v in _acc.values())
        print(f"WHY iteration {dt*1000:.0f} ms: callbacks {ran*1000:.0f} ms in {sum(v[1] for v in _acc.values())}, gc {_gc[0]*1000:.0f} ms; "
              + "; ".join(f"{k} {v[0]*1000:.0f}ms x{v[1]}" for k, v in top), flush=True)
asyncio.base_events.BaseEventLoop._run_once = _run_once
