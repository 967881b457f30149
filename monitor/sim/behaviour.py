"""Distributions, schedules and the per-request decisions a simulated host makes.

Pure functions of a Behaviour, a time and a `random.Random`: no I/O, so the same seed and the same
sequence of requests give the same answers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from monitor.sim.specs import Behaviour, Dist, TimeWindow


def host_rng(seed: int, host_name: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so this is stable across runs and Pythons.
    return random.Random(f"libertai-sim:{seed}:{host_name}")


def sample_ms(dist: Dist, rng: random.Random) -> float:
    if dist.kind == "fixed":
        return dist.ms
    if dist.kind == "normal":
        return max(0.0, rng.gauss(dist.ms, dist.spread))
    if dist.ms <= 0:
        return 0.0
    return math.exp(rng.gauss(math.log(dist.ms), dist.spread))


def _in_windows(windows: tuple[TimeWindow, ...], t: float) -> bool:
    return any(start <= t < end for start, end in windows)


def is_down(b: Behaviour, t: float) -> bool:
    """Whether the host is down `t` seconds after the network started."""
    if b.down or _in_windows(b.down_windows, t):
        return True
    if b.flap is not None and b.flap.down_for > 0:
        return (t - b.flap.offset) % b.flap.period < b.flap.down_for
    return False


def is_listed(b: Behaviour, t: float) -> bool:
    if not b.listed:
        return False
    return b.listed_windows is None or _in_windows(b.listed_windows, t)


def is_scheduled(b: Behaviour) -> bool:
    """Whether the host's up/down state changes over time on its own."""
    return bool(b.down_windows) or (b.flap is not None and b.flap.down_for > 0)


def pick_error(b: Behaviour, rng: random.Random) -> int | None:
    """The error status this request gets, if any (one draw per billed request)."""
    if not b.errors:
        return None
    u = rng.random()
    acc = 0.0
    for status, rate in b.errors:
        acc += rate
        if u < acc:
            return status
    return None


@dataclass(frozen=True, slots=True)
class Plan:
    """Timing of one generation: seconds to the first token, then seconds before each further token."""

    ttft_s: float
    gaps_s: tuple[float, ...]

    @property
    def tokens(self) -> int:
        return 1 + len(self.gaps_s)

    @property
    def total_s(self) -> float:
        return self.ttft_s + sum(self.gaps_s)


def plan_generation(
    b: Behaviour, rng: random.Random, max_tokens: int | None, cached: bool = False, prefix_hit: bool = False
) -> Plan:
    """`cached`: the prompt is in the host's prompt cache (used only if it keeps one); `prefix_hit`:
    its prefix cache holds the start of the prompt (TTFT times `cache_factor`)."""
    n = b.tokens if max_tokens is None else max(1, min(b.tokens, max_tokens))
    first = b.cached_ttft if cached and b.cached_ttft is not None else b.ttft
    ttft = sample_ms(first, rng) / 1000.0 * (b.cache_factor if prefix_hit else 1.0)
    gaps = tuple(sample_ms(b.itl, rng) / 1000.0 for _ in range(n - 1))
    return Plan(ttft, gaps)
