"""What a follower reads to keep up with its leader: the probe results written since its last read
(`ResultTail`), the membership changes since its last read (`MembershipTail`), and the best hosts.

Results have no sequence number (the table is clustered on (model, host, at, kind) and `at` is when
a probe STARTED), and a result is written when it ends: a completion that started before a health
probe is written after it. So the cursor is a time watermark with an overlap: every read asks for
the results that started at or after `watermark - overlap`, and drops those it has already returned
(it keeps the keys of the overlap window). Nothing is missed as long as a result reaches the
database within `overlap_s` of a result that started after it (at least the probe timeout plus the
writer's flush interval; the default, 60 s, covers the default 10 s timeout with room), and
nothing is returned twice (the keys are the primary key).

Cost: each read first counts the window's rows per second (one small GROUP BY) and re-reads only the
seconds whose count differs from what it has returned. The `at >= ...` scan wants an index on
(vantage, at) of probe_results once the history is large (a migration; not in this branch). The
cursor is opaque to callers so that a sequence column can replace the watermark without changing
them.

Vantage: the tables have no `vantage` column yet on this branch; when they have one, reads keep the
rows of the vantage asked for (`_vantage_filter`), otherwise the argument is ignored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from monitor.core.membership import MEMBERSHIP_EVENTS, MembershipChange, MembershipEvent
from monitor.core.results import ProbeResult
from monitor.store.codes import KIND_BY_CODE, OUTCOME_BY_CODE
from monitor.store.core import Core, ms
from monitor.store.schema import best_hosts, hosts, membership_events, models, probe_results

__all__ = ["MembershipTail", "ResultTail", "TailCursor", "load_best"]

DEFAULT_OVERLAP_S: Final = 60.0
DEFAULT_BATCH: Final = 5000

RowKey = tuple[int, int, int, int]  # (model_id, host_id, at ms, kind code): the results' primary key


@dataclass(frozen=True, slots=True)
class TailCursor:
    """Where a result tail stands: results that started before `since_ms` have all been returned;
    of the later ones, those in `seen` have. `high_ms` is the latest start returned."""

    since_ms: int
    high_ms: int
    seen: frozenset[RowKey]

    @classmethod
    def starting_at(cls, at: float) -> TailCursor:
        """Everything that started at or after `at` (epoch seconds) is still to be read."""
        return cls(since_ms=ms(at), high_ms=ms(at), seen=frozenset())


# A stored event this version does not name is skipped, not guessed at.
_EVENT_NAMED: Final[dict[str, MembershipEvent]] = {e: e for e in MEMBERSHIP_EVENTS}


_S = TypeVar("_S", bound="Select[Any]")


def _vantage_filter(stmt: _S, table: Table, vantage: str | None) -> _S:
    # The one place where the vantage column narrows every tail read.
    if vantage is not None and "vantage" in table.c:
        return stmt.where(table.c["vantage"] == vantage)
    return stmt


class _Names:
    """id -> name caches filled on demand: a follower polls often and names rarely change."""

    def __init__(self) -> None:
        self.models: dict[int, str] = {}
        self.hosts: dict[int, str] = {}

    def fill(self, conn: Connection, model_ids: set[int], host_ids: set[int]) -> None:
        missing_m = model_ids - self.models.keys()
        missing_h = host_ids - self.hosts.keys()
        if missing_m:
            rows = conn.execute(select(models.c.id, models.c.name).where(models.c.id.in_(missing_m)))
            self.models.update({int(i): str(n) for i, n in rows})
        if missing_h:
            rows = conn.execute(select(hosts.c.id, hosts.c.url).where(hosts.c.id.in_(missing_h)))
            self.hosts.update({int(i): str(u) for i, u in rows})


class ResultTail:
    """The probe results written since the last `read`, oldest start first, each exactly once."""

    def __init__(
        self,
        engine: AsyncEngine,
        cursor: TailCursor,
        *,
        vantage: str | None = None,
        overlap_s: float = DEFAULT_OVERLAP_S,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        if batch < 1 or overlap_s < 0:
            raise ValueError("batch must be at least 1 and overlap_s not negative")
        self._core = Core(engine)
        self.cursor = cursor
        self.vantage = vantage
        self._overlap_ms = ms(overlap_s)
        self._batch = batch
        self._names = _Names()
        self.more = False  # the last read stopped at `batch`: read again at once
        self._counted: tuple[TailCursor | None, Counter[int]] = (None, Counter())

    async def read(self) -> list[ProbeResult]:
        """The next batch of new results (at most `batch`); advances the cursor."""
        cursor = self.cursor
        if self._counted[0] is not cursor:  # counted once per cursor, not on every idle poll
            self._counted = (cursor, Counter(key[2] // 1000 for key in cursor.seen))
        seen_per_second = self._counted[1]

        def run(conn: Connection) -> tuple[list[tuple[Any, ...]], bool]:
            r = probe_results.c
            second = r.at // 1000
            # First the number of rows per second of the window, to re-read only the seconds that
            # gained rows since the last read instead of the whole window.
            counts = select(second, func.count()).where(r.at >= cursor.since_ms).group_by(second)
            counts = _vantage_filter(counts, probe_results, self.vantage)
            changed = sorted(int(s) for s, n in conn.execute(counts) if n != seen_per_second.get(int(s), 0))
            if not changed:
                return [], False
            # Every seen key of those seconds may come back: that many rows plus `batch` new ones.
            limit = sum(seen_per_second.get(s, 0) for s in changed) + self._batch + 1
            stmt = select(
                r.model_id, r.host_id, r.at, r.kind, r.outcome, r.status, r.connect_ms, r.ttft_ms, r.total_ms
            ).where(r.at >= cursor.since_ms, second.in_(changed))
            stmt = _vantage_filter(stmt, probe_results, self.vantage)
            stmt = stmt.order_by(r.at, r.model_id, r.host_id, r.kind).limit(limit)
            rows = [tuple(row) for row in conn.execute(stmt)]
            fresh = [row for row in rows if (row[0], row[1], row[2], row[3]) not in cursor.seen]
            fresh = fresh[: self._batch]
            self._names.fill(conn, {int(row[0]) for row in fresh}, {int(row[1]) for row in fresh})
            return fresh, len(rows) == limit or len(fresh) == self._batch

        fresh, more = await self._core.read("reading new results", run)
        self.more = more
        self.cursor = self._advance(cursor, fresh)
        return self._decode(fresh)

    def _advance(self, cursor: TailCursor, fresh: Sequence[tuple[Any, ...]]) -> TailCursor:
        if not fresh:
            return cursor
        high = max(cursor.high_ms, max(int(row[2]) for row in fresh))
        # Never move back: keys before the old watermark were dropped from `seen`.
        since = max(cursor.since_ms, high - self._overlap_ms)
        new_keys = ((int(m), int(h), int(at), int(k)) for m, h, at, k, *_ in fresh)
        seen = frozenset(key for key in (*cursor.seen, *new_keys) if key[2] >= since)
        return TailCursor(since_ms=since, high_ms=high, seen=seen)

    def _decode(self, rows: Sequence[tuple[Any, ...]]) -> list[ProbeResult]:
        out: list[ProbeResult] = []
        for m, h, at, k, o, status, c, tt, tot in rows:
            kind = KIND_BY_CODE.get(k)
            outcome = OUTCOME_BY_CODE.get(o)
            if kind is None or outcome is None:  # written by a newer version: skip, don't guess
                continue
            out.append(
                ProbeResult(
                    self._names.models[m], self._names.hosts[h], kind, outcome, at / 1000, status, c, tt, tot
                )
            )
        return out


class MembershipTail:
    """Membership events recorded since the last `read`, in the order they were recorded
    (their autoincrement id: the leader records them from one task, one transaction at a time)."""

    def __init__(
        self,
        engine: AsyncEngine,
        after_id: int = 0,
        *,
        vantage: str | None = None,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self._core = Core(engine)
        self.after_id = after_id
        self.vantage = vantage
        self._batch = batch

    async def latest_id(self) -> int:
        """The id of the newest event now: start a tail here after restoring the members."""

        def run(conn: Connection) -> int:
            e = membership_events.c
            stmt = _vantage_filter(
                select(e.id).order_by(e.id.desc()).limit(1), membership_events, self.vantage
            )
            return int(conn.execute(stmt).scalar() or 0)

        return await self._core.read("reading the latest membership event", run)

    async def read(self) -> list[MembershipChange]:
        after = self.after_id

        def run(conn: Connection) -> tuple[list[MembershipChange], int]:
            e = membership_events.c
            stmt = (
                select(e.id, e.at, models.c.name, hosts.c.url, e.event)
                .join(models, models.c.id == e.model_id)
                .join(hosts, hosts.c.id == e.host_id)
                .where(e.id > after)
            )
            stmt = _vantage_filter(stmt, membership_events, self.vantage).order_by(e.id).limit(self._batch)
            changes: list[MembershipChange] = []
            last = after
            for row in conn.execute(stmt):
                last = int(row[0])
                event = _EVENT_NAMED.get(str(row[4]))
                if event is not None:
                    changes.append(MembershipChange(int(row[1]) / 1000, str(row[2]), str(row[3]), event))
            return changes, last

        changes, self.after_id = await self._core.read("reading membership changes", run)
        return changes


async def load_best(engine: AsyncEngine, vantage: str | None = None) -> dict[str, tuple[str | None, float]]:
    """model -> (best host or None, since when, epoch seconds): the leader's latest choices."""

    def run(conn: Connection) -> dict[str, tuple[str | None, float]]:
        stmt = (
            select(models.c.name, hosts.c.url, best_hosts.c.since)
            .select_from(best_hosts)
            .join(models, models.c.id == best_hosts.c.model_id)
            .outerjoin(hosts, hosts.c.id == best_hosts.c.host_id)
        )
        stmt = _vantage_filter(stmt, best_hosts, vantage)
        return {
            str(row[0]): (None if row[1] is None else str(row[1]), int(row[2]) / 1000)
            for row in conn.execute(stmt)
        }

    return await Core(engine).read("reading best hosts", run)
