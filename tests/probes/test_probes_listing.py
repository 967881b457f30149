"""parse_models and alias_of: validating the gateway's listing."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.core.steps import finish
from monitor.probe.discovery import DiscoveryError, alias_of, parse_models


def test_parse_models_valid_listing() -> None:
    payload = {
        "hermes-3-8b": {"servers": ["https://a.libertai.io", "https://b.libertai.io/"]},
        "qwen3-coder": {"servers": ["https://c.libertai.io"], "extra": 1},
    }
    assert finish(parse_models(payload)) == {
        "hermes-3-8b": ("https://a.libertai.io", "https://b.libertai.io"),
        "qwen3-coder": ("https://c.libertai.io",),
    }


def test_parse_models_merges_duplicates_keeping_order() -> None:
    payload = {"m": {"servers": ["https://B.io/", "https://a.io", "https://b.io:443"]}}
    assert finish(parse_models(payload)) == {"m": ("https://b.io", "https://a.io")}


def test_parse_models_skips_bad_url_with_warning() -> None:
    warnings: list[str] = []
    models = finish(parse_models({"m": {"servers": ["ftp://x.io", "https://ok.io"]}}, warnings))
    assert models == {"m": ("https://ok.io",)}
    assert len(warnings) == 1 and "scheme" in warnings[0]


def test_parse_models_keeps_model_with_no_servers() -> None:
    assert finish(parse_models({"m": {"servers": []}, "n": {"servers": ["https://a.io"]}}))["m"] == ()


def test_parse_models_skips_model_id_with_whitespace() -> None:
    warnings: list[str] = []
    models = finish(parse_models({"bad id": {"servers": []}, "m": {"servers": []}}, warnings))
    assert list(models) == ["m"] and warnings


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "not a JSON object"),
        ("x", "not a JSON object"),
        (None, "not a JSON object"),
        ({}, "empty"),
        ({"": {"servers": []}}, "empty model id"),
        ({"  ": {"servers": []}}, "empty model id"),
        ({"m": ["https://a.io"]}, "not an object"),
        ({"m": {}}, "servers is not a list"),
        ({"m": {"servers": "https://a.io"}}, "servers is not a list"),
        ({"m": {"servers": ["https://a.io", 3]}}, "servers is not a list"),
        ({"m": {"servers": [None]}}, "servers is not a list"),
    ],
)
def test_parse_models_rejects_wrong_shape(payload: Any, reason: str) -> None:
    with pytest.raises(DiscoveryError, match=reason):
        finish(parse_models(payload))


def test_parse_models_rejects_listing_without_any_valid_model() -> None:
    with pytest.raises(DiscoveryError):
        finish(parse_models({"bad id": {"servers": []}}))


def test_alias_of_thinking_maps_to_listed_base() -> None:
    assert alias_of("qwen3-thinking", {"qwen3", "qwen3-thinking"}) == "qwen3"


def test_alias_of_thinking_without_base_is_itself() -> None:
    assert alias_of("qwen3-thinking", {"qwen3-thinking"}) == "qwen3-thinking"


def test_alias_of_plain_id_is_itself() -> None:
    assert alias_of("qwen3", {"qwen3", "qwen3-thinking"}) == "qwen3"


def test_alias_of_bare_suffix_is_itself() -> None:
    assert alias_of("-thinking", {"", "-thinking"}) == "-thinking"
