"""What the sync and async transports share: their settings, the failover core, the shape of a
request's tries and when to look at them again. Only the sending and waiting differ, and stay in
`sync` and `aio`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, TypeVar

import httpx2

from libertai_failover.core import Attempts, FailoverCore, Try
from libertai_failover.options import Options

__all__ = ["ReportingBase", "TransportBase", "due", "next_wake"]

S = TypeVar("S")
InnerT = TypeVar("InnerT")
ClientT = TypeVar("ClientT")


class ReportingBase(Generic[S]):
    """The answer's body as given to the caller: the first chunk when the transport already read
    it, then the rest; a break is reported to the core, then raised; closing it ends the try."""

    def __init__(self, inner: S, attempts: Attempts, t: Try, first: bytes | None, rest: Any) -> None:
        self._inner = inner
        self._attempts = attempts
        self._try = t
        self._first = first
        self._rest = rest


def next_wake(running: Iterable[Try], hedge_at: float | None) -> float | None:
    """When a running try's first-byte deadline or the hedge is due; None: nothing to wait for."""
    times = [t.started + t.deadline for t in running if t.deadline is not None]
    if hedge_at is not None:
        times.append(hedge_at)
    return min(times, default=None)


def due(t: Try, now: float) -> bool:
    """The try has had its time to a first byte."""
    return t.deadline is not None and now >= t.started + t.deadline


class TransportBase(Generic[InnerT, ClientT]):
    """Sends each request that names a model to a host the monitor offers for it, failing over to
    the next, then to the gateway. See `libertai_failover` for the arguments."""

    def __init__(
        self,
        monitor_url: str,
        transport: InnerT | None,
        options: dict[str, Any],
        new_ready: Callable[[], Any],
        new_transport: Callable[..., InnerT],
        new_client: Callable[..., ClientT],
    ) -> None:
        self.options = Options(monitor_url, **options)
        self._core: FailoverCore = self.options.core(new_ready)
        self._inner: InnerT = transport or new_transport(verify=self.options.ssl_context())
        self._monitor: ClientT = new_client(**self.options.monitor_client())

    # The subclass's body wrapper (sync or async iteration).
    _reporting: ClassVar[type[ReportingBase[Any]]]

    def _wrap(
        self, t: Try, response: httpx2.Response, attempts: Attempts, first: bytes | None, rest: Any
    ) -> httpx2.Response:
        """`response` for the caller, its body reporting a break and ending the try when closed."""
        response.stream = self._reporting(response.stream, attempts, t, first, rest)  # type: ignore[assignment]
        return response
