"""Membership changes of a huge listing are recorded in batches, with turns of the loop between
them. No timings: the test counts the turns another task got."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from monitor.core.membership import MembershipChange
from monitor.parts.persistence import MEMBERSHIP_BATCH, Persistence
from monitor.store import DiscoveryRecord

CHANGES = 10 * MEMBERSHIP_BATCH


class _Writer:
    """Records what it is asked to write and, at each batch, how many turns another task had."""

    def __init__(self, turns: list[int]) -> None:
        self.rows: list[MembershipChange] = []
        self.turns_at_batch: list[int] = []
        self._turns = turns

    async def record_discovery(self, record: DiscoveryRecord) -> None:
        return None

    async def record_membership(self, events: Sequence[MembershipChange]) -> None:
        self.turns_at_batch.append(self._turns[0])
        self.rows.extend(events)
        await asyncio.sleep(0)  # a real store awaits its database here

    async def save_best(self, model: str, host: str | None, at: float) -> None:
        return None


async def test_ten_thousand_membership_changes_are_recorded_with_turns_of_the_loop_between_batches() -> None:
    turns = [0]

    async def spin() -> None:
        while True:
            await asyncio.sleep(0)
            turns[0] += 1

    writer = _Writer(turns)
    spinner = asyncio.get_running_loop().create_task(spin())
    changes = [MembershipChange(1.0, "m", f"http://h{i}.example:8080", "joined") for i in range(CHANGES)]
    persistence = Persistence(writer)
    persistence.members_changed(changes)
    await persistence.drain(within_s=60.0)  # an upper bound only: the fake writer never waits
    spinner.cancel()
    assert [(r.host, r.event) for r in writer.rows] == [(c.host, c.event) for c in changes]
    assert len(writer.turns_at_batch) == CHANGES // MEMBERSHIP_BATCH
    assert all(a < b for a, b in zip(writer.turns_at_batch, writer.turns_at_batch[1:], strict=False))
