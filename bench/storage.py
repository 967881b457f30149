"""Benchmark 5, storage: database growth, restore time and history query time, through the service's
own store code (`monitor.store.Store`: `submit`/`flush`, `rollup(now)`, `apply_retention`).

Time is simulated by generating probe results with past timestamps at the default intervals, per
(model, host) pair of a text model: health every 30 s, completion every 300 s, host auth check
every 300 s (3,456 rows a day), 1% failures, realistic latencies.

For each size (hosts, one model each, over 10 models):
1. one day of raw results ending on the last complete hour, inserted with `submit` + `flush`
   (rows per second reported);
   raw bytes per day = the `probe_results` table's pages (SQLite `dbstat`);
2. `rollup(now)` over that day; roll-up bytes per day = `rollups_hourly` pages;
3. 29 more days of hourly roll-ups before it, written by the store's roll-up writer
   (`queries.write_rollups`, the rows of day 1 shifted back), so that 30 days of history exist;
   `apply_retention(now, 7, 400)` timed;
4. restore: a fresh `Store` on the file and `Monitor.prepare()` (what `run` does before it listens:
   members, the last 24 h of results per target, best hosts), timed;
5. `Store.history` over 30 days, step 1 h, for one model (all its hosts) and for one host.

Projection for 400 days: raw bytes/day x 7 (raw retention) + roll-up bytes/day x 400 + the rest.
Restore reads only the last 24 h (per target, an index range), so one day of raw results stands in
for the seven a real database keeps; the file size is projected, not measured, for the same reason.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import base_result, loadavg, log, write_result
from monitor.config_load import load_settings
from monitor.core.membership import MembershipChange
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.logging import configure_logging
from monitor.service import Monitor
from monitor.store import Store, queries
from monitor.store.engine import write_transaction
from monitor.store.maintenance import ROLLUP_GRACE_S

NAME = "storage"
DAY = 86400
TARGET = {"hosts": 1000, "size_400_days_gib_max": 1.0, "restore_s_max": 2.0}
MODELS = 10


def table_bytes(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    finally:
        con.close()
    return {name: int(size) for name, size in rows}


def day_of_results(hosts: list[tuple[str, str]], start: float, rng: random.Random) -> list[ProbeResult]:
    out: list[ProbeResult] = []
    for model, host in hosts:
        off = rng.uniform(0, 30)
        t = start + off
        while t < start + DAY:
            ok = rng.random() >= 0.01
            out.append(
                ProbeResult(
                    model,
                    host,
                    ProbeKind.HEALTH,
                    Outcome.OK if ok else Outcome.TIMEOUT,
                    t,
                    200 if ok else None,
                    0.0,
                    None,
                    rng.uniform(1, 4) if ok else 10000.0,
                )
            )
            t += 30
        t = start + rng.uniform(0, 300)
        while t < start + DAY:
            ttft = rng.lognormvariate(4.5, 0.3)
            out.append(
                ProbeResult(
                    model,
                    host,
                    ProbeKind.COMPLETION,
                    Outcome.OK,
                    t,
                    200,
                    rng.uniform(0.2, 2),
                    ttft,
                    ttft + 30,
                )
            )
            out.append(
                ProbeResult(
                    model, host, ProbeKind.AUTH, Outcome.UNSUPPORTED, t + 1, 405, 0.0, None, rng.uniform(1, 3)
                )
            )
            t += 300
    out.sort(key=lambda r: r.started_at)
    return out


async def run_size(hosts_n: int, workdir: Path) -> dict[str, Any]:
    db = workdir / f"storage-{hosts_n}.db"
    url = f"sqlite+aiosqlite:///{db}"
    rng = random.Random(hosts_n)
    hosts = [(f"model-{i % MODELS}", f"https://h{i:05d}.example.libertai.io") for i in range(hosts_n)]
    now = time.time()
    # The day ends on an hour that `rollup(now)` counts as complete, so that its roll-ups cover all
    # 24 hours and the 29 copies shifted back tile the month: otherwise the gaps between copies (and
    # the history's point count) depended on the minute the benchmark ran.
    end = (now - ROLLUP_GRACE_S) // 3600 * 3600
    start = end - DAY
    store = await Store.open(url)
    await store.upgrade()
    store.start_writer()
    await store.record_membership([MembershipChange(start - 60, m, h, "joined") for m, h in hosts])
    for m in sorted({m for m, _ in hosts}):
        await store.save_best(m, next(h for mm, h in hosts if mm == m), start)
    results = day_of_results(hosts, start, rng)
    t0 = time.perf_counter()
    for i in range(0, len(results), 50_000):
        for r in results[i : i + 50_000]:
            store.submit(r)
        await store.flush()
    insert_s = time.perf_counter() - t0
    written = store.stats.rows_written
    del results
    raw_bytes = table_bytes(db).get("probe_results", 0)
    t0 = time.perf_counter()
    rolled = await store.rollup(now)
    rollup_s = time.perf_counter() - t0

    # 29 earlier days of roll-ups: the rows of this day, shifted back, through the roll-up writer.
    def day_rows(conn: Any) -> list[dict[str, Any]]:
        cols = (
            "vantage",
            "model_id",
            "host_id",
            "hour",
            "probes",
            "ok",
            "ttft_ms_p50",
            "ttft_ms_p95",
            "latency_ms_p50",
        )
        q = "SELECT " + ", ".join(cols) + " FROM rollups_hourly"
        return [dict(zip(cols, row, strict=True)) for row in conn.exec_driver_sql(q)]

    async with write_transaction(store.engine) as conn:
        base = await conn.run_sync(day_rows)
        mark = await conn.run_sync(queries.rolled_until, store.vantage)
        assert mark is not None  # rolled up just above
        for d in range(1, 30):
            shifted = [{**r, "hour": r["hour"] - d * DAY} for r in base]
            await conn.run_sync(queries.write_rollups, store.vantage, shifted, mark)
    t0 = time.perf_counter()
    deleted = await store.apply_retention(now, 7, 400)
    retention_s = time.perf_counter() - t0
    await store.close()
    sizes = table_bytes(db)
    file_bytes = db.stat().st_size
    rollup_bytes_day = sizes.get("rollups_hourly", 0) // 30  # 30 days of roll-ups now

    # Restore as `run` does before it opens its port.
    settings = load_settings(
        environ={
            "LIBERTAI_MONITOR_DATABASE_URL": url,
            "LIBERTAI_MONITOR_ALLOWED_HOSTS": "https://*.example.libertai.io",
            "LIBERTAI_API_KEY": "bench-key",
            "LIBERTAI_MONITOR_LOG_LEVEL": "warning",
        }
    )
    t0 = time.perf_counter()
    store = await Store.open(url)
    await store.upgrade()
    mon = Monitor(settings, store)
    await mon.prepare()
    restore_s = time.perf_counter() - t0
    restored_hosts = sum(len(v.hosts) for v in mon.snapshot.models.values())
    restored_samples = sum(len(h.samples) for h in mon.health.values())
    t0 = time.perf_counter()
    points = await store.history("model-0", None, end - 30 * DAY, end, 3600)
    history_model_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    one = await store.history("model-0", hosts[0][1], end - 30 * DAY, end, 3600)
    history_host_s = time.perf_counter() - t0
    await mon.stop()
    await store.close()

    other = sum(v for k, v in sizes.items() if k not in ("probe_results", "rollups_hourly"))
    projected = raw_bytes * 7 + rollup_bytes_day * 400 + other
    return {
        "hosts": hosts_n,
        "rows_per_day": written,
        "insert_s": round(insert_s, 2),
        "insert_rows_per_s": round(written / insert_s),
        "raw_bytes_per_day": raw_bytes,
        "raw_bytes_per_row": round(raw_bytes / max(written, 1), 1),
        "rollup_rows_per_day": rolled,
        "rollup_bytes_per_day": rollup_bytes_day,
        "rollup_s_one_day": round(rollup_s, 2),
        "retention_s": round(retention_s, 3),
        "retention_deleted": deleted,
        "table_bytes_30_days": sizes,
        "file_bytes": file_bytes,
        "growth_mib_per_day_raw": round(raw_bytes / 2**20, 2),
        "growth_mib_per_day_rollups": round(rollup_bytes_day / 2**20, 3),
        "projected_gib_400_days": round(projected / 2**30, 3),
        "restore_s": round(restore_s, 3),
        "restored_hosts": restored_hosts,
        "restored_samples": restored_samples,
        "history_30d_model_s": round(history_model_s, 3),
        "history_30d_model_points": len(points),
        "history_30d_host_s": round(history_host_s, 3),
        "history_30d_host_points": len(one),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (a smoke test)")
    p.add_argument("--sizes", type=int, nargs="*")
    args = p.parse_args(argv)
    sizes = args.sizes or ([10] if args.quick else [100, 1000])
    params = {
        "sizes": sizes,
        "models": MODELS,
        "intervals": "health 30 s, completion 300 s, host auth check 300 s (defaults)",
        "raw_retention_days": 7,
        "rollup_retention_days": 400,
        "history_days": 30,
    }
    result = base_result(NAME, args.quick, params)
    workdir = Path(tempfile.mkdtemp(prefix="libertai-bench-storage-"))
    configure_logging("warning", "json")
    runs = []
    for n in sizes:
        before = loadavg()
        log(f"{NAME}: {n} hosts")
        r = asyncio.run(run_size(n, workdir))
        r["loadavg_before"], r["loadavg_after"] = before, loadavg()
        runs.append(r)
        log(
            f"{NAME}: {n} hosts: {r['growth_mib_per_day_raw']} MiB/day raw, "
            f"{r['projected_gib_400_days']} GiB for 400 days, restore {r['restore_s']} s, "
            f"history {r['history_30d_model_s']} s"
        )
    shutil.rmtree(workdir, ignore_errors=True)
    result["runs"] = runs
    big = max(runs, key=lambda r: r["hosts"])
    result["target"] = TARGET
    result["figures"] = {
        "hosts": big["hosts"],
        "raw_mib_per_day": big["growth_mib_per_day_raw"],
        "rollup_mib_per_day": big["growth_mib_per_day_rollups"],
        "projected_gib_400_days": big["projected_gib_400_days"],
        "restore_s": big["restore_s"],
        "history_30d_model_s": big["history_30d_model_s"],
        "history_30d_host_s": big["history_30d_host_s"],
    }
    result["meets_target"] = (
        big["hosts"] >= TARGET["hosts"]
        and big["projected_gib_400_days"] < TARGET["size_400_days_gib_max"]
        and big["restore_s"] < TARGET["restore_s_max"]
    )
    return write_result(NAME, result)


if __name__ == "__main__":
    raise SystemExit(main())
