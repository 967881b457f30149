"""Pairing what a prober reported with what each simulated host recorded for the same request.

The simulator keeps, per host, the time from each billed request's arrival to its first body byte
(`ttft_truth_ms`, the last 100, in the order the first bytes were written) but not who sent it. With
one request per host at a time (slots seconds apart), the n-th request a host got is the n-th
entry: the probes of every prober are merged per host by start time and zipped with the truth.
A host whose counts differ (a probe failed before its first byte, or more than 100 requests) is left
out and counted; probes of different probers that started within `ambiguous_s` of each other on one
host (their order at the host is not certain) are left out and counted.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monitor.core.results import ProbeKind
from monitor.store.codes import KIND_CODES

Event = tuple[float, str, float | None]  # (start, epoch s; source; reported ms or None)


def monitor_completions(db: Path) -> dict[str, list[Event]]:
    """host url -> the monitor's completion probes that got a 200, from its database (TTFT as
    stored: whole milliseconds)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT h.url, p.at, p.ttft_ms FROM probe_results p JOIN hosts h ON h.id = p.host_id "
            "WHERE p.kind = ? AND p.status = 200 ORDER BY h.url, p.at",
            (KIND_CODES[ProbeKind.COMPLETION],),
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[Event]] = defaultdict(list)
    for url, at, ttft in rows:
        out[url].append((at / 1000.0, "monitor", ttft))
    return out


def pair(
    truth: Mapping[str, Any], sources: Sequence[Mapping[str, list[Event]]], ambiguous_s: float = 0.25
) -> dict[str, Any]:
    """Pairs (url, start, source, reported_ms, truth_ms) over every host, and what was left out."""
    by_url = {h["normalized_url"]: h["ttft_truth_ms"] for h in truth["hosts"]}
    pairs: list[tuple[str, float, str, float | None, float]] = []
    mismatched_hosts = 0
    ambiguous = 0
    for url, truths in by_url.items():
        events: list[Event] = sorted(e for src in sources for e in src.get(url, []))
        if not events and not truths:
            continue
        if len(events) != len(truths):
            if len(truths) == 100 and len(events) > 100:
                events = events[-100:]
            else:
                mismatched_hosts += 1
                continue
        drop: set[int] = set()
        for i in range(1, len(events)):
            if events[i][1] != events[i - 1][1] and events[i][0] - events[i - 1][0] < ambiguous_s:
                drop.update((i - 1, i))
        ambiguous += len(drop)
        for i, ((start, src, reported), t) in enumerate(zip(events, truths, strict=True)):
            if i not in drop:
                pairs.append((url, start, src, reported, t))
    return {"pairs": pairs, "mismatched_hosts": mismatched_hosts, "ambiguous_dropped": ambiguous}
