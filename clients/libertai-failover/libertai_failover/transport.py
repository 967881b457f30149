"""What the sync and async transports share: their settings, the failover core, and the shape of a
request's attempts. Only the sending and waiting differ, and stay in `sync` and `aio`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import httpx2

from libertai_failover.core import Attempts, FailoverCore
from libertai_failover.options import Options

__all__ = ["ReportingBase", "TransportBase"]

S = TypeVar("S")
InnerT = TypeVar("InnerT")
ClientT = TypeVar("ClientT")


class ReportingBase(Generic[S]):
    """The answer's body as given to the caller; a break is reported to the core, then raised."""

    def __init__(self, inner: S, attempts: Attempts) -> None:
        self._inner = inner
        self._attempts = attempts


class TransportBase(Generic[InnerT, ClientT]):
    """Sends each request that names a model to the monitor's best host for it, failing over to
    the next, then to the gateway. See `monitor.client` for the arguments."""

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

    def _answer(self, response: httpx2.Response, attempts: Attempts) -> httpx2.Response | None:
        """`response` for the caller, its body reporting a break; None: the caller closes it and the
        next host is tried."""
        if not attempts.answered(response):
            return None
        response.stream = self._reporting(response.stream, attempts)  # type: ignore[assignment]
        return response
