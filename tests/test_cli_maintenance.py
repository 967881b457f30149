"""`libertai-monitor maintenance add|list|end`, in-process against a temporary SQLite file."""

from __future__ import annotations

import asyncio

import pytest

from monitor.cli import main
from monitor.core.maintenance import Window
from monitor.store import Store
from tests import commands
from tests.commands import Capsys, refused

db = commands.db  # the temporary database fixture


def _stored(url: str) -> list[Window]:
    async def read() -> list[Window]:
        store = await Store.open(url)
        try:
            await store.upgrade()
            return await store.load_windows()
        finally:
            await store.close()

    return asyncio.run(read())


def _ok(argv: list[str], capsys: Capsys) -> str:
    code = main(["maintenance", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _refused(argv: list[str], capsys: Capsys) -> str:
    return refused(["maintenance", *argv], capsys)


def test_add_stores_a_host_window_of_the_given_times(db: str, capsys: Capsys) -> None:
    out = _ok(
        [
            "add",
            "--host",
            "https://A.example:443/",
            "--start",
            "2030-01-01T08:00Z",
            "--end",
            "2030-01-01T09:30+00:00",
            "--reason",
            "kernel upgrade",
        ],
        capsys,
    )
    assert out.startswith("maintenance window 1: host https://a.example from 2030-01-01T08:00:00Z")
    [w] = _stored(db)
    assert (w.host, w.model, w.reason, w.ended_at) == ("https://a.example", None, "kernel upgrade", None)
    assert (w.starts_at, w.ends_at) == (1893484800.0, 1893490200.0)


def test_add_with_minutes_starts_now_for_every_host_of_a_model(db: str, capsys: Capsys) -> None:
    _ok(["add", "--model", "hermes", "--start", "now", "--minutes", "30", "--reason", "redeploy"], capsys)
    [w] = _stored(db)
    assert (w.host, w.model, w.ends_at - w.starts_at) == (None, "hermes", 1800.0)


def test_list_shows_each_window_with_its_state(db: str, capsys: Capsys) -> None:
    _ok(["add", "--model", "hermes", "--minutes", "30", "--reason", "redeploy"], capsys)
    _ok(
        ["add", "--host", "https://b.example", "--start", "2099-01-01", "--minutes", "5", "--reason", "r"],
        capsys,
    )
    lines = _ok(["list"], capsys).splitlines()
    assert lines[0].split() == ["ID", "STATE", "STARTS", "ENDS", "SCOPE", "REASON"]
    assert lines[1].split()[:2] == ["1", "active"] and lines[1].split()[-3:] == [
        "model",
        "hermes",
        "redeploy",
    ]
    assert lines[2].split()[:2] == ["2", "scheduled"]


def test_end_stops_a_window_now(db: str, capsys: Capsys) -> None:
    _ok(["add", "--model", "hermes", "--minutes", "30", "--reason", "redeploy"], capsys)
    assert "over since" in _ok(["end", "1"], capsys)
    [w] = _stored(db)
    assert w.ended_at is not None and w.until < w.ends_at
    assert _ok(["list"], capsys).splitlines()[1].split()[:2] == ["1", "over"]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (
            ["add", "--host", "https://a.example", "--start", "tomorrow", "--minutes", "5", "--reason", "r"],
            "--start",
        ),
        (["add", "--host", "https://a.example", "--minutes", "-5", "--reason", "r"], "--minutes"),
        (["add", "--host", "not a url", "--minutes", "5", "--reason", "r"], "--host"),
        (
            ["add", "--host", "https://a.example", "--model", "m", "--minutes", "5", "--reason", "r"],
            "--model",
        ),
        (["add", "--minutes", "5", "--reason", "r"], "--host"),
        (["add", "--host", "https://a.example", "--reason", "r"], "--end"),
        (["add", "--host", "https://a.example", "--minutes", "5"], "--reason"),
        (["add", "--host", "https://a.example", "--minutes", "5", "--reason", " "], "--reason"),
        (
            [
                "add",
                "--host",
                "https://a.example",
                "--start",
                "2030-01-02",
                "--end",
                "2030-01-01",
                "--reason",
                "r",
            ],
            "--end",
        ),
        (["end", "x"], "ID"),
        (["end", "7"], "no window 7"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_it(
    db: str, argv: list[str], named: str, capsys: Capsys
) -> None:
    assert named in _refused(argv, capsys)
    assert _stored(db) == []
