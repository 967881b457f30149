"""A restart keeps its memory: members, recent results and best hosts read back from the store."""

from __future__ import annotations

import asyncio
import gc

from monitor.best_hosts import BestHosts
from monitor.discovery import DiscoveryError, parse_models
from monitor.fleet import Fleet, Key
from monitor.health import HealthPolicy, replay_evidence
from monitor.logging import get_logger
from monitor.ports import StateReader
from monitor.results import Evidence, ProbeKind
from monitor.store import StoreError

log = get_logger("monitor.service")  # the service's parts log under one name, as before the split

RESTORE_HORIZON_S = 24 * 3600.0


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
            members = await store.load_members()
            results = await store.load_recent_evidence(now - RESTORE_HORIZON_S, per_host_limit=policy.window)
            saved_best = await store.load_best()
        except StoreError as exc:
            log.error("could not restore state from the database", error=str(exc))
            return
        listing = await asyncio.to_thread(_checked, members)
        fleet.apply_listing(listing, now)
        # Each (model, host) replays its results in one go (the same as applying them in turn,
        # but its window is built once). A host's auth check is stored once, under any one of
        # its models, and counts for every model it serves, as the recorder does live.
        replays: dict[Key, list[Evidence]] = {}
        for key, evidence in results:
            if evidence[1] is ProbeKind.AUTH:
                host = key[1]
                for model in fleet.models_of(host):
                    replays.setdefault((model, host), []).append(evidence)
            elif key in fleet.health:
                replays.setdefault(key, []).append(evidence)
        for key, replayed in replays.items():
            fleet.update(key, replay_evidence(fleet.health[key], replayed, policy))
        best.restore(saved_best, fleet.models())
        log.info("state restored", models=len(members), results=len(results), best=len(best.best))
    finally:
        if collecting:
            gc.enable()


def _checked(members: dict[str, set[str]]) -> dict[str, tuple[str, ...]]:
    """The members read back, through the checks a listing from the gateway gets: rows written
    before discovery refused ids that are not printable (a lone surrogate, a control character)
    would otherwise bring them back, to break every /metrics scrape and database batch again.
    What is left out is logged (as `repr`s), once."""
    if not members:
        return {}
    warnings: list[str] = []
    try:
        listed = {m: {"servers": sorted(hosts)} for m, hosts in members.items() if m.strip()}
        listing = parse_models(listed, warnings)
    except DiscoveryError as exc:  # nothing valid was left
        warnings.append(exc.reason)
        listing = {}
    if warnings:
        log.warning("restored members left out", skipped=len(warnings), reasons=warnings[:20])
    return listing
