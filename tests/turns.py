"""Counting the turns of the event loop that another task gets while something runs: how the
tests say "the loop kept turning" without timing anything."""

from __future__ import annotations

import asyncio


class Turns:
    """`with Turns() as turns: ...`, then `turns.count`."""

    def __init__(self) -> None:
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def _spin(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.count += 1

    def __enter__(self) -> Turns:
        self._task = asyncio.get_running_loop().create_task(self._spin())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
