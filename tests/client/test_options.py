"""The transports' settings: what the service's TOML accepts works here too, and a bad setting is
refused at construction with its name."""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx2
import pytest

from libertai_failover import AsyncFailoverTransport, FailoverTransport
from monitor.sim import SimNetwork
from tests.client.sdk import LOOPBACK, chat, wire
from tests.client.support import StubMonitor, answer

MONITOR = "http://127.0.0.1:8787"


@pytest.mark.parametrize("kind", [FailoverTransport, AsyncFailoverTransport])
def test_allowed_hosts_may_be_a_list_of_patterns(kind: Any) -> None:
    t = kind(MONITOR, allowed_hosts=["https://*.libertai.io", "http://127.0.0.1:*"])
    assert str(t.options.allowed_hosts) == "https://*.libertai.io,http://127.0.0.1:*"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("monitor_url", "not a url"),
        ("gateway_url", 42),
        ("allowed_hosts", 7),
        ("allowed_hosts", ["https://*.libertai.io", 3]),
        ("allowed_hosts", ["ftp://x.io"]),
        ("ca_bundle", 5),
        ("ca_bundle", "/nonexistent/ca.pem"),
        ("refresh", 0),
        ("refresh", "5"),
        ("monitor_timeout", -1.0),
        ("connect_timeout", float("nan")),
        ("penalty", True),
        ("on_attempt", "print"),
        ("clock", object()),
        ("spread", "yes"),
        ("first_token_timeout", 0),
        ("hedge_after", -2),
        ("hedge_budget", 1.5),
        ("affinity_size", 0),
        ("affinity_size", 2.5),
        ("affinity_ttl", 0),
        ("rng", 42),
        ("transport", object()),
    ],
)
@pytest.mark.parametrize("kind", [FailoverTransport, AsyncFailoverTransport])
def test_a_bad_setting_is_a_value_error_naming_it(kind: Any, name: str, value: object) -> None:
    options: dict[str, Any] = {"monitor_url": MONITOR, name: value}
    with pytest.raises(ValueError, match=name):
        kind(options.pop("monitor_url"), **options)


def test_good_settings_are_accepted() -> None:
    FailoverTransport(
        MONITOR,
        gateway_url="https://api.libertai.io",
        refresh=1,
        penalty=0.5,
        hedge_after=0.2,
        hedge_budget=0,
        affinity_size=1,
        rng=random.Random(1),
        transport=httpx2.MockTransport(lambda r: httpx2.Response(200)),
    )


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_a_host_outside_the_allow_list_is_an_attempt_and_one_warning(
    net: SimNetwork, caplog: pytest.LogCaptureFixture, sync: bool
) -> None:
    stub = await StubMonitor().start()
    try:
        h0, h1 = net.host_url("h0"), net.host_url("h1")
        stub.answers["m"] = answer("m", h0, [h1])
        w = wire(stub.url, net, allowed_hosts=LOOPBACK.replace("127.0.0.1", "localhost"))
        with caplog.at_level(logging.WARNING, logger="monitor.client"):
            for _ in range(3):
                assert await chat(w, net.gateway_url, sync=sync, stream=False) == net.gateway_url
    finally:
        await stub.stop()
    refused = [a for a in w.attempts if a.refused]
    assert [a.host for a in refused] == [h0, h1] * 3
    assert all(a.reason == "not_probed" and a.passed_over and a.status is None for a in refused)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("outside allowed_hosts" in text for text in warnings)
