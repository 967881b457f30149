"""The prober and host certificates: the certificate of a new TLS connection is reported (a pooled
one is not reported again), and a keyed probe to a pinned host that shows another certificate
never sends its request, while health probes go on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from monitor.core.certs import PeerCert
from monitor.core.results import Outcome, ProbeKind
from monitor.probe.prober import Prober

MODEL = "hermes-3-8b"
MakeProber = Callable[..., Prober]


class _Watch:
    def __init__(self, pin: str | None = None) -> None:
        self.pinned = pin
        self.reported: list[tuple[str, PeerCert]] = []

    def pin(self, host: str) -> str | None:
        return self.pinned

    def seen(self, host: str, model: str, cert: PeerCert, at: float) -> None:
        self.reported.append((host, cert))


@pytest.fixture
async def trusting(tls: Any) -> AsyncIterator[aiohttp.ClientSession]:
    from monitor.probe.http import make_session

    session = make_session(ca_bundle=tls.ca_file, limit=4, user_agent="t")
    yield session
    await session.close()


async def test_a_new_connections_certificate_is_reported_once(
    tls_hosts: Any, trusting: aiohttp.ClientSession, make_prober: MakeProber
) -> None:
    watch = _Watch()
    prober = make_prober(sess=trusting, certs=watch)
    host = tls_hosts.url("ok")
    for _ in range(2):
        assert (await prober.health(host, MODEL)).outcome is Outcome.OK
    [(seen_host, cert)] = watch.reported
    assert seen_host == host and len(cert.sha256) == 64 and cert.not_after is not None


async def test_a_keyed_probe_to_a_host_showing_another_certificate_than_its_pin_is_not_sent(
    tls_hosts: Any, trusting: aiohttp.ClientSession, make_prober: MakeProber
) -> None:
    prober = make_prober(sess=trusting, certs=_Watch(pin="0" * 64))
    r = await prober.completion(tls_hosts.url("ok"), MODEL)
    assert r.outcome is Outcome.TLS_ERROR and "not accepted" in r.detail
    assert tls_hosts.seen == []
    assert (await prober.health(tls_hosts.url("ok"), MODEL)).outcome is Outcome.OK


async def test_a_keyed_probe_to_a_host_showing_its_pin_is_sent(
    tls_hosts: Any, trusting: aiohttp.ClientSession, make_prober: MakeProber
) -> None:
    learn = _Watch()
    await make_prober(sess=trusting, certs=learn).health(tls_hosts.url("ok"), MODEL)
    [(_, cert)] = learn.reported
    prober = make_prober(sess=trusting, certs=_Watch(pin=cert.sha256))
    assert (await prober.completion(tls_hosts.url("ok"), MODEL)).outcome is Outcome.OK


@pytest.mark.parametrize("kind", [k for k in ProbeKind if k is not ProbeKind.HEALTH])
async def test_no_probe_that_carries_the_key_reaches_a_host_showing_another_certificate_than_its_pin(
    kind: ProbeKind, tls_hosts: Any, trusting: aiohttp.ClientSession, make_prober: MakeProber
) -> None:
    prober = make_prober(sess=trusting, certs=_Watch(pin="0" * 64))
    host = tls_hosts.url("ok")
    r = await (prober.auth(host, MODEL) if kind is ProbeKind.AUTH else prober.probe(kind, host, MODEL))
    assert r.outcome is Outcome.TLS_ERROR and "not accepted" in r.detail
    assert tls_hosts.seen == []
