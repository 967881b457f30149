"""The failover client, as the monitor ships it: the same objects as the light package
`libertai_failover` (clients/libertai-failover), which applications install alone. See there."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libertai_failover import (
        DEFAULT_ALLOWED_HOSTS,
        HOST_HEADER,
        AsyncFailoverTransport,
        Attempt,
        FailoverTransport,
    )

__all__ = ["DEFAULT_ALLOWED_HOSTS", "HOST_HEADER", "AsyncFailoverTransport", "Attempt", "FailoverTransport"]


def __getattr__(name: str) -> Any:
    # On first use: the `best` command imports the answers alone, without httpx2 (the `client` extra).
    if name not in __all__:
        raise AttributeError(f"module 'monitor.client' has no attribute {name!r}")
    return getattr(importlib.import_module("libertai_failover"), name)
