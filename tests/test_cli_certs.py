"""`libertai-monitor certs list|accept`, in-process against a temporary SQLite file."""

from __future__ import annotations

import asyncio

import pytest

from monitor.cli import main
from monitor.core.certs import HostCert
from monitor.store import Store
from tests import commands
from tests.commands import Capsys, refused

db = commands.db  # the temporary database fixture

HOST = "https://a.example:8443"
OLD, NEW = "a" * 64, "b" * 64


def _in_store(url: str, records: list[HostCert] | None = None) -> list[HostCert]:
    async def run() -> list[HostCert]:
        store = await Store.open(url)
        try:
            await store.upgrade()
            if records:
                await store.save_certs(records)
            return await store.load_certs()
        finally:
            await store.close()

    return asyncio.run(run())


def _refused(argv: list[str], capsys: Capsys) -> str:
    return refused(["certs", *argv], capsys)


def test_accept_pins_the_certificate_the_host_shows_now(db: str, capsys: Capsys) -> None:
    _in_store(db, [HostCert(HOST, NEW, None, 1e9, 1e9, OLD)])
    assert main(["certs", "accept", HOST + "/"]) == 0
    assert capsys.readouterr().out == f"{HOST}: certificate {NEW} accepted\n"
    [record] = _in_store(db)
    assert record.pinned == NEW and record.trusted


def test_list_says_which_host_shows_another_certificate_than_its_pin(db: str, capsys: Capsys) -> None:
    _in_store(db, [HostCert(HOST, NEW, None, 1e9, 1e9, OLD)])
    assert main(["certs", "list"]) == 0
    out = capsys.readouterr().out
    assert HOST in out and NEW in out and "OTHER: certs accept to trust" in out


def test_accept_of_a_host_never_seen_is_refused_in_one_line(db: str, capsys: Capsys) -> None:
    _in_store(db)
    assert "no certificate seen from https://b.example" in _refused(["accept", "https://b.example"], capsys)


@pytest.mark.parametrize("host", ["http://a.example", "not a url", ""])
def test_accept_of_no_https_url_is_refused_in_one_line(db: str, capsys: Capsys, host: str) -> None:
    _refused(["accept", host], capsys)
