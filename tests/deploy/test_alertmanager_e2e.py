"""Debian's Prometheus and Alertmanager in the loop: the service probes the simulated network,
Prometheus scrapes it every second with the shipped rules and config, Alertmanager runs the shipped
routing file as the compose service starts it, and a host taken down reaches the test's webhook and
its Telegram stand-in as a firing alert, then as a resolved one when it comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.server import serving
from tests.deploy.alertmanager import (
    SAMPLE_ENV,
    SHIPPED_ROUTING,
    Alertmanager,
    Receiver,
    alertmanager_binary,
    fast_routing,
    receiver,
    running_alertmanager,
    with_telegram_api,
)
from tests.deploy.prom import (
    SHIPPED_CONFIG,
    SHIPPED_RULES,
    Prometheus,
    local_config,
    running_prometheus,
    shorten_for,
    tool,
)
from tests.service.support import eventually, network, settings_for

pytestmark = [pytest.mark.e2e, pytest.mark.subprocess]  # the service on loopback; two child processes

HOST = "qwen-a"  # qwen-b serves the same model, so the model keeps a healthy host (no inhibition)
HOST_DOWN = "LibertaiHostDown"


def _host_down(alerts: list[dict[str, Any]], url: str, status: str) -> list[dict[str, Any]]:
    return [
        a
        for a in alerts
        if a["labels"].get("alertname") == HOST_DOWN
        and a["labels"].get("host") == url
        and a["status"] == status
    ]


async def test_a_host_down_alert_reaches_the_webhook_then_resolves(tmp_path: Path) -> None:
    tool("prometheus")  # skip (or fail in CI) before starting anything
    alertmanager_binary()
    # The shipped expressions and labels, but LibertaiHostDown waits 15 minutes as shipped: every
    # `for:` is 2 s here so that it fires within the test.
    rules = shorten_for(SHIPPED_RULES.read_text(), "2s")
    async with receiver() as got:
        # The shipped routes and receivers; its 30 s group_wait and 5 min group_interval would hold
        # the first message and the resolution too long for a test, so both are 1 s in this copy.
        routing = with_telegram_api(fast_routing(SHIPPED_ROUTING.read_text()), got.url + "/telegram")
        env = {**SAMPLE_ENV, "ALERT_WEBHOOK_URL": got.url + "/alerts"}
        async with (
            running_alertmanager(tmp_path / "alertmanager", routing, env) as am,
            network("demo") as net,
            serving(settings_for(net, tmp_path)) as svc,
        ):
            config = local_config(
                SHIPPED_CONFIG.read_text(), svc.url.removeprefix("http://"), "1s", alertmanager=am.address
            )
            async with running_prometheus(tmp_path / "prometheus", config, rules) as prom:
                try:
                    await _outage(prom, net, got)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{_diagnosis(prom, am, got)}") from None


async def _outage(prom: Prometheus, net: Any, got: Receiver) -> None:
    url = next(h["normalized_url"] for h in net.ground_truth()["hosts"] if h["name"] == HOST)

    # Settled first: the host is up in Prometheus and no host-down alert of it is active (before
    # the first probes every host counts as down).
    async def settled() -> bool:
        up = await prom.result(f'libertai_monitor_host_up{{host="{url}"}} == 1')
        active = [a for a in await prom.alerts() if a["labels"].get("host") == url]
        return bool(up) and not active

    await eventually(settled, timeout=20, every=0.5)
    before = len(got.payloads)

    net.set_host(HOST, down=True)
    fired = await eventually(lambda: _host_down(got.alerts(before), url, "firing"), timeout=25, every=0.25)
    alert = fired[0]
    assert alert["labels"]["severity"] == "warning"
    assert url in alert["annotations"]["summary"]
    models = {a["labels"]["model"] for a in fired}
    # The Telegram route got it too, with the configured chat and the summary in the text.
    sent = await eventually(lambda: [b for _, b in got.telegram if url in str(b.get("text"))], timeout=10)
    assert str(sent[0]["chat_id"]) == SAMPLE_ENV["TELEGRAM_CHAT_ID"]
    assert {token for token, _ in got.telegram} == {SAMPLE_ENV["TELEGRAM_BOT_TOKEN"]}

    net.set_host(HOST, down=False)

    def resolved() -> set[str]:
        done = {a["labels"]["model"] for a in _host_down(got.alerts(before), url, "resolved")}
        return done if done >= models else set()

    await eventually(resolved, timeout=25, every=0.25)


def _diagnosis(prom: Prometheus, am: Alertmanager, got: Receiver) -> str:
    """What each part saw, for a failure's message."""
    return "\n".join(
        [
            f"--- webhook payloads: {[(p.get('status'), p.get('groupLabels')) for p in got.payloads]}",
            f"--- telegram messages: {len(got.telegram)}",
            "--- Alertmanager log (tail):",
            am.log_tail(),
            "--- Prometheus log (tail):",
            prom.log_tail(),
        ]
    )
