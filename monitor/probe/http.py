"""The one shared HTTP client session, and the small I/O helpers that probes and discovery share.

Choices made in `make_session`:

- TLS: the system's default trust store (`ssl.create_default_context()`: certificate and host name
  verification on) plus, when `ca_bundle` is given, the PEM certificates in that file. A bundle may
  hold CAs or pinned host certificates: `VERIFY_X509_PARTIAL_CHAIN` is set so a certificate in the
  bundle is a trust anchor even when it is not a self-signed root. Verification is never switched
  off.
- Connections: one bounded `TCPConnector` (`limit` in total, `limit_per_host` per host:port:tls)
  with keep-alive, so probes reuse connections.
- DNS: aiohttp's in-process cache is kept on with a 60 s TTL (`DNS_CACHE_TTL_S`): a host probed
  every few seconds is not resolved every time, and an address change is seen within a minute.
  Failed look-ups are not cached by aiohttp, so a DNS error is retried on the next probe. The
  resolver is aiohttp's default (the threaded `getaddrinfo`; aiodns is not a dependency).
- No cookie jar (`DummyCookieJar`): a host must not be able to make later probes differ.
- `raise_for_status=False`, `auto_decompress=True` (byte bounds count decompressed bytes, so a
  compressed bomb is still cut at the bound), `trust_env=False` (no proxy from the environment).
- Timeouts: the session has NO default timeout (aiohttp's is 300 s total and 30 s to connect, which
  would silently cap or outlast ours). Every caller bounds its whole request, body included, with
  `asyncio.timeout(...)`, as the probes and discovery in this package do.
- Responses are `monitor.probe.certs.PeerResponse`s, which keep their connection's TLS object
  (for the host's certificate).
- A `TraceConfig` records per-request connection timings into the `trace_request_ctx` passed to
  a request (a `ConnectTiming`); probes use it for `connect_ms`.
"""

from __future__ import annotations

import ssl
import time
from types import SimpleNamespace

import aiohttp

from monitor.core.results import Outcome
from monitor.core.tls import make_ssl_context
from monitor.probe.certs import PeerResponse

__all__ = [
    "DNS_CACHE_TTL_S",
    "BodyTooLarge",
    "ConnectTiming",
    "classify_exception",
    "make_session",
    "make_trace_config",
    "read_bounded",
]

DNS_CACHE_TTL_S = 60


class ConnectTiming:
    """Per-request connection timing, filled by the trace config: pass as `trace_request_ctx`.

    `connect_s` is the time spent opening a new connection (DNS, TCP and TLS), 0.0 when a pooled
    connection was reused, None when no connection event was seen (a session without the trace
    config, or a failure before the connection was made).
    """

    __slots__ = ("_started", "connect_s")

    def __init__(self) -> None:
        self._started = 0.0
        self.connect_s: float | None = None


async def _on_create_start(
    session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceConnectionCreateStartParams
) -> None:
    timing = ctx.trace_request_ctx
    if isinstance(timing, ConnectTiming):
        timing._started = time.perf_counter()


async def _on_create_end(
    session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceConnectionCreateEndParams
) -> None:
    timing = ctx.trace_request_ctx
    if isinstance(timing, ConnectTiming) and timing._started:
        timing.connect_s = time.perf_counter() - timing._started


async def _on_reuse(
    session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceConnectionReuseconnParams
) -> None:
    timing = ctx.trace_request_ctx
    if isinstance(timing, ConnectTiming):
        timing.connect_s = 0.0


def make_trace_config() -> aiohttp.TraceConfig:
    """A TraceConfig that fills a `ConnectTiming` given as a request's `trace_request_ctx`."""
    config = aiohttp.TraceConfig()
    config.on_connection_create_start.append(_on_create_start)
    config.on_connection_create_end.append(_on_create_end)
    config.on_connection_reuseconn.append(_on_reuse)
    return config


def make_session(
    *,
    ca_bundle: str | None,
    limit: int,
    limit_per_host: int = 4,
    user_agent: str,
    keepalive_s: float = 15.0,
) -> aiohttp.ClientSession:
    """The service's one shared client session (see the module docstring). Call inside the loop.

    `keepalive_s` should outlast the probe interval: a host probed every 30 s through connections
    dropped after aiohttp's default 15 s pays a new TCP (and TLS) handshake on every probe.
    """
    if limit < 1 or limit_per_host < 1:
        raise ValueError("connection limits must be at least 1")
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit_per_host,
        keepalive_timeout=keepalive_s,
        ssl=make_ssl_context(ca_bundle),
        use_dns_cache=True,
        ttl_dns_cache=DNS_CACHE_TTL_S,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": user_agent},
        raise_for_status=False,
        timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None),
        trace_configs=[make_trace_config()],
        trust_env=False,
        response_class=PeerResponse,  # keeps the TLS object, for the host's certificate
    )


class BodyTooLarge(Exception):
    """A body went past its byte bound."""


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Read the whole body, at most `limit` bytes (decompressed); `BodyTooLarge` past the bound."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body of {declared} bytes exceeds {limit}")
    content = response.content
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.read(limit + 1 - size)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def drop_tracebacks(exc: BaseException) -> None:
    """Drop the tracebacks of `exc` and of the exceptions it chains. A traceback holds the frames
    that failed, and those frames hold the exception (and aiohttp's futures): a cycle that only
    the garbage collector frees, and at scale they made every collection long
    (docs/performance.md)."""
    seen: set[int] = set()
    chained: BaseException | None = exc
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        chained.__traceback__ = None
        chained = chained.__cause__ or chained.__context__


def classify_exception(exc: BaseException) -> tuple[Outcome, str]:
    """Map a transport-level exception to an outcome and a short, secret-free detail.

    The detail is the exception's class name (plus the OS error text for connection failures):
    never the exception's message, which may quote URLs or server text.

    The exception's tracebacks are dropped (see `drop_tracebacks`): every caller keeps only the
    outcome and the detail.
    """
    drop_tracebacks(exc)
    name = type(exc).__name__
    if isinstance(exc, TimeoutError):  # asyncio.timeout and aiohttp's ServerTimeoutError family
        return Outcome.TIMEOUT, name
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch | ssl.SSLError):
        return Outcome.TLS_ERROR, name
    if isinstance(exc, aiohttp.ClientConnectorError):
        strerror = getattr(exc.os_error, "strerror", None)
        return Outcome.CONNECT_ERROR, f"{name}: {strerror}" if strerror else name
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError):
        # Disconnected or reset before a complete answer arrived.
        return Outcome.CONNECT_ERROR, name
    if isinstance(exc, BodyTooLarge):
        return Outcome.BAD_RESPONSE, str(exc)
    # ClientPayloadError, ClientResponseError (malformed HTTP), InvalidURL, anything unexpected.
    return Outcome.BAD_RESPONSE, name
