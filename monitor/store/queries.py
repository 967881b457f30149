"""Synchronous Core queries, run through `AsyncConnection.run_sync` (plain code issuing several
statements, each a short hop to the driver). Every query is of one vantage and walks a primary key
per (vantage, model, host): the big tables have no other index, and `distinct_pairs` finds the
pairs with index seeks (a loose index scan) instead of reading the table.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, func, select, text, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from monitor.store.schema import (
    best_hosts,
    discovery_runs,
    probe_results,
    rollup_state,
    rollups_hourly,
    vantages,
)

IdPair = tuple[int, int]  # (model_id, host_id): a member as the tables key it
# (at ms, kind, outcome, ttft_ms, total_ms)
RawRow = tuple[int, int, int, float | None, float | None]
RawByIdPair = dict[IdPair, list[RawRow]]
# (model_id, host_id, at ms, kind, outcome, ttft_ms, total_ms)
EvidenceRow = tuple[int, int, int, int, int, float | None, float | None]
# (hour, probes, ok, ttft_ms_p50, ttft_ms_p95, latency_ms_p50)
RollupRow = tuple[int, int, int, float | None, float | None, float | None]


def dialect_insert(dialect_name: str, table: Table) -> Any:
    """`INSERT` with ON CONFLICT support for the connection's dialect."""
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"unsupported database dialect: {dialect_name}")


def insert_ignore(dialect_name: str, table: Table) -> Insert:
    stmt = dialect_insert(dialect_name, table).on_conflict_do_nothing()
    assert isinstance(stmt, Insert)
    return stmt


def _pairs_sql(table: str, per_model: bool) -> str:
    # A loose index scan as one recursive query: each step seeks the next (model_id, host_id) in
    # the table's primary key (same model, next host; else the next model's first host), so the
    # cost is a few index seeks per pair whatever the number of rows. Portable (SQLite, PostgreSQL).
    same_model = (
        "(SELECT {col} FROM {t} WHERE vantage = :vantage AND model_id = pairs.m AND host_id > pairs.h "
        "ORDER BY model_id, host_id LIMIT 1)"
    )
    next_model = (
        "(SELECT {col} FROM {t} WHERE vantage = :vantage AND model_id > pairs.m "
        "ORDER BY model_id, host_id LIMIT 1)"
    )
    if per_model:
        base = (
            f"SELECT model_id, host_id FROM {table} WHERE vantage = :vantage AND model_id = :model "
            "ORDER BY host_id LIMIT 1"
        )
        step_m = same_model.format(col="model_id", t=table)
        step_h = same_model.format(col="host_id", t=table)
    else:
        base = (
            f"SELECT model_id, host_id FROM {table} WHERE vantage = :vantage "
            "ORDER BY model_id, host_id LIMIT 1"
        )
        step_m = f"coalesce({same_model}, {next_model})".format(col="model_id", t=table)
        step_h = f"coalesce({same_model}, {next_model})".format(col="host_id", t=table)
    return (
        "WITH RECURSIVE pairs(m, h) AS ("
        f"SELECT * FROM ({base}) AS first_pair "
        f"UNION ALL SELECT {step_m}, {step_h} FROM pairs WHERE pairs.m IS NOT NULL) "
        "SELECT m, h FROM pairs WHERE m IS NOT NULL"
    )


_PAIRS_SQL = {
    (name, per_model): text(_pairs_sql(name, per_model))
    for name in ("probe_results", "rollups_hourly")
    for per_model in (False, True)
}


def distinct_pairs(conn: Connection, table: Table, vantage: str, model_id: int | None = None) -> list[IdPair]:
    """The (model_id, host_id) pairs of `vantage` present in `table` (whose key starts with them),
    in key order, optionally of one model only; one statement, index seeks only."""
    stmt = _PAIRS_SQL[(table.name, model_id is not None)]
    params: dict[str, Any] = {"vantage": vantage}
    if model_id is not None:
        params["model"] = model_id
    return [(int(m), int(h)) for m, h in conn.execute(stmt, params)]


# Members per UNION ALL statement (SQLite allows 500 compound members by default).
_UNION_MEMBERS = 100


def recent_results(
    conn: Connection, vantage: str, since_ms: int, limit: int, kind_codes: Iterable[int]
) -> list[tuple[Any, ...]]:
    """Up to `limit` newest rows per (model, host, kind) at or after `since_ms`, oldest first; rows
    with the same `at` in (model_id, host_id, kind) order.
    Rows: (model_id, host_id, at, kind, outcome, status, connect_ms, ttft_ms, total_ms)."""
    t = probe_results.c
    columns = (t.model_id, t.host_id, t.at, t.kind, t.outcome, t.status, t.connect_ms, t.ttft_ms, t.total_ms)
    rows = _newest_per_triple(conn, vantage, columns, since_ms, limit, kind_codes)
    rows.sort(key=_at_of)  # stable: the triple order of the statements breaks ties
    return rows


def recent_evidence(
    conn: Connection, vantage: str, since_ms: int, limit: int, kind_codes: Iterable[int]
) -> list[EvidenceRow]:
    """The rows of `recent_results`, in the same order, with only what the health state machine
    reads."""
    t = probe_results.c
    columns = (t.model_id, t.host_id, t.at, t.kind, t.outcome, t.ttft_ms, t.total_ms)
    rows: list[EvidenceRow] = _newest_per_triple(conn, vantage, columns, since_ms, limit, kind_codes)
    rows.sort(key=_at_of)  # stable: the triple order of the statements breaks ties
    return rows


_at_of = itemgetter(2)


def _newest_per_triple(
    conn: Connection,
    vantage: str,
    columns: Sequence[ColumnElement[Any]],
    since_ms: int,
    limit: int,
    kind_codes: Iterable[int],
) -> list[Any]:
    """`columns` of up to `limit` newest rows per (model, host, kind) at or after `since_ms`, in
    (model_id, host_id, kind) order, newest first within each.
    One statement per 100 (model, host, kind) triples, each member an index range read; the last
    batch is padded with a triple that matches nothing, so one statement serves every batch."""
    t = probe_results.c
    triples = [(m, h, k) for m, h in distinct_pairs(conn, probe_results, vantage) for k in kind_codes]
    if not triples:
        return []
    size = min(_UNION_MEMBERS, len(triples))
    stmt = union_all(
        *(
            select(
                select(*columns)
                .where(
                    t.vantage == bindparam("vantage"),
                    t.model_id == bindparam(f"m{i}"),
                    t.host_id == bindparam(f"h{i}"),
                    t.kind == bindparam(f"k{i}"),
                    t.at >= bindparam("since"),
                )
                .order_by(t.at.desc())
                .limit(limit)
                .subquery()
            )
            for i in range(size)
        )
    )
    out: list[Any] = []
    for start in range(0, len(triples), size):
        batch = triples[start : start + size]
        batch += [(-1, -1, -1)] * (size - len(batch))
        params: dict[str, Any] = {"since": since_ms, "vantage": vantage}
        for i, (m, h, k) in enumerate(batch):
            params[f"m{i}"], params[f"h{i}"], params[f"k{i}"] = m, h, k
        out.extend(conn.execute(stmt, params).all())
    return out


def raw_rows(
    conn: Connection, vantage: str, model_id: int, host_id: int, from_ms: int, until_ms: int
) -> list[RawRow]:
    """(at, kind, outcome, ttft_ms, total_ms) of one (model, host) in [from_ms, until_ms), by time."""
    t = probe_results.c
    stmt = (
        select(t.at, t.kind, t.outcome, t.ttft_ms, t.total_ms)
        .where(
            t.vantage == vantage,
            t.model_id == model_id,
            t.host_id == host_id,
            t.at >= from_ms,
            t.at < until_ms,
        )
        .order_by(t.at)
    )
    return [(int(a), int(k), int(o), tt, tot) for a, k, o, tt, tot in conn.execute(stmt)]


def rollup_rows(
    conn: Connection, vantage: str, model_id: int, host_id: int, from_hour: int, until_hour: int
) -> list[RollupRow]:
    """(hour, probes, ok, ttft_ms_p50, ttft_ms_p95, latency_ms_p50) in [from_hour, until_hour)."""
    r = rollups_hourly.c
    stmt = (
        select(r.hour, r.probes, r.ok, r.ttft_ms_p50, r.ttft_ms_p95, r.latency_ms_p50)
        .where(
            r.vantage == vantage,
            r.model_id == model_id,
            r.host_id == host_id,
            r.hour >= from_hour,
            r.hour < until_hour,
        )
        .order_by(r.hour)
    )
    return [(int(hr), int(p), int(o), a, b, c) for hr, p, o, a, b, c in conn.execute(stmt)]


def rolled_until(conn: Connection, vantage: str) -> int | None:
    value = conn.execute(
        select(rollup_state.c.rolled_until).where(rollup_state.c.vantage == vantage)
    ).scalar()
    return None if value is None else int(value)


def earliest_raw_ms(conn: Connection, vantage: str) -> int | None:
    t = probe_results.c
    stmt = select(func.min(t.at)).where(
        t.vantage == bindparam("v"), t.model_id == bindparam("m"), t.host_id == bindparam("h")
    )
    best: int | None = None
    for m, h in distinct_pairs(conn, probe_results, vantage):
        value = conn.execute(stmt, {"v": vantage, "m": m, "h": h}).scalar()
        if value is not None and (best is None or value < best):
            best = int(value)
    return best


def raw_for_rollup(conn: Connection, vantage: str, from_ms: int, until_ms: int) -> RawByIdPair:
    """Raw rows of every (model, host) of `vantage` in [from_ms, until_ms)."""
    out: RawByIdPair = {}
    for m, h in distinct_pairs(conn, probe_results, vantage):
        rows = raw_rows(conn, vantage, m, h, from_ms, until_ms)
        if rows:
            out[(m, h)] = rows
    return out


# The upserts below are built once per dialect and run with their values as parameters: each
# `excluded` is an alias of its table, and SQLAlchemy's table constructs hold reference cycles, so
# one built per call left ~40 objects of cyclic garbage each time (the result writer's
# `touch_vantage` runs once per batch), which the runtime's collector, freezing what survives,
# would never walk again at a large size (see monitor.runtime).


ROLLUP_VALUES = (
    "probes",
    "ok",
    "ttft_ms_p50",
    "ttft_ms_p95",
    "latency_ms_p50",
    "slo_probes",
    "slo_ok",
    "ttft_counted",
    "ttft_within",
    "ttft_threshold_ms",
)


@functools.cache
def _upsert_rollups(dialect: str) -> Any:
    ins = dialect_insert(dialect, rollups_hourly)
    return ins.on_conflict_do_update(
        index_elements=[
            rollups_hourly.c.vantage,
            rollups_hourly.c.model_id,
            rollups_hourly.c.host_id,
            rollups_hourly.c.hour,
        ],
        set_={name: ins.excluded[name] for name in ROLLUP_VALUES},
    )


@functools.cache
def _upsert_rollup_state(dialect: str) -> Any:
    state = dialect_insert(dialect, rollup_state)
    return state.on_conflict_do_update(
        index_elements=[rollup_state.c.vantage], set_={"rolled_until": state.excluded.rolled_until}
    )


def write_rollups(conn: Connection, vantage: str, rows: Sequence[dict[str, Any]], until_hour: int) -> None:
    """Upsert hourly rows (each with its `vantage`) and move the vantage's roll-up mark, in the
    caller's transaction."""
    dialect = conn.dialect.name
    if rows:
        conn.execute(_upsert_rollups(dialect), list(rows))
    conn.execute(_upsert_rollup_state(dialect), {"vantage": vantage, "rolled_until": until_hour})


def _delete_per_pair(
    conn: Connection, table: Table, time_column: str, vantage: str, pairs: Sequence[IdPair], cutoff: int
) -> int:
    """Delete rows older than `cutoff`, one (model, host) at a time, so each delete walks the
    primary key (model_id, host_id, time) rather than the whole table."""
    c = table.c
    stmt = delete(table).where(
        c.vantage == bindparam("v"),
        c.model_id == bindparam("m"),
        c.host_id == bindparam("h"),
        c[time_column] < bindparam("cut"),
    )
    deleted = 0
    for m, h in pairs:
        deleted += max(conn.execute(stmt, {"v": vantage, "m": m, "h": h, "cut": cutoff}).rowcount, 0)
    return deleted


def delete_raw_before(conn: Connection, vantage: str, pairs: Sequence[IdPair], cutoff_ms: int) -> int:
    return _delete_per_pair(conn, probe_results, "at", vantage, pairs, cutoff_ms)


def delete_rollups_before(conn: Connection, vantage: str, pairs: Sequence[IdPair], cutoff_hour: int) -> int:
    return _delete_per_pair(conn, rollups_hourly, "hour", vantage, pairs, cutoff_hour)


def delete_discovery_before(conn: Connection, vantage: str, cutoff_ms: int) -> int:
    d = discovery_runs.c
    result = conn.execute(delete(discovery_runs).where(d.vantage == vantage, d.at < cutoff_ms))
    return max(result.rowcount, 0)


@functools.cache
def touch_vantage(dialect_name: str) -> Any:
    """The upsert that records `last_result_at` (epoch ms) as the vantage `name`'s newest result
    unless it has a newer one; run with both as parameters."""
    ins = dialect_insert(dialect_name, vantages)
    current = vantages.c.last_result_at
    return ins.on_conflict_do_update(
        index_elements=[vantages.c.name],
        set_={
            "last_result_at": case(
                (current > ins.excluded.last_result_at, current), else_=ins.excluded.last_result_at
            )
        },
    )


@functools.cache
def upsert_best(dialect_name: str) -> Any:
    """The upsert of a model's best host (`vantage`, `model_id`, `host_id`, `since` as
    parameters): `since` moves only when the host changes."""
    ins = dialect_insert(dialect_name, best_hosts)
    return ins.on_conflict_do_update(
        index_elements=[best_hosts.c.vantage, best_hosts.c.model_id],
        set_={"host_id": ins.excluded.host_id, "since": ins.excluded.since},
        where=best_hosts.c.host_id.is_distinct_from(ins.excluded.host_id),
    )


def vantage_list(conn: Connection) -> list[tuple[str, int | None]]:
    """(name, newest result in epoch ms or None) of every vantage, by name."""
    v = vantages.c
    stmt = select(v.name, v.last_result_at).order_by(v.name)
    return [(str(n), None if at is None else int(at)) for n, at in conn.execute(stmt)]
