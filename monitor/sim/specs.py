"""The values a scenario of the simulated network is made of: hosts, models, behaviours, the gateway.

Everything here is a frozen value; the running network keeps the current `Behaviour` of each host
and replaces it (never mutates it) when a test changes it at run time. Parsing them from TOML is
`monitor.sim.scenario`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "FAULTS",
    "GATEWAY_FAULTS",
    "ROUTINGS",
    "Behaviour",
    "Dist",
    "DistKind",
    "DownMode",
    "Fault",
    "Flap",
    "GatewayFault",
    "GatewaySpec",
    "HostSpec",
    "ModelKind",
    "ModelSpec",
    "Routing",
    "Scenario",
    "TimeWindow",
]

DistKind = Literal["fixed", "normal", "lognormal"]
ModelKind = Literal["text", "image", "embedding"]
Fault = Literal[
    "none", "hang", "slow_headers", "html", "redirect", "error_event", "cut", "endless", "bad_json"
]
DownMode = Literal["503", "refuse"]
GatewayFault = Literal["ok", "500", "html", "invalid_json", "hang"]
# How the simulated gateway orders a model's hosts: as listed, or fewest requests it has in flight
# to each first (LibertAI's gateway counts them in Redis).
Routing = Literal["ordered", "least_in_flight"]
ROUTINGS: tuple[str, ...] = ("ordered", "least_in_flight")

FAULTS: tuple[str, ...] = (
    "none",
    "hang",
    "slow_headers",
    "html",
    "redirect",
    "error_event",
    "cut",
    "endless",
    "bad_json",
)
GATEWAY_FAULTS: tuple[str, ...] = ("ok", "500", "html", "invalid_json", "hang")
TimeWindow = tuple[float, float]  # [start, end) in seconds since the network started


@dataclass(frozen=True, slots=True)
class Dist:
    """A delay distribution in milliseconds.

    `ms` is the fixed value, the normal's mean or the lognormal's median; `spread` is the normal's
    standard deviation (ms) or the lognormal's sigma (dimensionless).
    """

    kind: DistKind = "fixed"
    ms: float = 0.0
    spread: float = 0.0

    @property
    def median_ms(self) -> float:
        return self.ms

    def to_json(self) -> dict[str, Any]:
        if self.kind == "fixed":
            return {"dist": "fixed", "ms": self.ms}
        if self.kind == "normal":
            return {"dist": "normal", "mean_ms": self.ms, "sd_ms": self.spread}
        return {"dist": "lognormal", "median_ms": self.ms, "sigma": self.spread}


@dataclass(frozen=True, slots=True)
class Flap:
    """Periodic outage: down for `down_for` seconds at the start of every `period`, shifted by `offset`."""

    period: float
    down_for: float
    offset: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {"period": self.period, "down_for": self.down_for, "offset": self.offset}


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How one host behaves. Every field can be set in TOML and changed at run time."""

    ttft: Dist = Dist("fixed", 100.0)
    itl: Dist = Dist("fixed", 20.0)
    # Time to first token of a prompt the host has answered before (its prompt cache, as llama.cpp
    # and vLLM keep one); None: no cache, every prompt takes `ttft`.
    cached_ttft: Dist | None = None
    tokens: int = 16
    # (status, probability) per completion/messages/embedding request; health is never affected.
    errors: tuple[tuple[int, float], ...] = ()
    retry_after: float = 1.0
    down: bool = False
    down_windows: tuple[TimeWindow, ...] = ()
    flap: Flap | None = None
    down_mode: DownMode = "503"
    key_distributed: bool = True
    key_blocked: bool = False
    loaded: bool = True
    fault: Fault = "none"
    fault_after_tokens: int = 1  # tokens sent before an error_event or a cut
    header_delay_ms: float = 30_000.0
    html_status: int = 200
    redirect_to: str = ""
    redirect_status: int = 307
    listed: bool = True
    # None: listed all the time (subject to `listed`); otherwise only inside these windows.
    listed_windows: tuple[TimeWindow, ...] | None = None
    # Capacity of each model's server on this host (see monitor.sim.capacity): sequences generated
    # at once (None: unlimited), the rest wait in a FIFO queue.
    slots: int | None = None
    # Prefix cache: a prompt that starts with one this server started within `cache_ttl` seconds
    # gets its TTFT times `cache_factor`. None: no prefix cache.
    cache_ttl: float | None = None
    cache_factor: float = 0.3
    # The model it really serves (`monitor.sim.model`): by default, the same as every other host.
    tokenizer_offset: int = 0
    greedy: tuple[str, ...] = ()
    logprobs: bool = True
    logprob_noise: float = 0.0
    logprob_shift: float = 0.0
    # The POST paths this host accepts (its models' `allowed_paths`); any other answers 400
    # "Invalid inference path". None: every path its models serve.
    paths: tuple[str, ...] | None = None

    @property
    def error_rate(self) -> float:
        return sum(rate for _, rate in self.errors)

    def to_json(self) -> dict[str, Any]:
        return {
            "ttft": self.ttft.to_json(),
            "itl": self.itl.to_json(),
            "cached_ttft": None if self.cached_ttft is None else self.cached_ttft.to_json(),
            "tokens": self.tokens,
            "errors": {str(status): rate for status, rate in self.errors},
            "retry_after": self.retry_after,
            "down": self.down,
            "down_windows": [list(w) for w in self.down_windows],
            "flap": self.flap.to_json() if self.flap else None,
            "down_mode": self.down_mode,
            "key_distributed": self.key_distributed,
            "key_blocked": self.key_blocked,
            "loaded": self.loaded,
            "fault": self.fault,
            "fault_after_tokens": self.fault_after_tokens,
            "header_delay_ms": self.header_delay_ms,
            "html_status": self.html_status,
            "redirect_to": self.redirect_to,
            "redirect_status": self.redirect_status,
            "listed": self.listed,
            "listed_windows": None if self.listed_windows is None else [list(w) for w in self.listed_windows],
            "slots": self.slots,
            "cache_ttl": self.cache_ttl,
            "cache_factor": self.cache_factor,
            "tokenizer_offset": self.tokenizer_offset,
            "greedy": list(self.greedy),
            "logprobs": self.logprobs,
            "logprob_noise": self.logprob_noise,
            "logprob_shift": self.logprob_shift,
            "paths": None if self.paths is None else list(self.paths),
        }

    def summary(self) -> str:
        """One short line for the host table."""
        parts = [f"ttft {_dist_text(self.ttft)}", f"itl {_dist_text(self.itl)}"]
        if self.cached_ttft is not None:
            parts.append(f"cached ttft {_dist_text(self.cached_ttft)}")
        if self.slots is not None:
            parts.append(f"{self.slots} slots")
        if self.cache_ttl is not None:
            parts.append(f"prefix cache {self.cache_ttl:g}s x{self.cache_factor:g}")
        if self.errors:
            parts.append("errors " + ",".join(f"{s}:{r:g}" for s, r in self.errors))
        if self.down:
            parts.append("DOWN")
        if self.down_windows:
            parts.append("down " + ",".join(f"{a:g}-{b:g}s" for a, b in self.down_windows))
        if self.flap:
            parts.append(f"flap {self.flap.down_for:g}s/{self.flap.period:g}s")
        if self.down_mode == "refuse" and (self.down or self.down_windows or self.flap):
            parts.append("refuses when down")
        if not self.key_distributed:
            parts.append("key not distributed")
        if self.key_blocked:
            parts.append("key blocked")
        if not self.loaded:
            parts.append("not loaded")
        if self.fault != "none":
            parts.append(
                f"fault {self.fault}" + (f"->{self.redirect_to}" if self.fault == "redirect" else "")
            )
        if self.tokenizer_offset or self.greedy or self.logprob_shift:
            parts.append("another model")
        if not self.logprobs:
            parts.append("no logprobs")
        if self.paths is not None:
            parts.append("paths " + ",".join(self.paths))
        if not self.listed:
            parts.append("unlisted")
        elif self.listed_windows is not None:
            parts.append("listed " + ",".join(f"{a:g}-{b:g}s" for a, b in self.listed_windows))
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    kind: ModelKind = "text"
    # A reasoning model is also listed by the gateway as `{id}-thinking`, with the same servers.
    reasoning: bool = False
    dim: int = 64

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "reasoning": self.reasoning, "dim": self.dim}


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    models: tuple[str, ...]
    behaviour: Behaviour = Behaviour()
    tls: bool = False
    # How the gateway lists the host; `{scheme}`, `{host}` and `{port}` are filled in at start.
    listed_as: str = "{scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    fault: GatewayFault = "ok"
    # Seconds the proxy waits for a host's next byte before it fails over to the next host.
    upstream_timeout: float = 30.0
    routing: Routing = "ordered"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    models: tuple[ModelSpec, ...]
    hosts: tuple[HostSpec, ...]
    gateway: GatewaySpec = GatewaySpec()
    description: str = ""
    # Empty: any non-empty key is valid (so SDKs work with whatever key a user types).
    keys: tuple[str, ...] = ()
    blocked_keys: tuple[str, ...] = ()

    def model(self, model_id: str) -> ModelSpec | None:
        for m in self.models:
            if m.id == model_id:
                return m
        return None


def _dist_text(d: Dist) -> str:
    if d.kind == "fixed":
        return f"{d.ms:g}ms"
    if d.kind == "normal":
        return f"N({d.ms:g}, {d.spread:g})ms"
    return f"logN(median {d.ms:g}ms, s {d.spread:g})"
