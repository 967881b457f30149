"""Reading a host's certificate off a probe's connection, and what the prober asks of the part
that keeps certificates (`monitor.parts.certs`).

The certificate is read from the TLS connection a response arrived on (its `ssl_object`), only on
a new connection: a pooled one showed its certificate when it was opened. aiohttp lets go of a
response's connection as soon as a small body has arrived, often before the caller sees the
response, so the session's response class (`PeerResponse`) keeps the TLS object when the response
starts. The fingerprint is the
SHA-256 of the DER certificate. The expiry is `getpeercert()`'s `notAfter`, which the standard
library fills only for a verified certificate: every connection the session opens is verified
(`monitor.probe.http`), except those of a keyed request to a pinned host, which compare the exact
certificate with the pin instead and are not read here.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Protocol

import aiohttp

from monitor.core.certs import PeerCert

__all__ = ["CertWatch", "PeerResponse", "peer_cert"]


class PeerResponse(aiohttp.ClientResponse):
    """A response that keeps the TLS object of the connection it arrived on (None without TLS)."""

    tls: ssl.SSLObject | None = None

    async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        tls = None if transport is None else transport.get_extra_info("ssl_object")
        self.tls = tls if isinstance(tls, ssl.SSLObject) else None
        return await super().start(connection)


class CertWatch(Protocol):
    def pin(self, host: str) -> str | None:
        """The SHA-256 (hex) that a keyed request to `host` must find; None: no pin."""
        ...

    def seen(self, host: str, model: str, cert: PeerCert, at: float) -> None:
        """`host` showed `cert` at `at` on a new connection (while probed for `model`)."""
        ...


def peer_cert(response: aiohttp.ClientResponse) -> PeerCert | None:
    """The certificate of the TLS connection `response` arrived on; None without TLS (or from a
    session whose response class is not `PeerResponse`)."""
    tls = response.tls if isinstance(response, PeerResponse) else None
    if tls is None:
        return None
    der = tls.getpeercert(binary_form=True)
    if not der:
        return None
    not_after: float | None = None
    text = (tls.getpeercert() or {}).get("notAfter")
    if isinstance(text, str):
        try:
            not_after = float(ssl.cert_time_to_seconds(text))
        except ValueError:
            not_after = None
    return PeerCert(hashlib.sha256(der).hexdigest(), not_after)
