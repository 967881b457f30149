"""Rendering once per change: gzip bodies assembled from kept blocks, cards kept while unchanged."""

from __future__ import annotations

import gzip
from dataclasses import replace

from monitor.core.results import HostState, Outcome
from monitor.core.steps import finish
from monitor.web.status.drawings import Drawings
from monitor.web.status.gzjoin import assemble, piece
from monitor.web.status.history import History
from monitor.web.status.render import Cards, render_page
from tests.status.support import NOW, A, B, host, model, snapshot

READY = {"discovery": "ok", "api_key": "ok", "database": "ok"}


def test_pieces_compressed_apart_make_one_valid_gzip_body() -> None:
    parts = [b"<p>" + bytes([65 + i]) * 5000 + b"</p>" for i in range(5)]
    plain, gz = assemble([piece(p) for p in parts])
    assert plain == b"".join(parts)
    assert gzip.decompress(gz) == plain


def test_an_empty_body_is_valid_gzip_too() -> None:
    assert gzip.decompress(assemble([])[1]) == b""


def _render(snap: object, cards: Cards, drawings: Drawings) -> bytes:
    plain, gz = finish(render_page("t", snap, History(), READY, (), 15.0, None, drawings, cards))  # type: ignore[arg-type]
    assert gzip.decompress(gz) == plain
    return plain


def test_a_new_snapshot_shows_the_change_and_keeps_the_rest() -> None:
    cards, drawings = Cards(), Drawings()
    models = [model(f"m{i}", [host(f"m{i}", A), host(f"m{i}", B)]) for i in range(20)]
    first = _render(snapshot(*models), cards, drawings)
    changed = list(models)
    down = host("m7", B, HostState.DOWN, Outcome.NOT_LOADED, ttft=None)
    changed[7] = replace(models[7], hosts=(models[7].hosts[0], down))
    second = _render(snapshot(*changed, at=NOW + 1), cards, drawings)
    assert b"health answered 202: model not loaded" in second
    assert b"health answered 202: model not loaded" not in first
    # every other card is byte for byte the same
    for i in (0, 6, 8, 19):
        start = first.index(f'data-model="m{i}"'.encode())
        end = first.index(b"</section>", start)
        assert first[start:end] in second
