"""A restart keeps its memory: members, recent results and best hosts read back from the store."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from monitor.core.health import HealthPolicy, replay_evidence
from monitor.core.keys import HostKey
from monitor.core.results import Evidence, ProbeKind
from monitor.core.steps import Steps, finish, for_each
from monitor.logging import get_logger
from monitor.parts.best_hosts import BestHosts
from monitor.parts.fleet import Fleet
from monitor.parts.ports import StateReader
from monitor.probe.discovery import DiscoveryError, parse_models
from monitor.slices import run_in_slices
from monitor.store import StoreError

log = get_logger("monitor.service")  # the service's parts log under one name

RESTORE_HORIZON_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Saved:
    """What a vantage's monitor left in the database: members, recent results, best hosts."""

    members: dict[str, set[str]]
    results: list[tuple[HostKey, Evidence]]
    best: dict[str, str | None]


async def read_saved(store: StateReader, policy: HealthPolicy, now: float) -> Saved:
    """Read what a restore needs (raises `StoreError`)."""
    listed = await run_in_slices(_checked(await store.load_members()))
    members = {model: set(hosts) for model, hosts in listed.items()}
    results = await store.load_recent_evidence(now - RESTORE_HORIZON_S, per_host_limit=policy.window)
    return Saved(members, results, await store.load_best())


# (model, host) pairs replayed per step of `rebuild`.
REPLAYS_PER_STEP = 200


def rebuild(saved: Saved, fleet: Fleet, best: BestHosts, policy: HealthPolicy, now: float) -> Steps[None]:
    """Members, health and best hosts from `saved`, in steps."""
    yield from fleet.apply_listing({model: sorted(hosts) for model, hosts in saved.members.items()}, now)
    # Each (model, host) replays its results in one go (the same as applying them in turn,
    # but its window is built once). A host's auth check is stored once, under any one of
    # its models, and counts for every model it serves, as the recorder does live.
    replays: dict[HostKey, list[Evidence]] = {}
    for key, evidence in saved.results:
        if evidence[1] is ProbeKind.AUTH:
            host = key[1]
            for model in fleet.models_of(host):
                replays.setdefault(HostKey(model, host), []).append(evidence)
        elif key in fleet.health:
            replays.setdefault(key, []).append(evidence)

    def replay(item: tuple[HostKey, list[Evidence]]) -> None:
        key, replayed = item
        fleet.update(key, replay_evidence(fleet.health[key], replayed, policy))

    yield from for_each(replays.items(), replay, REPLAYS_PER_STEP)
    best.restore(saved.best, fleet.models())


async def restore(
    store: StateReader, fleet: Fleet, best: BestHosts, policy: HealthPolicy, now: float
) -> None:
    """Rebuild the fleet's members and health and the best hosts from history. A store that
    cannot answer leaves everything empty (logged): the service starts fresh rather than not at all."""
    # A restore makes hundreds of thousands of objects at once (rows, evidence) and no garbage:
    # the cyclic collector would walk them over and over, about 40% of the restore.
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            saved = await read_saved(store, policy, now)
        except StoreError as exc:
            log.error("could not restore state from the database", error=str(exc))
            return
        finish(rebuild(saved, fleet, best, policy, now))  # before the port opens: nothing waits for the loop
        log.info("state restored", models=len(saved.members), results=len(saved.results), best=len(best.best))
    finally:
        if collecting:
            gc.enable()


def _checked(members: dict[str, set[str]]) -> Steps[dict[str, tuple[str, ...]]]:
    """The members read back, through the checks a listing from the gateway gets: rows written
    before discovery refused ids that are not printable (a lone surrogate, a control character)
    would otherwise bring them back, to break every /metrics scrape and database batch again.
    What is left out is logged (as `repr`s), once."""
    if not members:
        return {}
    warnings: list[str] = []
    try:
        listed = {m: {"servers": sorted(hosts)} for m, hosts in members.items() if m.strip()}
        listing = yield from parse_models(listed, warnings)
    except DiscoveryError as exc:  # nothing valid was left
        warnings.append(exc.reason)
        listing = {}
    if warnings:
        log.warning("restored members left out", skipped=len(warnings), reasons=warnings[:20])
    return listing
