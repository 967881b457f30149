"""The settings both transports take, checked once at construction (bad ones raise ValueError)."""

from __future__ import annotations

import math
import os
import random
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from libertai_failover.clock import SYSTEM_CLOCK, Clock
from libertai_failover.core import Attempt, FailoverCore, Spread
from libertai_failover.tls import make_ssl_context
from libertai_failover.urls import AllowList, normalise_url

__all__ = ["DEFAULT_ALLOWED_HOSTS", "Options", "check_transport"]

DEFAULT_ALLOWED_HOSTS = "https://*.libertai.io"  # the service's own default


@dataclass(frozen=True)
class Options:
    monitor_url: str
    gateway_url: str | None = None
    # A comma-separated string, a list of patterns (as the service's TOML takes) or an AllowList;
    # kept as an AllowList.
    allowed_hosts: str | Iterable[str] | AllowList = DEFAULT_ALLOWED_HOSTS
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
        _url("monitor_url", self.monitor_url)
        if self.gateway_url is not None:
            _url("gateway_url", self.gateway_url)
        object.__setattr__(self, "allowed_hosts", _allow_list(self.allowed_hosts))
        if self.ca_bundle is not None:
            if not isinstance(self.ca_bundle, str | os.PathLike):
                raise ValueError(f"ca_bundle must be the path of a PEM file, not {self.ca_bundle!r}")
            object.__setattr__(self, "ca_bundle", os.fspath(self.ca_bundle))
        for name in ("refresh", "monitor_timeout", "connect_timeout", "penalty", "affinity_ttl"):
            _seconds(name, getattr(self, name))
        for name in ("first_token_timeout", "hedge_after"):
            if getattr(self, name) is not None:
                _seconds(name, getattr(self, name))
        if not _number(self.hedge_budget) or not 0 <= self.hedge_budget <= 1:
            raise ValueError(
                f"hedge_budget must be a share of requests between 0 and 1, not {self.hedge_budget!r}"
            )
        if (
            not isinstance(self.affinity_size, int)
            or isinstance(self.affinity_size, bool)
            or self.affinity_size < 1
        ):
            raise ValueError(f"affinity_size must be a positive whole number, not {self.affinity_size!r}")
        if not isinstance(self.spread, bool):
            raise ValueError(f"spread must be True or False, not {self.spread!r}")
        if self.on_attempt is not None and not callable(self.on_attempt):
            raise ValueError(f"on_attempt must be callable (it gets each Attempt), not {self.on_attempt!r}")
        if not callable(getattr(self.clock, "monotonic", None)):
            raise ValueError(f"clock must be a libertai_failover.clock.Clock, not {self.clock!r}")
        if self.rng is not None and not isinstance(self.rng, random.Random):
            raise ValueError(f"rng must be a random.Random, not {self.rng!r}")

    def allow_list(self) -> AllowList:
        assert isinstance(self.allowed_hosts, AllowList)  # made one at construction
        return self.allowed_hosts

    def ssl_context(self) -> ssl.SSLContext:
        """System trust plus `ca_bundle` (CAs or pinned host certificates), as the service's."""
        try:
            return make_ssl_context(self.ca_bundle)
        except ValueError as exc:
            raise ValueError(f"ca_bundle: {exc}") from None

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


def check_transport(transport: object, kind: type) -> None:
    """The `transport` argument: None (a pooled one) or an httpx2 transport of `kind`."""
    if transport is not None and not isinstance(transport, kind):
        raise ValueError(f"transport must be an httpx2.{kind.__name__} (or None), not {transport!r}")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(name: str, value: object) -> None:
    if not _number(value) or not value > 0:  # type: ignore[operator]
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


def _url(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a URL string, not {value!r}")
    try:
        normalise_url(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _allow_list(value: object) -> AllowList:
    """`allowed_hosts` as an AllowList, from a comma-separated string or a list of patterns."""
    if isinstance(value, AllowList):
        return value
    if isinstance(value, str):
        spec = value
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = list(value)
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f"allowed_hosts must hold URL patterns as strings, not {items!r}")
        spec = ",".join(items)
    else:
        raise ValueError(f"allowed_hosts must be a string or a list of URL patterns, not {value!r}")
    try:
        return AllowList.parse(spec)
    except ValueError as exc:
        raise ValueError(f"allowed_hosts: {exc}") from None
