"""The running network's mutable state, shared by the host and gateway handlers: each host's current
behaviour and what it has received (the ground truth a test asserts on)."""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.sim.capacity import ModelCapacity
from monitor.sim.keys import Keyring, KeyStatus
from monitor.sim.specs import Behaviour, GatewaySpec, HostSpec, ModelSpec, Scenario

TTFT_TRUTH_LEN = 100
PROMPT_CACHE_LEN = 256  # prompts a host remembers (least recently used leave first)


@dataclass(slots=True)
class PathCount:
    total: int = 0
    with_key: int = 0  # carried one of the network's keys (valid or blocked)
    any_auth: int = 0  # carried any credentials at all

    def to_json(self) -> dict[str, int]:
        return {
            "total": self.total,
            "with_key": self.with_key,
            "without_key": self.total - self.with_key,
            "any_auth": self.any_auth,
        }


@dataclass(slots=True)
class Traffic:
    """What one endpoint (a host or the gateway) received, per path."""

    paths: dict[str, PathCount] = field(default_factory=dict)
    saw_key: bool = False

    def count(self, path: str, key: KeyStatus) -> None:
        c = self.paths.get(path)
        if c is None:
            c = self.paths[path] = PathCount()
        c.total += 1
        if key is not KeyStatus.MISSING:
            c.any_auth += 1
            if key is KeyStatus.VALID or key is KeyStatus.BLOCKED:
                c.with_key += 1
                self.saw_key = True

    def to_json(self) -> dict[str, dict[str, int]]:
        return {path: c.to_json() for path, c in sorted(self.paths.items())}


@dataclass(slots=True)
class SimHost:
    spec: HostSpec
    behaviour: Behaviour
    rng: random.Random
    models: dict[str, ModelSpec]
    port: int = 0
    listed_url: str = ""
    direct_url: str = ""
    traffic: Traffic = field(default_factory=Traffic)
    # Requests the simulated gateway forwarded: kept apart so `traffic` is what clients sent directly.
    via_gateway: dict[str, int] = field(default_factory=dict)
    models_requested: dict[str, dict[str, int]] = field(default_factory=dict)
    ttft_truth_ms: deque[float] = field(default_factory=lambda: deque(maxlen=TTFT_TRUTH_LEN))
    # Prompts answered (a digest of model + messages/prompt), newest last: the prompt cache.
    prompt_cache: OrderedDict[str, None] = field(default_factory=OrderedDict)
    cache_hits: int = 0
    # Gaps between the tokens the host sent in its streams (ms), newest last: what a throughput
    # measurement should recover.
    itl_truth_ms: deque[float] = field(default_factory=lambda: deque(maxlen=TTFT_TRUTH_LEN))
    # Slots, queue and prefix cache of each model's server (`spec.models`), made on first use.
    capacity: dict[str, ModelCapacity] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def model_capacity(self, model: str) -> ModelCapacity:
        cap = self.capacity.get(model)
        if cap is None:
            cap = self.capacity[model] = ModelCapacity()
        return cap

    def seen_prompt(self, digest: str) -> bool:
        """Whether the prompt was answered before (then it is a cache hit); remembers it."""
        hit = digest in self.prompt_cache
        self.prompt_cache[digest] = None
        self.prompt_cache.move_to_end(digest)
        if len(self.prompt_cache) > PROMPT_CACHE_LEN:
            self.prompt_cache.popitem(last=False)
        self.cache_hits += hit
        return hit

    def record_model(self, model: str, endpoint: str) -> None:
        per = self.models_requested.get(model)
        if per is None:
            per = self.models_requested[model] = {}
        per[endpoint] = per.get(endpoint, 0) + 1


@dataclass(slots=True)
class GatewayState:
    spec: GatewaySpec
    url: str = ""
    traffic: Traffic = field(default_factory=Traffic)
    # Requests the proxy has under way to each host (by name): what `least_in_flight` sorts by.
    in_flight: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class SimState:
    scenario: Scenario
    seed: int
    keyring: Keyring
    gateway: GatewayState
    hosts: dict[str, SimHost] = field(default_factory=dict)
    by_port: dict[int, SimHost] = field(default_factory=dict)
    by_model: dict[str, list[SimHost]] = field(default_factory=dict)  # in scenario order
    # Down windows, flapping, listing churn and every delay of an answer (queue, TTFT, tokens, the
    # prefix cache's age) run on this clock, so a test can move them with a `FakeClock` instead of
    # sleeping.
    clock: Clock = SYSTEM_CLOCK
    started_at: float = 0.0  # clock.monotonic() at start

    def elapsed(self) -> float:
        """Seconds since the network started: the clock of down windows, flapping and churn."""
        return self.clock.monotonic() - self.started_at

    def add_host(self, host: SimHost) -> None:
        self.hosts[host.name] = host
        for model in host.spec.models:
            self.by_model.setdefault(model, []).append(host)
