"""A follower keeps up with its leader: the results and membership changes the leader writes, read
back from the database, go into this process's fleet; it probes nothing and writes nothing.

Results go through `Recorder.take_in` (the health state machine, as the leader applied them,
neither counted nor stored). A result is taken in once: one whose start is not after the latest
sample of its kind that the entry holds is already there (restored at start, or probed by this
process while it led). That holds because a target never runs twice at once, so the results of one
(model, host, kind) start and end in order; it lets every tail start with a generous overlap.

Membership follows the leader's events: `joined` adds a host, `retired` removes it, `left` keeps it
(the leader still probes and reports a host in its grace period). The leader's best hosts are read
back on every poll and become this process's previous best, so that its ranking (with hysteresis)
answers as the leader's does. The leader's host facts (identity fingerprints, paths, throughput:
`monitor.core.host_facts`) are read every `FACTS_EVERY_S` and kept with `Recorder.take_fact`, so
that a follower judges identity, shows paths and throughput, and ranks as the leader does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.core.clock import Clock
from monitor.core.keys import HostKey
from monitor.core.membership import MembershipChange
from monitor.core.results import ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.logging import get_logger
from monitor.parts.best_hosts import BestHosts
from monitor.parts.fleet import Fleet
from monitor.parts.recorder import Recorder
from monitor.store import MembershipTail, ResultTail, StoreError, TailCursor, load_best, read_facts

log = get_logger("monitor.ha.follower")

POLL_S = 0.5  # the bound on a follower's lag is 2 s: the leader's flush (1 s) plus this
OVERLAP_S = 60.0  # re-read at the start of a tail: results still being written by a leader
_SAME_MS = 0.001  # the database keeps times to the millisecond
FACTS_EVERY_S = 5.0  # facts change every few minutes at most: a full read now and then is enough
_CATCH_UP_READS = 100  # batches read at most before leading (500,000 results: far more than a lag)


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a follower starts: the newest membership event and the time, read before the
    state it follows from was read (restored or probed), so nothing falls between."""

    membership_id: int
    at: float


def already_in(fleet: Fleet, result: ProbeResult) -> bool:
    """True when the fleet's health holds this result already (see the module doc)."""
    if result.kind is ProbeKind.AUTH:
        models = fleet.models_of(result.host)
        h = fleet.health.get(HostKey(models[0], result.host)) if models else None
    else:
        h = fleet.health.get(HostKey(result.model, result.host))
    if h is None:
        return False
    latest = h.samples.latest(result.kind)
    return latest is not None and result.started_at <= latest + _SAME_MS


def listing_after(
    listing: Mapping[str, set[str]], changes: Sequence[MembershipChange]
) -> dict[str, set[str]]:
    """The members after the leader's membership events, in the order recorded (pure)."""
    out = {m: set(h) for m, h in listing.items()}
    for c in changes:
        if c.event == "joined":
            out.setdefault(c.model, set()).add(c.host)
        elif c.event == "retired":
            out.get(c.model, set()).discard(c.host)
    return {m: h for m, h in out.items() if h}


class Follower:
    """Reads the leader's writes of one vantage every `poll_s` while started (see module doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        vantage: str,
        fleet: Fleet,
        recorder: Recorder,
        best: BestHosts,
        clock: Clock,
        *,
        poll_s: float = POLL_S,
        on_read: Callable[[float], None] | None = None,
    ) -> None:
        self._engine = engine
        self._vantage = vantage
        self._fleet = fleet
        self._recorder = recorder
        self._best = best
        self._clock = clock
        self._poll_s = poll_s
        self._on_read = on_read  # the newest result start read, after each read (lag metrics, tests)
        self._results: ResultTail | None = None
        self._members: MembershipTail | None = None
        self._task: asyncio.Task[None] | None = None
        self.taken_in = 0  # results taken in so far (tests, logs)
        self.facts_skipped = 0  # stored facts that could not be read (logged by the store)
        self._facts_read_at: float | None = None  # the clock's monotonic seconds

    async def mark(self) -> Mark:
        """Where a tail started now would start (call before reading the state it follows)."""
        latest = await MembershipTail(self._engine, vantage=self._vantage).latest_id()
        return Mark(latest, self._clock.time())

    @property
    def running(self) -> bool:
        return self._task is not None

    def open(self, mark: Mark) -> None:
        """Read from `mark` on (`read_once`); `start` does this, then polls."""
        self._results = ResultTail(
            self._engine, TailCursor.starting_at(mark.at - OVERLAP_S), vantage=self._vantage
        )
        self._members = MembershipTail(self._engine, mark.membership_id, vantage=self._vantage)

    def start(self, mark: Mark | None = None) -> None:
        """Follow from `mark` (None: from now) in the background until `stop`. Returns at once:
        a leader demoted because the database is out of reach must not wait on it here."""
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._run(mark, self._clock.time()), name="follower")

    async def stop(self, *, catch_up: bool = True) -> None:
        """Stop following; with `catch_up`, first read what the leader wrote up to now (a
        follower about to lead starts from everything its leader wrote)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if catch_up:
            try:
                for _ in range(_CATCH_UP_READS):
                    if not await self.read_once():
                        break
            except StoreError as error:
                log.warning("could not catch up with the leader's results", error=str(error))

    async def _run(self, mark: Mark | None, at: float) -> None:
        if mark is None:
            try:
                mark = await self.mark()
            except StoreError:
                # Every membership event from the first: applied again, they change nothing.
                mark = Mark(0, at)
        self.open(mark)
        failing = False
        while True:
            try:
                more = await self.read_once()
                if failing:
                    log.info("reading the leader's results again")
                failing = False
            except StoreError as error:  # the database is away: keep serving what is known
                if not failing:  # once per outage, not once per poll
                    log.warning("could not read the leader's results", error=str(error))
                failing, more = True, False
            if not more:
                await self._clock.sleep(self._poll_s)

    async def read_once(self) -> bool:
        """One poll: membership changes, new results, best hosts. True if results are left."""
        results, members = self._results, self._members
        if results is None or members is None:
            return False
        changes = await members.read()
        if changes:
            self._apply_members(changes)
        read = await results.read()
        for result in read:
            if not already_in(self._fleet, result):
                self._recorder.take_in(result)
                self.taken_in += 1
        if read and self._on_read is not None:
            self._on_read(max(r.started_at for r in read))
        await self._read_facts()
        saved = await load_best(self._engine, self._vantage)
        self._best.restore({m: host for m, (host, _) in saved.items()}, self._fleet.models())
        return results.more

    async def _read_facts(self) -> None:
        now = self._clock.monotonic()
        if self._facts_read_at is not None and now - self._facts_read_at < FACTS_EVERY_S:
            return
        rows = await read_facts(self._engine, self._vantage)
        self._facts_read_at = now
        self.facts_skipped += rows.skipped
        for fact in rows.facts:
            self._recorder.take_fact(fact)

    def _apply_members(self, changes: Sequence[MembershipChange]) -> None:
        current = {m: set(hosts) for m, hosts in self._fleet.membership.models.items()}
        listing = listing_after(current, changes)
        # Retired means gone now: the leader already waited for the grace period.
        finish(self._fleet.apply_listing(listing, self._clock.time(), grace_s=0.0))
