"""HTML and SVG out of the page's values: the Jinja2 environment (autoescaped) and the renderers.

Rendering is pure, reads only immutable values and runs on the loop in steps (a card a step,
`monitor.core.steps`). A page is the header, the incidents and one card per model; a model's card
is rendered again only when its view or its history's drawing changed (a snapshot usually
changes a few models), so a new snapshot costs a few cards, not a hundred.
"""

from __future__ import annotations

import gzip
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from monitor import __version__
from monitor.core.host_view import HostView
from monitor.core.results import HostState
from monitor.core.snapshot import ModelView, Snapshot
from monitor.core.steps import Steps
from monitor.web.status import svg
from monitor.web.status.drawings import Drawings, Drawn, ModelDrawing
from monitor.web.status.gzjoin import Piece, assemble, piece
from monitor.web.status.history import History, hour_slots, model_series
from monitor.web.status.incidents import Incident
from monitor.web.status.page import (
    Page,
    build_page,
    host_row,
    latency_label,
    model_card,
    model_status,
    reasoning_bases,
    show_host_bars,
    url_markup,
)
from monitor.web.status.words import pct

STATIC_PREFIX: Final = "/static/status"
STATIC_FILES: Final = ("status.css", "status.js")
_MAX_CARDS: Final = 20_000
_BLOCK: Final = 8  # cards per compressed block
# Where the cards go in the rendered page: a comment no text can forge (text has `<` escaped).
_CARDS: Final = f"<!--cards-{secrets.token_hex(8)}-->"

_ENV = Environment(
    loader=PackageLoader("monitor.web.status", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the package; no stat() per page
)
_ENV.filters["url"] = url_markup
_MACROS: Any = _ENV.get_template("_model.html").module


def _context(
    page: Page, refresh: float, message: str | None = None, model: str | None = None
) -> dict[str, Any]:
    return {
        "model": model,
        "page": page,
        "refresh": f"{refresh:g}",
        "root": "",
        "static": STATIC_PREFIX + "/" + __version__,
        "message": message,
    }


class Cards:
    """Rendered model cards and host rows, each kept while its inputs are equal (views compare by
    value: they are rebuilt on every full re-rank even when nothing changed), cards with their
    compressed bytes. Shared by the pages being rendered (their steps interleave on the loop):
    entries are immutable, and two pages rendering the same one only waste work."""

    def __init__(self) -> None:
        self._cards: dict[tuple[str, bool], tuple[tuple[Any, ...], bytes]] = {}
        self._blocks: dict[tuple[int, bool], tuple[tuple[bytes, ...], Piece]] = {}
        self._rows: dict[tuple[str, str], tuple[tuple[Any, ...], Markup]] = {}

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        if len(table) > _MAX_CARDS:
            table.clear()
        table[key] = value

    def row(
        self,
        h: HostView,
        model: str,
        best: str | None,
        drawn: Drawn | None,
        latency: str | None = None,
        rejects: bool = False,
    ) -> Markup:
        inputs = (h, h.url == best, drawn, latency, rejects)
        entry = self._rows.get((model, h.url))
        if entry is not None and entry[0] == inputs:
            return entry[1]
        html = Markup(_MACROS.host_row(host_row(h, model, best, drawn, latency, rejects)))
        self._put(self._rows, (model, h.url), (inputs, html))
        return html

    def card(
        self,
        v: ModelView,
        reasoning: bool,
        drawing: ModelDrawing,
        rows: tuple[Markup, ...],
        chart: bool,
        budget: str | None = None,
    ) -> bytes:
        latency = latency_label(v)
        inputs = (
            v.model,
            v.probed_as,
            v.best,
            v.healthy,
            v.known,
            _statuses(v),
            reasoning,
            drawing,
            rows,
            latency,
            budget,
        )
        entry = self._cards.get((v.model, chart))
        if entry is not None and entry[0] == inputs:
            return entry[1]
        card = model_card(v, drawing, chart, budget)
        html = str(_MACROS.model_card(card, Markup("").join(rows), "")).encode()
        self._put(self._cards, (v.model, chart), (inputs, html))
        return html

    def blocks(self, cards: Sequence[bytes], chart: bool) -> Steps[list[Piece]]:
        """The cards compressed in blocks of `_BLOCK`, a step per block compressed: a block whose
        cards are all unchanged keeps its compressed bytes (whole blocks compress almost as well
        as one stream; single cards would not, at a 32 KiB window and ~15 KB a card)."""
        out = []
        for i in range(0, len(cards), _BLOCK):
            group = tuple(cards[i : i + _BLOCK])
            entry = self._blocks.get((i, chart))
            if entry is not None and entry[0] == group:
                out.append(entry[1])
                continue
            block = piece(b"".join(group))
            self._put(self._blocks, (i, chart), (group, block))
            out.append(block)
            yield None
        return out


def _drawn(drawing: ModelDrawing, h: HostView) -> Drawn | None:
    # A host outside the allow-list is never probed: it has no history to draw.
    return None if h.state is HostState.UNTRUSTED else drawing.hosts.get(h.url)


def _statuses(v: ModelView) -> tuple[HostState, ...]:
    return tuple(h.state for h in v.hosts)


def render_page(
    title: str,
    snapshot: Snapshot,
    history: History,
    readiness: Mapping[str, str],
    incidents: Sequence[Incident],
    refresh: float,
    model: str | None = None,
    drawings: Drawings | None = None,
    cards: Cards | None = None,
    budgets: Mapping[str, str] | None = None,
) -> Steps[tuple[bytes, bytes]]:
    """The overview, or one model's page (with that model's incidents only), plain and gzipped,
    a step per model card; `model` must be known. Cards and rows are kept in `cards` and history
    in `drawings` for the next page."""
    drawings = drawings or Drawings()
    cards = cards or Cards()
    now = snapshot.generated_at
    models = snapshot.models
    reasoning = reasoning_bases(models)
    rejects = snapshot.gateway_rejects_key
    chart = model is not None
    host_bars = chart or show_host_bars(models)
    html: list[bytes] = []
    for v in models.values() if model is None else [models[model]]:
        base = v.probed_as
        show_hosts = chart or v.model == base
        urls = tuple(h.url for h in v.hosts)
        drawing = drawings.model(history, now, base, urls, host_bars and show_hosts, chart)
        latency = latency_label(v)
        rows = (
            tuple(cards.row(h, base, v.best, _drawn(drawing, h), latency, rejects) for h in v.hosts)
            if show_hosts
            else ()
        )
        budget = None if budgets is None else budgets.get(base)
        html.append(cards.card(v, v.probed_as in reasoning, drawing, rows, chart, budget))
        yield None
    if model is not None:
        base_id = models[model].probed_as
        incidents = [i for i in incidents if i.model == base_id]
    # The page around the cards is rendered with a marker where they go, and split there.
    page = build_page(title, snapshot, history, readiness, incidents, (Markup(_CARDS),), only=model)
    template = "overview.html" if model is None else "model.html"
    head, _, tail = _ENV.get_template(template).render(_context(page, refresh, model=model)).partition(_CARDS)
    blocks = yield from cards.blocks(html, chart)
    return assemble([piece(head.encode(), 1), *blocks, piece(tail.encode(), 1)])


def render_missing(
    title: str, snapshot: Snapshot, readiness: Mapping[str, str], model: str, refresh: float
) -> bytes:
    """The page of a model the snapshot does not know (it may appear: it refreshes as asked)."""
    page = build_page(title, snapshot, History(), readiness, (), ())
    return _ENV.get_template("error.html").render(_context(page, refresh, f"Unknown model {model}")).encode()


def compressed(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=6, mtime=0)


def badge_for(snapshot: Snapshot, history: History, model: str) -> tuple[str, int]:
    """The badge of a model (its state and 24-hour uptime) and the status code to send it with."""
    v = snapshot.models.get(model)
    if v is None:
        return svg.badge(model, "unknown model", "unknown"), 404
    status = model_status(v)
    hours = hour_slots(snapshot.generated_at)
    buckets = [b for b in model_series(history.hourly, v.probed_as, [h.url for h in v.hosts], hours) if b]
    probes = sum(b.probes for b in buckets)
    uptime = f" · {pct(sum(b.ok for b in buckets) / probes)} 24h" if probes else ""
    words = {"served": "up", "degraded": "degraded", "unserved": "down", "unknown": "unknown"}[status]
    return svg.badge(model, words + uptime, status), 200
