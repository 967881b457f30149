"""Work in steps: run at once or on the loop, with turns of the loop between slices."""

from __future__ import annotations

import asyncio

from monitor.core.steps import Steps, finish, for_each, mapped
from monitor.slices import run_in_slices
from tests.turns import Turns


def _counting(n: int) -> Steps[int]:
    for _ in range(n):
        yield None
    return n


def test_finishing_steps_at_once_returns_their_result() -> None:
    assert finish(_counting(5)) == 5
    assert finish(mapped(range(7), lambda x: x * x, per_step=2)) == [x * x for x in range(7)]


def test_mapping_takes_a_step_every_so_many_items() -> None:
    work = mapped(range(10), str, per_step=3)
    assert sum(1 for _ in iter(lambda: next(work, "end"), "end")) == 3


def test_each_item_is_visited_in_order_a_step_every_so_many_items() -> None:
    seen: list[int] = []
    work = for_each(range(10), seen.append, per_step=4)
    assert next(work) is None and seen == [0, 1, 2, 3]
    assert finish(work) is None and seen == list(range(10))


async def test_with_no_slice_the_loop_turns_after_every_step() -> None:
    with Turns() as turns:
        await asyncio.sleep(0)
        assert await run_in_slices(_counting(20), 0.0) == 20
    assert turns.count >= 20


async def test_cancelled_steps_are_closed() -> None:
    closed = asyncio.Event()

    def endless() -> Steps[None]:
        try:
            while True:
                yield None
        finally:
            closed.set()

    task = asyncio.create_task(run_in_slices(endless(), 0.0))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert closed.is_set()
