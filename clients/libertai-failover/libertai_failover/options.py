"""The settings both transports take, checked once at construction (bad ones raise ValueError)."""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from libertai_failover.clock import SYSTEM_CLOCK, Clock
from libertai_failover.core import Attempt, FailoverCore, Spread
from libertai_failover.tls import make_ssl_context
from libertai_failover.urls import AllowList, normalise_url

__all__ = ["DEFAULT_ALLOWED_HOSTS", "Options"]

DEFAULT_ALLOWED_HOSTS = "https://*.libertai.io"  # the service's own default


@dataclass(frozen=True)
class Options:
    monitor_url: str
    gateway_url: str | None = None
    allowed_hosts: str | AllowList = DEFAULT_ALLOWED_HOSTS
    ca_bundle: str | None = None
    refresh: float = 5.0
    monitor_timeout: float = 2.0
    connect_timeout: float = 3.0
    penalty: float = 30.0
    on_attempt: Callable[[Attempt], None] | None = None
    clock: Clock = SYSTEM_CLOCK
    spread: bool = True
    first_token_timeout: float | None = None
    hedge_after: float | None = None
    hedge_budget: float = 0.1
    affinity_size: int = 10_000
    affinity_ttl: float = 1800.0
    rng: random.Random | None = None

    def __post_init__(self) -> None:
        normalise_url(self.monitor_url)
        if self.gateway_url is not None:
            normalise_url(self.gateway_url)
        for name in ("refresh", "monitor_timeout", "connect_timeout", "penalty"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        for name in ("first_token_timeout", "hedge_after"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if not 0 <= self.hedge_budget <= 1:
            raise ValueError("hedge_budget must be a share of requests between 0 and 1")
        if self.affinity_size < 1 or not self.affinity_ttl > 0:
            raise ValueError("affinity_size and affinity_ttl must be positive")

    def allow_list(self) -> AllowList:
        if isinstance(self.allowed_hosts, AllowList):
            return self.allowed_hosts
        return AllowList.parse(self.allowed_hosts)

    def ssl_context(self) -> ssl.SSLContext:
        """System trust plus `ca_bundle` (CAs or pinned host certificates), as the service's."""
        return make_ssl_context(self.ca_bundle)

    def monitor_client(self) -> dict[str, Any]:
        """The settings of the HTTP client that asks the monitor (no proxy from the environment)."""
        return {"timeout": self.monitor_timeout, "verify": self.ssl_context(), "trust_env": False}

    def core(self, new_ready: Callable[[], Any]) -> FailoverCore:
        return FailoverCore(
            monitor_url=normalise_url(self.monitor_url),
            gateway_url=self.gateway_url,
            allowed_hosts=self.allow_list(),
            refresh=self.refresh,
            penalty=self.penalty,
            connect_timeout=self.connect_timeout,
            on_attempt=self.on_attempt,
            clock=self.clock,
            new_ready=new_ready,
            spread=Spread(
                self.spread,
                self.first_token_timeout,
                self.hedge_after,
                self.hedge_budget,
                self.affinity_size,
                self.affinity_ttl,
            ),
            rng=self.rng,
        )
