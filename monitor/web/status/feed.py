"""`GET /status/feed.atom`: the status page's incidents as an Atom 1.0 feed (RFC 4287).

The entries are the incidents the page lists, newest first, in the page's own words. The XML is
built with ElementTree, so model ids, host URLs and reasons from the network are escaped; the
characters XML 1.0 cannot carry at all (most control characters, lone surrogates) are replaced.
Links are absolute, made from the request's scheme and host (the service has no public URL
setting). A feed is rendered once per state of its inputs and served with a strong ETag over
its bytes, so a polling reader gets a 304 until an incident is added.
"""

from __future__ import annotations

import hashlib
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from aiohttp import web

from monitor.web.httpcache import matches
from monitor.web.status.incidents import Incident
from monitor.web.status.page import incident_row

FEED_PATH: Final = "/status/feed.atom"
ATOM_NS: Final = "http://www.w3.org/2005/Atom"
CONTENT_TYPE: Final = "application/atom+xml; charset=utf-8"
MAX_ENTRIES: Final = 100
# Entry ids are name-based UUIDs over an incident's fields: the same incident keeps its id across
# restarts and replicas (it is stored at millisecond resolution, so the id uses milliseconds).
_ENTRY_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://libertai.io/monitor/incident")
# Everything outside XML 1.0's `Char` production.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

ET.register_namespace("", ATOM_NS)


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _when(ts: float) -> str:
    """RFC 3339 in UTC, to the millisecond an incident is stored with."""
    return datetime.fromtimestamp(round(ts * 1000) / 1000, UTC).isoformat(timespec="milliseconds")


def entry_id(i: Incident) -> str:
    fields = (str(round(i.at * 1000)), i.kind, i.model, i.host or "", i.previous or "")
    return f"urn:uuid:{uuid.uuid5(_ENTRY_NAMESPACE, chr(0).join(fields))}"


def model_url(base_url: str, model: str) -> str:
    return f"{base_url}/status/{quote(model, safe='/')}"


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", {k: _xml_text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = _xml_text(text)
    return el


def build_feed(
    title: str,
    base_url: str,
    incidents: Sequence[Incident],
    updated_if_empty: float,
    gateway_rejects_key: bool = False,
) -> bytes:
    """The feed of `incidents` (newest first, as the page lists them; the first `MAX_ENTRIES`),
    its links under `base_url` (scheme and host, no trailing slash). `updated_if_empty` is the
    feed's `updated` when there is no incident."""
    shown = incidents[:MAX_ENTRIES]
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _add(feed, "id", base_url + FEED_PATH)
    _add(feed, "title", title)
    _add(feed, "subtitle", "Hosts going down or coming back, and best-host changes")
    _add(feed, "updated", _when(max((i.at for i in shown), default=updated_if_empty)))
    _add(feed, "link", rel="self", type="application/atom+xml", href=base_url + FEED_PATH)
    _add(feed, "link", rel="alternate", type="text/html", href=base_url + "/status")
    _add(_add(feed, "author"), "name", title)
    _add(feed, "generator", "libertai-monitor")
    for i in shown:
        row = incident_row(i, i.at, gateway_rejects_key)
        entry = _add(feed, "entry")
        _add(entry, "id", entry_id(i))
        _add(entry, "title", f"{i.model}: {row.text}")
        _add(entry, "updated", _when(i.at))
        _add(entry, "published", _when(i.at))
        _add(entry, "link", rel="alternate", type="text/html", href=model_url(base_url, i.model))
        _add(entry, "category", term=row.kind)
        _add(entry, "content", f"{row.at}: {i.model}: {row.text}", type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def base_url_of(request: web.Request) -> str:
    """Scheme and host the client asked for (behind a proxy: what the proxy forwarded)."""
    return str(request.url.origin())


@dataclass(frozen=True, slots=True)
class RenderedFeed:
    body: bytes
    etag: str


def rendered(body: bytes) -> RenderedFeed:
    return RenderedFeed(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def feed_response(request: web.Request, feed: RenderedFeed) -> web.Response:
    """The feed, or 304 when the client has it; revalidated on every read, like the pages."""
    headers = {
        "ETag": feed.etag,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if matches(request.headers.get("If-None-Match"), feed.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=feed.body, headers={**headers, "Content-Type": CONTENT_TYPE})
