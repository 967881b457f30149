"""The Atom feed of the status page's incidents, as a feed reader gets it: valid Atom, the page's
incidents newest first, hostile text escaped, revalidated by ETag, linked from the page."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from monitor.core.results import HostState, Outcome
from monitor.parts.certs import CertChanged
from monitor.web.status.feed import MAX_ENTRIES
from monitor.web.status.incidents import IncidentLog
from tests.status.support import NOW, A, B, FakeSource, app_for, host, model, snapshot

Client = TestClient[web.Request, web.Application]
NS = {"a": "http://www.w3.org/2005/Atom"}
HERMES = "hermes-3-8b"


def _source(incidents: IncidentLog | None = None) -> FakeSource:
    fleet = model(HERMES, [host(HERMES, A), host(HERMES, B, HostState.DOWN, Outcome.TIMEOUT, ttft=None)])
    return FakeSource(snapshot(fleet), incidents=incidents or IncidentLog())


def _outage() -> IncidentLog:
    log = IncidentLog()
    log.state_changed(NOW - 300, HERMES, B, HostState.UP, HostState.DOWN, Outcome.TIMEOUT)
    log.best_changed(NOW - 299, HERMES, B, A)
    log.state_changed(NOW - 60, HERMES, B, HostState.DOWN, HostState.UP, Outcome.OK)
    return log


async def _feed(client: Client) -> ET.Element:
    resp = await client.get("/status/feed.atom")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    return ET.fromstring(await resp.read())


def _text(el: ET.Element, path: str) -> str:
    found = el.find(path, NS)
    assert found is not None and found.text, path
    return found.text


async def test_feed_is_atom_with_the_required_elements(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_source(_outage()), title="Acme status")[0])
    feed = await _feed(client)
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
    assert _text(feed, "a:id").endswith("/status/feed.atom")
    assert _text(feed, "a:title") == "Acme status"
    assert _text(feed, "a:updated").startswith("2025-11-24T15:59:00")
    assert _text(feed, "a:author/a:name") == "Acme status"
    links = {link.get("rel"): link.get("href", "") for link in feed.findall("a:link", NS)}
    assert links["self"].endswith("/status/feed.atom") and links["self"].startswith("http://")
    assert links["alternate"].endswith("/status")
    for entry in feed.findall("a:entry", NS):
        for tag in ("id", "title", "updated", "published"):
            assert _text(entry, f"a:{tag}")
        link = entry.find("a:link", NS)
        assert link is not None and link.get("href", "").endswith(f"/status/{HERMES}")
        content = entry.find("a:content", NS)
        assert content is not None and content.get("type") == "text"


async def test_entries_are_the_pages_incidents_newest_first(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_source(_outage()))[0])
    titles = [_text(e, "a:title") for e in (await _feed(client)).findall("a:entry", NS)]
    assert titles == [
        f"{HERMES}: {B} is back up",
        f"{HERMES}: best host is now {A} (was {B})",
        f"{HERMES}: {B} went down: no answer within the probe timeout",
    ]


async def test_a_certificate_change_is_an_entry_saying_whether_the_key_is_withheld(
    aiohttp_client: Any,
) -> None:
    log = IncidentLog()
    log.note_cert(CertChanged(NOW - 20, HERMES, A, "a" * 64, "b" * 64, trusted=True))
    log.note_cert(CertChanged(NOW - 10, HERMES, B, "c" * 64, "d" * 64, trusted=False))
    client = await aiohttp_client(app_for(_source(log))[0])
    titles = [_text(e, "a:title") for e in (await _feed(client)).findall("a:entry", NS)]
    assert titles == [
        f"{HERMES}: {B} shows another certificate: the key is withheld until it is accepted",
        f"{HERMES}: {A} shows another certificate",
    ]


async def test_entry_ids_stay_the_same_when_an_incident_is_added(aiohttp_client: Any) -> None:
    log = _outage()
    client = await aiohttp_client(app_for(_source(log))[0])
    before = [_text(e, "a:id") for e in (await _feed(client)).findall("a:entry", NS)]
    log.state_changed(NOW - 1, HERMES, A, HostState.UP, HostState.DOWN, Outcome.SERVER_ERROR)
    after = [_text(e, "a:id") for e in (await _feed(client)).findall("a:entry", NS)]
    assert after[1:] == before and len(set(after)) == 4


async def test_hostile_model_ids_and_host_urls_are_escaped(aiohttp_client: Any) -> None:
    evil_model = "<script>alert('x')</script> & \"q\"\x00\x07\x1b"
    evil_host = "https://h.example/?a=1&b=<b>\"'\x0c"
    log = IncidentLog()
    log.state_changed(NOW - 10, evil_model, evil_host, HostState.UP, HostState.DOWN, Outcome.TIMEOUT)
    client = await aiohttp_client(app_for(_source(log))[0])
    resp = await client.get("/status/feed.atom")
    body = await resp.read()
    assert b"<script>" not in body
    entry = ET.fromstring(body).find("a:entry", NS)
    assert entry is not None
    title = _text(entry, "a:title")
    assert "<script>alert('x')</script> & \"q\"" in title and "https://h.example/?a=1&b=<b>\"'" in title
    link = entry.find("a:link", NS)
    assert link is not None and "<" not in link.get("href", "") and "%3Cscript%3E" in link.get("href", "")


async def test_an_empty_feed_is_valid(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_source())[0])
    feed = await _feed(client)
    assert feed.findall("a:entry", NS) == []
    assert _text(feed, "a:id") and _text(feed, "a:title") and _text(feed, "a:updated")


async def test_feed_holds_at_most_the_newest_entries(aiohttp_client: Any) -> None:
    log = IncidentLog()
    for n in range(MAX_ENTRIES + 20):
        log.state_changed(
            NOW - 1000 + n, HERMES, f"https://h{n}.example", HostState.UP, HostState.DOWN, Outcome.TIMEOUT
        )
    client = await aiohttp_client(app_for(_source(log))[0])
    entries = (await _feed(client)).findall("a:entry", NS)
    assert len(entries) == MAX_ENTRIES
    assert f"https://h{MAX_ENTRIES + 19}.example" in _text(entries[0], "a:title")


async def test_an_unchanged_feed_answers_304_to_its_etag(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_source(_outage()))[0])
    first = await client.get("/status/feed.atom")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    again = await client.get("/status/feed.atom", headers={"If-None-Match": etag})
    assert again.status == 304


async def test_the_page_links_the_feed(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_source(_outage()))[0])
    for path in ("/", f"/status/{HERMES}"):
        html = await (await client.get(path)).text()
        head = html.split("</head>", 1)[0]
        assert '<link rel="alternate" type="application/atom+xml"' in head
        assert 'href="/status/feed.atom"' in head
