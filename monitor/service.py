"""The running monitor: owns the state and connects discovery, probes, health, ranking and the store.

Decisions are made by pure functions elsewhere (`health.apply`, `ranking.rank`,
`membership.apply_listing`); this module only moves values between them and does the I/O:
it keeps one dict of health states, swaps in a fresh `Snapshot` when something changed, logs one
event per state change, and hands every probe result to the store's writer.
"""

from __future__ import annotations

import asyncio
import fnmatch
import gc
import time
from collections import Counter
from collections.abc import Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from monitor import __version__
from monitor.config import Settings
from monitor.discovery import alias_of, check_gateway_key, fetch_models
from monitor.health import (
    Evidence,
    HealthPolicy,
    HostHealth,
    apply,
    needs_confirmation,
    new_host,
    replay_evidence,
)
from monitor.http import make_session
from monitor.logging import get_logger
from monitor.membership import Membership, MembershipChange, apply_listing
from monitor.probes import Prober
from monitor.ranking import ModelRanking, RankingPolicy, ScoreMemo, rank
from monitor.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.scheduler import ProbeDispatcher, SchedulerStats, add_interval_job, make_job_scheduler
from monitor.secret import Secret
from monitor.snapshot import (
    DiscoveryStatus,
    HostView,
    ModelView,
    Snapshot,
    host_view,
    model_view,
    with_aliases,
)
from monitor.store import DiscoveryRecord, MembershipEvent, Store
from monitor.throughput import ThroughputProbes, probe_throughput
from monitor.upstream import is_reasoning

log = get_logger("monitor.service")

# Targets: (model, host, kind). The host auth check is per host, so its model is "".
Target = tuple[str, str, ProbeKind]
HOST_WIDE = ""
_SERVING = (ProbeKind.COMPLETION, ProbeKind.EMBEDDING)
_RESTORE_HORIZON_S = 24 * 3600.0
_PUBLISH_EVERY_S = 0.25
_VIEWS_PER_STEP = 100  # host views per publishing step: about a millisecond


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: Mapping[str, str]


def probe_kinds(model: str, settings: Settings) -> tuple[ProbeKind, ...]:
    """Which probes a model gets: image and audio only free ones; billed ones only when enabled."""
    if any(fnmatch.fnmatchcase(model, g) for g in settings.health_only_models):
        return (ProbeKind.HEALTH,)
    if not settings.completion_probes or settings.api_key is None:
        return (ProbeKind.HEALTH,)
    if any(fnmatch.fnmatchcase(model, g) for g in settings.embedding_models):
        return (ProbeKind.HEALTH, ProbeKind.EMBEDDING)
    return (ProbeKind.HEALTH, ProbeKind.COMPLETION)


class Monitor:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store
        self.health_policy = HealthPolicy(
            unhealthy_threshold=settings.unhealthy_threshold,
            healthy_threshold=settings.healthy_threshold,
            window=settings.window,
            ejection_base_s=settings.ejection_time,
            ejection_max_s=settings.ejection_max_time,
        )
        self.ranking_policy = RankingPolicy(
            margin=settings.ranking_margin,
            min_samples=settings.ranking_min_samples,
            half_life_s=settings.ranking_half_life,
        )
        self.membership = Membership()
        self.aliases: dict[str, str] = {}  # "-thinking" alias -> base id
        self.health: dict[tuple[str, str], HostHealth] = {}
        self.best: dict[str, str | None] = {}
        self.rankings: dict[str, ModelRanking] = {}
        self._model_views: dict[str, ModelView] = {}  # base ids, as last ranked
        self.views: dict[tuple[str, str], HostView] = {}
        self.snapshot = Snapshot(generated_at=time.time(), models={})
        self.discovery = DiscoveryStatus()
        self.key_outcome: Outcome | None = None
        self.probe_counts: Counter[tuple[str, str, str, str]] = Counter()
        self.sched_stats = SchedulerStats()
        self.started_at = time.time()
        self.build_info = {"version": __version__}
        self._dirty: set[tuple[str, str]] = set()
        self._dirty_models: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._prober: Prober | None = None
        self._dispatcher: ProbeDispatcher[Target] | None = None
        self._jobs = make_job_scheduler(self.sched_stats)
        self._tasks: list[asyncio.Task[None]] = []  # loops, cancelled at stop
        self._writes: set[asyncio.Task[None]] = set()  # one-shot store writes, awaited at stop
        self._discovered_once = False
        self._auth_targets: set[Target] = set()
        self._models_of_host: dict[str, list[str]] = {}
        self._hosts_of_model: dict[str, list[str]] = {}
        self._score_memo: dict[str, ScoreMemo] = {}
        self.throughput: ThroughputProbes | None = None  # made by prepare (needs the session)

    # ----------------------------------------------------------------- life cycle
    async def prepare(self) -> None:
        """Open the HTTP session and restore state from history: answers are ready after this."""
        s = self.settings
        self._session = make_session(
            ca_bundle=s.ca_bundle,
            limit=s.max_concurrency,
            user_agent=f"libertai-monitor/{__version__}",
            keepalive_s=s.probe_interval * 2.5,
        )
        self._prober = Prober(self._session, _require_key(s), s.probe_timeout, allow=s.allowed_hosts)
        session, key = self._session, _require_key(s)
        # Throughput (issue 11): billed, so only of up hosts; not health evidence, only shown.
        self.throughput = ThroughputProbes(
            lambda model, host: probe_throughput(
                session,
                key,
                host,
                model,
                tokens=s.throughput_tokens,
                timeout_s=s.probe_timeout,
                allow=s.allowed_hosts,
                reasoning=is_reasoning(model, self.aliases),
            ),
            s.throughput_interval,
            wanted=lambda k: (h := self.health.get(k)) is not None and h.state is HostState.UP,
            on_result=lambda r: self._dirty.add((r.model, r.host)),
            limit=max(1, s.max_concurrency // 4),
            jitter=s.jitter,
        )
        if self.store is not None:
            await self._restore()
        self.publish(force=True)

    async def run(self) -> None:
        """Start discovery, probing and the periodic jobs (after `prepare`)."""
        s = self.settings
        self._dispatcher = ProbeDispatcher(
            self._run_target, self._interval_of, limit=s.max_concurrency, jitter=s.jitter
        )
        self._dispatcher.stats = self.sched_stats
        self._tasks.append(asyncio.create_task(self._dispatcher.run_forever(), name="probe-dispatcher"))
        self._tasks.append(asyncio.create_task(self._publisher(), name="snapshot-publisher"))
        if self.throughput is not None:
            self._tasks.append(asyncio.create_task(self.throughput.run_forever(), name="throughput-probes"))
        self._sync_members()  # targets for the members restored from history
        # The first discovery runs in the background: restored answers are served meanwhile.
        self._tasks.append(asyncio.create_task(self.discover(), name="first-discovery"))
        add_interval_job(self._jobs, self.discover, s.discovery_interval, "discovery")
        if self.store is not None:
            add_interval_job(self._jobs, self._rollup, 600, "rollup")
            add_interval_job(self._jobs, self._retention, 3600, "retention")
        self._jobs.start()

    async def stop(self) -> None:
        """Stop probing, publish the final state, and let pending database writes finish."""
        if self._jobs.running:
            self._jobs.shutdown(wait=False)
        if self._dispatcher is not None:
            await self._dispatcher.close()
        if self.throughput is not None:
            await self.throughput.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.publish(force=True)
        if self._writes:
            await asyncio.wait(self._writes, timeout=10)
        if self._session is not None:
            await self._session.close()

    async def _restore(self) -> None:
        """Rebuild windows, states and best hosts from history so a restart keeps its memory."""
        assert self.store is not None
        # A restore makes hundreds of thousands of objects at once (rows, evidence) and no garbage:
        # the cyclic collector would walk them over and over, about 40% of the restore.
        collecting = gc.isenabled()
        gc.disable()
        try:
            now = time.time()
            try:
                members = await self.store.load_members()
                results = await self.store.load_recent_evidence(
                    now - _RESTORE_HORIZON_S, per_host_limit=self.settings.window
                )
                best = await self.store.load_best()
            except Exception as exc:
                log.error("could not restore state from the database", error=type(exc).__name__)
                return
            listing = {model: sorted(hosts) for model, hosts in members.items()}
            self._apply_listing(listing, now, record=False)
            # Each (model, host) replays its results in one go (the same as applying them in turn,
            # but its window is built once). A host's auth check is stored once, under any one of
            # its models, and counts for every model it serves, as `_fan_out_auth` does live.
            replays: dict[tuple[str, str], list[Evidence]] = {}
            for key, evidence in results:
                if evidence[1] is ProbeKind.AUTH:
                    host = key[1]
                    for model in self._models_of_host.get(host, ()):
                        replays.setdefault((model, host), []).append(evidence)
                elif key in self.health:
                    replays.setdefault(key, []).append(evidence)
            for key, replayed in replays.items():
                self.health[key] = replay_evidence(self.health[key], replayed, self.health_policy)
            self.best.update({m: h for m, h in best.items() if m in self._models()})
            self._dirty.update(self.health)
            log.info("state restored", models=len(members), results=len(results), best=len(self.best))
        finally:
            if collecting:
                gc.enable()

    # ----------------------------------------------------------------- discovery
    async def discover(self) -> None:
        assert self._session is not None
        s = self.settings
        result, key_outcome = await asyncio.gather(
            fetch_models(self._session, s.gateway_url, s.probe_timeout),
            self._check_key(),
        )
        self._note_key(key_outcome)
        d = self.discovery
        if result.ok and result.models is not None:
            self.discovery = replace(
                d,
                last_attempt_at=result.fetched_at,
                last_ok_at=result.fetched_at,
                ok=True,
                duration_s=result.duration_s,
                error=None,
                runs_ok=d.runs_ok + 1,
            )
            self._apply_listing(result.models, result.fetched_at, record=True)
            self._discovered_once = True
        else:
            if d.ok is not False:
                log.warning("discovery failed; keeping the last good host list", error=result.error)
            self.discovery = replace(
                d,
                last_attempt_at=result.fetched_at,
                ok=False,
                duration_s=result.duration_s,
                error=result.error,
                runs_failed=d.runs_failed + 1,
            )
        # Retirement is time-based: re-apply the last good list so that grace periods expire even
        # while the gateway is down, without ever treating the outage as hosts leaving.
        self.publish(force=True)
        if self.store is not None:
            hosts = {h for hosts in self.membership.models.values() for h in hosts}
            record = DiscoveryRecord(
                at=result.fetched_at,
                ok=result.ok,
                duration_s=result.duration_s,
                models=len(result.models or {}),
                hosts=len(hosts),
                error=result.error,
            )
            try:
                await self.store.record_discovery(record)
            except Exception as exc:
                log.warning("could not record the discovery run", error=type(exc).__name__)

    async def _check_key(self) -> Outcome | None:
        assert self._session is not None
        key = self.settings.api_key
        if key is None:
            return None
        return await check_gateway_key(
            self._session, self.settings.gateway_url, key, self.settings.probe_timeout
        )

    def _note_key(self, outcome: Outcome | None) -> None:
        if outcome is None or outcome == self.key_outcome:
            if outcome is Outcome.KEY_REJECTED:
                log.error("the gateway rejects the API key", check="/libertai/auth/check")
            return
        previous, self.key_outcome = self.key_outcome, outcome
        if outcome is Outcome.KEY_REJECTED:
            log.error("the gateway rejects the API key", check="/libertai/auth/check")
        elif outcome is Outcome.OK:
            if previous is not None:
                log.info("the gateway accepts the API key again")
        else:
            log.warning("could not check the API key with the gateway", outcome=outcome.value)

    def _apply_listing(self, listing: Mapping[str, Iterable[str]], now: float, *, record: bool) -> None:
        # Aliases stay in the membership (so they are recorded and restored after a restart) but
        # get no health entries or probes of their own: their base id is probed once for both.
        before = self.membership
        self.membership, changes = apply_listing(
            before,
            {m: list(hosts) for m, hosts in listing.items()},
            self.settings.allowed_hosts,
            now,
            self.settings.retire_after,
        )
        ids = list(self.membership.models)
        aliases = {m: base for m in ids if (base := alias_of(m, ids)) != m}
        # Nearly every poll returns the same list: only a change needs the hosts walked again
        # (at thousands of hosts that walk is a noticeable stall of the event loop).
        if changes or aliases != self.aliases or not self.health:
            self.aliases = aliases
            self._sync_members()
        if changes:
            self._log_changes(changes)
            if record and self.store is not None:
                events = [MembershipEvent(c.at, c.model, c.host, c.event) for c in changes]
                self._write(self._record_membership(events))

    def _write(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _record_membership(self, events: list[MembershipEvent]) -> None:
        assert self.store is not None
        try:
            await self.store.record_membership(events)
        except Exception as exc:
            log.warning("could not record membership changes", error=type(exc).__name__)

    def _log_changes(self, changes: list[MembershipChange]) -> None:
        by_event: Counter[str] = Counter(c.event for c in changes)
        log.info(
            "discovery list changed",
            joined=by_event.get("joined", 0),
            left=by_event.get("left", 0),
            retired=by_event.get("retired", 0),
            hosts=sorted({f"{c.model} {c.host} {c.event}" for c in changes})[:50],
        )

    def _sync_members(self) -> None:
        """Create health entries and probe targets for members; drop those of retired hosts."""
        wanted: dict[tuple[str, str], bool] = {}
        for model, hosts in self.membership.models.items():
            if model in self.aliases:
                continue
            for host, info in hosts.items():
                wanted[(model, host)] = info.trusted
        for key in list(self.health):
            if key not in wanted:
                del self.health[key]
                self.views.pop(key, None)
                self._dirty_models.add(key[0])
                self._set_targets(key, ())
        for key, trusted in wanted.items():
            current = self.health.get(key)
            if current is None or current.trusted != trusted:
                self.health[key] = new_host(key[0], key[1], trusted)
                self._dirty.add(key)
        # Only now that every member has its entry: the first probes' ramp is sized by their number.
        measured: list[tuple[str, str]] = []  # throughput targets: where completions are probed
        for key, trusted in wanted.items():
            kinds = probe_kinds(key[0], self.settings) if trusted else ()
            self._set_targets(key, kinds)
            if ProbeKind.COMPLETION in kinds:
                measured.append(key)
        if self.throughput is not None and self._dispatcher is not None:
            self.throughput.sync(measured)
        for model in list(self.best):
            if model not in self._models():
                del self.best[model]
                self.rankings.pop(model, None)
        # Indexes so that the probe path never walks every host.
        self._models_of_host = {}
        self._hosts_of_model = {}
        for model, host in self.health:
            self._models_of_host.setdefault(host, []).append(model)
            self._hosts_of_model.setdefault(model, []).append(host)
        self._sync_auth_targets({h for (_, h), t in wanted.items() if t})

    def _set_targets(self, key: tuple[str, str], kinds: Iterable[ProbeKind]) -> None:
        d = self._dispatcher
        if d is None:
            return
        keep = set(kinds)
        for kind in ProbeKind:
            if kind is ProbeKind.AUTH:
                continue
            target = (key[0], key[1], kind)
            if kind in keep:
                if target not in d:
                    d.add(
                        target, first_within=self._first_within(kind), not_before=self._since_last(key, kind)
                    )
            elif target in d:
                d.remove(target)

    def _sync_auth_targets(self, hosts: set[str]) -> None:
        d = self._dispatcher
        if d is None:
            return
        if self.settings.api_key is None:
            hosts = set()  # without a key there is nothing to check
        for host in hosts:
            d.add((HOST_WIDE, host, ProbeKind.AUTH), first_within=self._first_within(ProbeKind.AUTH))
        for target in [t for t in self._auth_targets if t[1] not in hosts]:
            d.remove(target)
        self._auth_targets = {(HOST_WIDE, h, ProbeKind.AUTH) for h in hosts}

    def _since_last(self, key: tuple[str, str], kind: ProbeKind) -> float:
        """Seconds until a target is due, judged by its last probe (restored from history): a
        restart does not probe, nor bill, everything again at once."""
        h = self.health.get(key)
        last = h.samples.latest(kind) if h else None
        if last is None:
            return 0.0
        return max(0.0, last + self._base_interval(kind) - time.time())

    def _first_within(self, kind: ProbeKind) -> float:
        """Spread a new target's first probe over a short ramp so first answers come quickly."""
        n = max(len(self.health), 1)
        ramp = max(5.0, n / 200.0)
        return min(ramp, self._base_interval(kind))

    @property
    def target_count(self) -> int:
        return len(self._dispatcher) if self._dispatcher is not None else 0

    def _models(self) -> set[str]:
        """Base model ids: the ones that are probed and ranked."""
        return set(self.membership.models) - set(self.aliases)

    # ----------------------------------------------------------------- probing
    def _base_interval(self, kind: ProbeKind) -> float:
        s = self.settings
        return s.probe_interval if kind is ProbeKind.HEALTH else s.completion_interval

    def _interval_of(self, target: Target) -> float:
        model, host, kind = target
        base = self._base_interval(kind)
        h = self.health.get((model, host))
        if h is not None and h.state is HostState.DOWN:
            # A down host is re-probed sooner, by the kind of probe that failed, so that its
            # recovery shows quickly (and billed probes speed up only when they are the evidence).
            failing = h.serving.failing if kind in _SERVING else h.liveness.failing
            if failing:
                return min(base, self.settings.down_probe_interval)
        return base

    async def _probe(self, target: Target) -> ProbeResult:
        assert self._prober is not None
        model, host, kind = target
        if kind is ProbeKind.AUTH:
            return await self._prober.auth(host, self._any_model_of(host))
        return await self._prober.probe(kind, host, model, reasoning=is_reasoning(model, self.aliases))

    async def _run_target(self, target: Target) -> None:
        if self.record(await self._probe(target)) and self._dispatcher is not None:
            self._dispatcher.soon(target, self.settings.confirm_delay)

    def _any_model_of(self, host: str) -> str:
        models = self._models_of_host.get(host)
        return models[0] if models else ""

    def record(self, result: ProbeResult) -> bool:
        """Take in one probe result: store it and update health. True when the failure it reports
        should be confirmed at once by another probe (detect fast, before a whole interval)."""
        self.probe_counts[(result.model, result.host, result.kind.value, result.outcome.value)] += 1
        if self.store is not None:
            self.store.submit(result)
        if result.kind is ProbeKind.AUTH:
            self._fan_out_auth(result)
            return False
        key = (result.model, result.host)
        before = self.health.get(key)
        if before is None:
            return False  # the host was retired while the probe ran
        after = apply(before, result, self.health_policy)
        self.health[key] = after
        self._dirty.add(key)
        if after.state is not before.state or after.reason is not before.reason:
            self._log_state(before, after)
        return not result.ok and needs_confirmation(after, self.health_policy)

    def _fan_out_auth(self, result: ProbeResult) -> None:
        """The host auth check is per host: it counts for every model the host serves."""
        host = result.host
        for model in self._models_of_host.get(host, ()):
            h = self.health.get((model, host))
            if h is not None and h.trusted:
                after = apply(h, replace(result, model=model), self.health_policy)
                self.health[(model, host)] = after
                self._dirty.add((model, host))
                if after.state is not h.state:
                    self._log_state(h, after)

    def _log_state(self, before: HostHealth, after: HostHealth) -> None:
        fields: dict[str, Any] = {
            "model": after.model,
            "host": after.host,
            "state": after.state.value,
            "previous": before.state.value,
            "reason": after.reason.value,
        }
        if after.state is HostState.DOWN:
            log.warning("host down", **fields)
        elif after.state is HostState.UP:
            log.info("host up", **fields)
        else:
            log.debug("host state changed", **fields)

    # ----------------------------------------------------------------- snapshot
    async def _publisher(self) -> None:
        """Coalesce changes: rebuild at most every 250 ms, and re-rank all every few seconds
        because ejection times expire with the clock, not with a probe."""
        last_full = 0.0
        while True:
            # With thousands of hosts a rebuild is no longer free: publish less often there.
            await asyncio.sleep(_PUBLISH_EVERY_S if len(self.health) < 2000 else 1.0)
            now = time.monotonic()
            full = now - last_full >= 2.0
            if full:
                last_full = now
            await self.publish_in_steps(force=full)

    def publish(self, *, force: bool = False) -> None:
        """Rebuild the snapshot at once (start-up, shutdown, one-shot runs)."""
        for _ in self._publish_steps(force):
            pass

    async def publish_in_steps(self, *, force: bool = False) -> None:
        """Rebuild the snapshot, giving the event loop a turn after every step of about a
        millisecond. At thousands of hosts a rebuild takes tens of milliseconds; done in one go,
        it would delay every probe answer that arrived meanwhile and add that delay to its
        measured time to first token."""
        steps = self._publish_steps(force)
        try:
            for _ in steps:
                await asyncio.sleep(0)
        finally:
            steps.close()  # cancelled midway: hand the unfinished work back (see _publish_steps)

    def _publish_steps(self, force: bool) -> Generator[None, None, None]:
        """The rebuild as steps: views of the hosts probed since the last one (a slice at a
        time), then each changed model ranked on its own, then the snapshot swapped in whole.
        Results recorded between steps mark their hosts dirty again for the next rebuild."""
        if not (self._dirty or self._dirty_models or force):
            return
        dirty, self._dirty = self._dirty, set()
        dirty_models, self._dirty_models = self._dirty_models | {m for m, _ in dirty}, set()
        pending_views, pending_models = list(dirty), set(dirty_models)
        try:
            while pending_views:
                for key in pending_views[-_VIEWS_PER_STEP:]:
                    h = self.health.get(key)
                    if h is not None:
                        measured = self.throughput.results.get(key) if self.throughput else None
                        self.views[key] = host_view(h, measured)
                del pending_views[-_VIEWS_PER_STEP:]
                yield
            now = time.time()
            if force:
                pending_models = self._models()
            for model in sorted(pending_models):
                pending_models.discard(model)
                if model in self._models():
                    self._rank(model, now)
                    yield
            models = self._models()
            for gone in [m for m in self._model_views if m not in models]:
                del self._model_views[gone]
                self.rankings.pop(gone, None)
                self._score_memo.pop(gone, None)
            self.snapshot = Snapshot(
                generated_at=now,
                models=with_aliases(self._model_views, self.aliases),
                discovery=self.discovery,
                key_outcome=self.key_outcome,
            )
        finally:
            # Stopped early: what was not done yet is done by the next rebuild.
            self._dirty.update(pending_views)
            self._dirty_models.update(pending_models)

    def _rank(self, model: str, now: float) -> None:
        hosts = [self.health[(model, h)] for h in self._hosts_of_model.get(model, ())]
        memo = self._score_memo.setdefault(model, {})
        # Where billed probes run, a host is best only once its key was accepted (issue 11).
        keyed = len(probe_kinds(model, self.settings)) > 1
        ranking = rank(model, hosts, self.best.get(model), now, self.ranking_policy, memo, keyed=keyed)
        self.rankings[model] = ranking
        self._model_views[model] = model_view(model, ranking, self.views)
        if ranking.best != self.best.get(model, None) or model not in self.best:
            self._best_changed(model, self.best.get(model), ranking.best, now)

    def _best_changed(self, model: str, old: str | None, new: str | None, now: float) -> None:
        known = model in self.best
        self.best[model] = new
        if old is None and new is not None:
            log.info("best host chosen", model=model, host=new)
        elif known and old != new:
            log.info("best host changed", model=model, previous=old, host=new)
        if self.store is not None and (old != new or not known):
            self._write(self._save_best(model, new, now))

    async def _save_best(self, model: str, host: str | None, at: float) -> None:
        assert self.store is not None
        try:
            await self.store.save_best(model, host, at)
        except Exception as exc:
            log.warning("could not save the best host", model=model, error=type(exc).__name__)

    # ----------------------------------------------------------------- maintenance jobs
    async def _rollup(self) -> None:
        assert self.store is not None
        await self.store.rollup(time.time())

    async def _retention(self) -> None:
        assert self.store is not None
        s = self.settings
        await self.store.apply_retention(time.time(), s.raw_retention_days, s.rollup_retention_days)

    # ----------------------------------------------------------------- readiness and one-shot
    def readiness(self) -> Readiness:
        checks: dict[str, str] = {}
        checks["discovery"] = (
            "ok" if (self._discovered_once or self.membership.models) else "no host list yet"
        )
        if self.key_outcome is Outcome.KEY_REJECTED:
            checks["api_key"] = "rejected by the gateway"
        elif self.settings.api_key is None:
            checks["api_key"] = "not set"
        else:
            checks["api_key"] = "ok" if self.key_outcome is Outcome.OK else f"unchecked ({self.key_outcome})"
        if self.store is not None:
            stats = self.store.stats
            checks["database"] = "ok" if stats.healthy else f"writes failing: {stats.last_error or 'error'}"
        ready = checks["discovery"] == "ok" and checks["api_key"] != "rejected by the gateway"
        ready = ready and checks.get("database", "ok") == "ok"
        return Readiness(ready, checks)

    async def probe_once(self) -> None:
        """One discovery and one probe of every target, then a fresh snapshot (for `probe-once`)."""
        await self.discover()
        targets: list[Target] = []
        for (model, host), h in self.health.items():
            if h.trusted:
                targets.extend((model, host, k) for k in probe_kinds(model, self.settings))
        if self.settings.api_key is not None:
            hosts = {h for (_, h), v in self.health.items() if v.trusted}
            targets.extend((HOST_WIDE, h, ProbeKind.AUTH) for h in hosts)
        sem = asyncio.Semaphore(self.settings.max_concurrency)

        async def one(t: Target) -> bool:
            async with sem:
                return self.record(await self._probe(t))

        # As the running service does, a failure is confirmed by re-probing at once rather than
        # taken as a verdict, until the host is down or recovers (at most the threshold).
        pending = targets
        for attempt in range(self.settings.unhealthy_threshold):
            if attempt:
                await asyncio.sleep(self.settings.confirm_delay)
            confirm = await asyncio.gather(*(one(t) for t in pending))
            pending = [t for t, again in zip(pending, confirm, strict=True) if again]
            if not pending:
                break
        self.publish(force=True)


def _require_key(settings: Settings) -> Secret:
    # Without a key only health probes are scheduled (see `probe_kinds`); an empty key is never sent.
    return settings.api_key or Secret("")
