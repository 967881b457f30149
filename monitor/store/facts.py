"""Host facts in the database (`host_facts`): what the probing process learnt of each member beside
its health (`monitor.core.host_facts`), the latest of each (vantage, model, host, kind).

`FactWriter` is the write path: `submit` never blocks or raises; facts wait in memory, the latest of
each key only (so at most one per member and kind, whatever the rate), and one task upserts them
every `flush_interval_s`. While the database fails the same facts are tried again with backoff,
newer ones replacing older ones of the same key: nothing is dropped for a fault that clears. A fact
that cannot be encoded is dropped as `unstorable`, one the database refuses as `rejected`, and
what is still unwritten at close as `shutdown`, each counted in `dropped_by`.

`load_facts` reads a vantage's facts back; a row that does not decode is skipped and counted.
`delete_retired_facts` (the store's upkeep) deletes the facts of pairs that are no members any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import and_, delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.core.host_facts import FACT_KINDS, StoredFact, decode, encode
from monitor.core.results import ProbeKind
from monitor.logging import get_logger
from monitor.store import queries
from monitor.store.core import Core, describe, ms, rejects_rows
from monitor.store.engine import write_transaction
from monitor.store.restore import load_members
from monitor.store.schema import host_facts, hosts, models
from monitor.store.writer import REJECTED, SHUTDOWN, UNSTORABLE

log = get_logger("monitor.store")

FACT_DROP_REASONS: Final = (UNSTORABLE, REJECTED, SHUTDOWN)
_KINDS: Final = {k.value: k for k in FACT_KINDS}
_f = host_facts.c

Key = tuple[str, str, ProbeKind]  # (model, host, kind)


@dataclass(frozen=True, slots=True)
class FactRows:
    """A vantage's facts as read back, and how many rows were skipped (not readable)."""

    facts: list[StoredFact]
    skipped: int = 0


def _upsert(dialect: str) -> Any:
    ins = queries.dialect_insert(dialect, host_facts)
    return ins.on_conflict_do_update(
        index_elements=[_f.vantage, _f.model_id, _f.host_id, _f.kind],
        set_={"at": ins.excluded.at, "value": ins.excluded.value},
    )


class FactWriter:
    """The latest fact of each key, written in the background (see module doc)."""

    def __init__(
        self,
        core: Core,
        *,
        flush_interval_s: float,
        retry_initial_s: float,
        retry_max_s: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._core = core
        self._clock = clock
        self._flush_interval_s = flush_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._pending: dict[Key, tuple[int, str]] = {}  # key -> (at ms, JSON)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.dropped_by: Counter[str] = Counter()

    @property
    def depth(self) -> int:
        return len(self._pending)

    def submit(self, fact: StoredFact) -> None:
        """Queue `fact` (the latest of its key wins). Never blocks or raises."""
        if self._closing:
            self.dropped_by[SHUTDOWN] += 1
            return
        try:
            if not math.isfinite(fact.at):
                raise ValueError("time not finite")
            text = encode(fact.kind, fact.fact)
        except Exception:
            self.dropped_by[UNSTORABLE] += 1
            return
        self._pending[(fact.model, fact.host, fact.kind)] = (ms(fact.at), text)
        self.start()

    def start(self) -> None:
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: started at the next submit
                self._task = asyncio.get_running_loop().create_task(self._run(), name="monitor.store.facts")

    async def flush(self) -> None:
        """Write what is pending now (StoreError-free: a failure keeps it pending and raises it)."""
        await self._write_pending()

    async def close(self, grace_s: float) -> None:
        """Write what is pending (waiting at most `grace_s`), then stop; the rest is dropped."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(grace_s):
                await self._write_pending()
        if self._pending:
            self.dropped_by[SHUTDOWN] += len(self._pending)
            self._pending.clear()

    async def _run(self) -> None:
        delay = self._retry_initial_s
        while True:
            await self._clock.sleep(self._flush_interval_s)
            if not self._pending:
                continue
            try:
                await self._write_pending()
                delay = self._retry_initial_s
            except Exception as error:
                log.warning(
                    "writing host facts failed, retrying",
                    facts=len(self._pending),
                    error=describe(error),
                    retry_in_s=round(delay, 1),
                )
                await self._core.recover_from(error)
                await self._clock.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)

    async def _write_pending(self) -> None:
        batch, self._pending = self._pending, {}
        try:
            await self._write(batch)
        except Exception as error:
            self._core.record_failure(error, batch=False)
            if rejects_rows(error):
                await self._write_alone(batch)
                return
            self._pending = batch | self._pending  # newer facts of a key stay the newer
            raise
        self._core.record_success(batch=False)
        self.written += len(batch)

    async def _write_alone(self, batch: dict[Key, tuple[int, str]]) -> None:
        """After the database refused a batch for its data: each fact alone, the refused dropped."""
        for key, row in batch.items():
            try:
                await self._write({key: row})
                self.written += 1
            except Exception as error:
                if not rejects_rows(error):
                    self._pending.setdefault(key, row)
                    raise
                self.dropped_by[REJECTED] += 1
                log.error("dropped a host fact the database rejected", error=describe(error))

    async def _write(self, batch: dict[Key, tuple[int, str]]) -> None:
        if not batch:
            return
        core = self._core
        async with write_transaction(core.engine) as conn:
            new = await core.ensure_ids(conn, {k[0] for k in batch}, {k[1] for k in batch})
            model_ids, host_ids = core.model_ids | new[0], core.host_ids | new[1]
            rows = [
                {
                    "vantage": core.vantage,
                    "model_id": model_ids[model],
                    "host_id": host_ids[host],
                    "kind": kind.value,
                    "at": at,
                    "value": value,
                }
                for (model, host, kind), (at, value) in batch.items()
            ]
            await conn.execute(_upsert(core.dialect), rows)
        core.commit_ids(new)


async def load_facts(core: Core, vantage: str | None = None) -> FactRows:
    """Every fact of `vantage` (this store's own by default); unreadable rows skipped, counted."""
    of = core.vantage_of(vantage)

    def run(conn: Connection) -> FactRows:
        stmt = (
            select(models.c.name, hosts.c.url, _f.kind, _f.at, _f.value)
            .select_from(host_facts)
            .join(models, models.c.id == _f.model_id)
            .join(hosts, hosts.c.id == _f.host_id)
            .where(_f.vantage == of)
        )
        facts: list[StoredFact] = []
        skipped = 0
        for model, host, kind_name, at, value in conn.execute(stmt):
            kind = _KINDS.get(kind_name)
            try:
                if kind is None:
                    raise ValueError(f"unknown kind {kind_name!r}")
                facts.append(StoredFact(model, host, kind, int(at) / 1000, decode(kind, value)))
            except ValueError as error:
                skipped += 1
                log.warning(
                    "skipped a stored host fact", model=model, host=host, kind=kind_name, error=str(error)
                )
        return FactRows(facts, skipped)

    return await core.read("reading host facts", run)


async def read_facts(engine: AsyncEngine, vantage: str) -> FactRows:
    """`load_facts` on an engine alone (a follower reads its leader's facts so)."""
    return await load_facts(Core(engine, vantage))


async def delete_retired_facts(core: Core, vantages: Sequence[str]) -> int:
    """Delete the facts of every (model, host) that is no member of its vantage now."""
    deleted = 0
    for vantage in vantages:
        members = await load_members(core, vantage)

        def stored(conn: Connection, vantage: str = vantage) -> list[tuple[int, int, str, str]]:
            stmt = (
                select(_f.model_id, _f.host_id, models.c.name, hosts.c.url)
                .select_from(host_facts)
                .join(models, models.c.id == _f.model_id)
                .join(hosts, hosts.c.id == _f.host_id)
                .where(_f.vantage == vantage)
                .distinct()
            )
            return [(int(m), int(h), str(mn), str(hu)) for m, h, mn, hu in conn.execute(stmt)]

        gone = [
            (m, h)
            for m, h, model, host in await core.read("planning host facts retention", stored)
            if host not in members.get(model, set())
        ]
        if not gone:
            continue

        async def run(
            conn: AsyncConnection, vantage: str = vantage, gone: list[tuple[int, int]] = gone
        ) -> int:
            count = 0
            for model_id, host_id in gone:
                result = await conn.execute(
                    delete(host_facts).where(
                        and_(_f.vantage == vantage, _f.model_id == model_id, _f.host_id == host_id)
                    )
                )
                count += max(result.rowcount or 0, 0)
            return count

        deleted += await core.write("deleting retired members' host facts", run)
    return deleted
