"""Reads a restart needs: best hosts, current members, the recent results of every host."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from monitor.core.keys import HostKey
from monitor.core.results import Evidence, ProbeResult
from monitor.store import queries
from monitor.store.codes import KIND_BY_CODE, OUTCOME_BY_CODE
from monitor.store.core import Core, ms
from monitor.store.schema import best_hosts, hosts, membership_events, models


def names(conn: Connection) -> tuple[dict[int, str], dict[int, str]]:
    """model id -> name, host id -> URL."""
    model_names = {int(i): n for i, n in conn.execute(select(models.c.id, models.c.name))}
    host_urls = {int(i): u for i, u in conn.execute(select(hosts.c.id, hosts.c.url))}
    return model_names, host_urls


async def load_best(core: Core, vantage: str | None = None) -> dict[str, str | None]:
    of = core.vantage_of(vantage)

    def run(conn: Connection) -> dict[str, str | None]:
        stmt = (
            select(models.c.name, hosts.c.url)
            .select_from(best_hosts)
            .join(models, models.c.id == best_hosts.c.model_id)
            .outerjoin(hosts, hosts.c.id == best_hosts.c.host_id)
            .where(best_hosts.c.vantage == of)
        )
        return {name: url for name, url in conn.execute(stmt)}

    return await core.read("loading best hosts", run)


async def load_members(core: Core, vantage: str | None = None) -> dict[str, set[str]]:
    """model -> hosts whose latest membership event is "joined" (models with none left out)."""
    of = core.vantage_of(vantage)

    def run(conn: Connection) -> dict[str, set[str]]:
        e = membership_events.c
        stmt = (
            select(models.c.name, hosts.c.url, e.event)
            .select_from(membership_events)
            .join(models, models.c.id == e.model_id)
            .join(hosts, hosts.c.id == e.host_id)
            .where(e.vantage == of)
            .order_by(e.at, e.id)
        )
        latest: dict[tuple[str, str], str] = {}
        for model, host, event in conn.execute(stmt):
            latest[(model, host)] = event
        members: dict[str, set[str]] = defaultdict(set)
        for (model, host), event in latest.items():
            if event == "joined":
                members[model].add(host)
        return dict(members)

    return await core.read("loading members", run)


async def load_recent_results(
    core: Core, since: float, per_host_limit: int, vantage: str | None = None
) -> list[ProbeResult]:
    since_ms = ms(since)
    of = core.vantage_of(vantage)

    def run(conn: Connection) -> tuple[list[tuple[Any, ...]], dict[int, str], dict[int, str]]:
        rows = queries.recent_results(conn, of, since_ms, per_host_limit, KIND_BY_CODE.keys())
        return (rows, *names(conn))

    rows, model_names, host_urls = await core.read("loading recent results", run)
    kinds = dict(KIND_BY_CODE)
    outcomes = dict(OUTCOME_BY_CODE)
    out: list[ProbeResult] = []
    append = out.append
    for m, h, at, k, o, status, c, tt, tot in rows:
        kind = kinds.get(k)
        outcome = outcomes.get(o)
        if kind is None or outcome is None:  # written by a newer version: skip, don't guess
            continue
        append(ProbeResult(model_names[m], host_urls[h], kind, outcome, at / 1000, status, c, tt, tot))
    return out


async def load_recent_evidence(
    core: Core, since: float, per_host_limit: int, vantage: str | None = None
) -> list[tuple[HostKey, Evidence]]:
    since_ms = ms(since)
    of = core.vantage_of(vantage)

    def run(conn: Connection) -> tuple[list[queries.EvidenceRow], dict[int, str], dict[int, str]]:
        rows = queries.recent_evidence(conn, of, since_ms, per_host_limit, KIND_BY_CODE.keys())
        return (rows, *names(conn))

    rows, model_names, host_urls = await core.read("loading recent results", run)
    kinds = dict(KIND_BY_CODE)
    outcomes = dict(OUTCOME_BY_CODE)
    keys: dict[tuple[int, int], HostKey] = {}
    out: list[tuple[HostKey, Evidence]] = []
    append = out.append
    for m, h, at, k, o, tt, tot in rows:
        kind = kinds.get(k)
        outcome = outcomes.get(o)
        if kind is None or outcome is None:  # written by a newer version: skip, don't guess
            continue
        key = keys.get((m, h))
        if key is None:
            key = keys[(m, h)] = HostKey(model_names[m], host_urls[h])
        append((key, (at / 1000, kind, outcome, tt, tot)))
    return out
