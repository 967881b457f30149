"""The TLS trust that probes and the failover client share: the system's default trust store plus
an operator's PEM bundle, verification never switched off."""

from __future__ import annotations

import ssl

__all__ = ["make_ssl_context"]


def make_ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """System default trust plus the PEM file `ca_bundle`; `ValueError` if it cannot be loaded."""
    context = ssl.create_default_context()
    if ca_bundle:
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"CA bundle {ca_bundle!r}: cannot load PEM certificates ({exc})") from None
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context
