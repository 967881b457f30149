"""The API key never leaves the Authorization header: not in detail, repr, nor to a redirect target."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.core.results import ProbeKind, ProbeResult

MODEL = "hermes-3-8b"


def assert_no_key(key: str, text: str) -> None:
    """Neither the key nor any 8-character piece of it appears in `text`."""
    assert key not in text
    for i in range(len(key) - 7):
        assert key[i : i + 8] not in text, f"key fragment {i} leaked"


@pytest.mark.parametrize("scenario", ["echo", "echohtml", "echoevent", "redirect", "status401"])
@pytest.mark.parametrize("kind", [ProbeKind.AUTH, ProbeKind.COMPLETION, ProbeKind.EMBEDDING])
async def test_key_never_in_result_even_when_echoed(
    fake_hosts: Any, make_prober: Any, api_key: Any, scenario: str, kind: ProbeKind
) -> None:
    result: ProbeResult = await make_prober().probe(kind, fake_hosts.url(scenario), MODEL)
    assert_no_key(api_key.reveal(), result.detail)
    assert_no_key(api_key.reveal(), repr(result))
    assert_no_key(api_key.reveal(), str(result))


async def test_echoed_key_detail_is_still_informative(fake_hosts: Any, make_prober: Any) -> None:
    result = await make_prober().completion(fake_hosts.url("echo"), MODEL)
    assert result.detail.startswith("HTTP 401: Invalid API key") and "***" in result.detail


async def test_key_not_sent_to_redirect_target(fake_hosts: Any, make_prober: Any) -> None:
    await make_prober().completion(fake_hosts.url("redirect"), MODEL)
    assert fake_hosts.requests_to("target") == []


async def test_prober_repr_hides_key(make_prober: Any, api_key: Any) -> None:
    assert_no_key(api_key.reveal(), repr(make_prober()))
