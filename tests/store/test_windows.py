"""Maintenance windows in the database (monitor.store.windows), as every replica reads them."""

from __future__ import annotations

import pytest

from monitor.store import Store

from .conftest import T0

A = "https://a.example"


async def test_a_window_reads_back_as_written(store: Store) -> None:
    wid = await store.add_window(A, "hermes", T0, T0 + 600, "kernel upgrade")
    [w] = await store.load_windows()
    assert (w.id, w.host, w.model, w.starts_at, w.ends_at, w.reason, w.ended_at) == (
        wid,
        A,
        "hermes",
        T0,
        T0 + 600,
        "kernel upgrade",
        None,
    )


async def test_windows_over_are_not_read_by_the_running_service(store: Store) -> None:
    over = await store.add_window(A, None, T0, T0 + 60, "done")
    ended = await store.add_window(A, None, T0, T0 + 600, "ended early")
    coming = await store.add_window(None, "hermes", T0 + 900, T0 + 1200, "later")
    await store.end_window(ended, T0 + 30)
    assert [w.id for w in await store.load_windows(since=T0 + 100)] == [coming]
    assert {w.id for w in await store.load_windows()} == {over, ended, coming}


async def test_ending_a_window_already_over_leaves_it_as_it_was(store: Store) -> None:
    wid = await store.add_window(A, None, T0, T0 + 60, "done")
    ended = await store.end_window(wid, T0 + 100)
    assert ended is not None and (ended.ended_at, ended.until) == (None, T0 + 60)
    assert await store.end_window(wid + 1, T0) is None


@pytest.mark.parametrize(("host", "model", "end"), [(None, None, T0 + 60), (A, None, T0)])
async def test_a_window_that_covers_nothing_or_no_time_is_refused(
    store: Store, host: str | None, model: str | None, end: float
) -> None:
    with pytest.raises(ValueError, match="maintenance window"):
        await store.add_window(host, model, T0, end, "r")
    assert await store.load_windows() == []
