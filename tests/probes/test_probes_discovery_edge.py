"""Discovery's edge: what the gateway lists is checked where it enters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from monitor import slices
from monitor.core.steps import finish
from monitor.probe import discovery
from monitor.probe.discovery import ListingWarnings, fetch_models, parse_models
from tests.turns import Turns

BAD_IDS = [
    "bad-\ud800-id",  # a lone surrogate: JSON's "\ud800" decodes to it
    "bad-\x85-id",  # a C1 control character
    "bad-\x07-id",  # a C0 control character
    "bad-\u202e-id",  # a format character (right-to-left override)
    "bad\u2028id",  # a line separator
]


@pytest.mark.parametrize("model_id", BAD_IDS, ids=["surrogate", "c1", "c0", "format", "separator"])
def test_a_model_id_that_is_not_printable_unicode_is_skipped_with_a_warning(model_id: str) -> None:
    warnings: list[str] = []
    models = finish(parse_models({model_id: {"servers": []}, "good": {"servers": []}}, warnings))
    assert list(models) == ["good"]
    assert len(warnings) == 1
    warnings[0].encode("utf-8")  # the warning itself can be logged: it shows a repr, not the raw id


@pytest.mark.parametrize(
    "url", ["https://a.libertai.io/\ud800", "https://a.libertai.io/x\x85y", "https://\ud800.libertai.io"]
)
def test_a_server_url_that_is_not_valid_unicode_is_skipped(url: str) -> None:
    warnings: list[str] = []
    models = finish(parse_models({"m": {"servers": [url, "https://b.libertai.io"]}}, warnings))
    assert models == {"m": ("https://b.libertai.io",)}
    assert len(warnings) == 1


def test_printable_non_ascii_ids_are_still_accepted() -> None:
    assert list(finish(parse_models({"modèle-7b": {"servers": []}}))) == ["modèle-7b"]


async def test_a_surrogate_id_from_the_gateway_s_json_never_reaches_the_result(
    aiohttp_server: Any, session: Any
) -> None:
    body = (
        '{"bad-\\ud800-id": {"servers": ["https://a.libertai.io"]}, '
        '"m": {"servers": ["https://a.libertai.io/\\ud800", "https://b.libertai.io"]}}'
    )

    async def models(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/libertai/models", models)
    server = await aiohttp_server(app)
    result = await fetch_models(session, str(server.make_url("/")), 5, listing_warnings=ListingWarnings())
    assert result.ok and result.models == {"m": ("https://b.libertai.io",)}
    for text in [*result.models, *result.models["m"], *result.warnings]:
        text.encode("utf-8")
    assert len(result.warnings) == 2


def test_the_same_warnings_are_logged_once_and_a_change_again() -> None:
    notes = ListingWarnings()
    assert notes.note(["model 'a b': invalid model id skipped"]) is True
    assert notes.note(["model 'a b': invalid model id skipped"]) is False  # the next poll: silent
    assert notes.note(["model 'a b': invalid model id skipped", "model 'c': server skipped"]) is True
    assert notes.note([]) is True  # cleared: said once
    assert notes.note([]) is False


async def test_a_big_listing_is_checked_while_the_loop_keeps_turning(
    aiohttp_server: Any, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_in_slices = slices.run_in_slices
    monkeypatch.setattr(discovery, "run_in_slices", lambda work: run_in_slices(work, 0.0))
    listing = {f"m{i}": {"servers": [f"https://h{n}.libertai.io" for n in range(3000)]} for i in range(4)}

    async def models(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(listing))

    app = web.Application()
    app.router.add_get("/libertai/models", models)
    server = await aiohttp_server(app)
    with Turns() as turns:
        result = await fetch_models(session, str(server.make_url("/")), 5, listing_warnings=ListingWarnings())
    assert result.ok and result.models is not None and len(result.models["m3"]) == 3000
    assert turns.count >= 4 * 3000 // discovery.URLS_PER_STEP  # a turn at least every step of servers
