"""Throughput of a (model, host): output tokens per second and the median gap between tokens.

Every `throughput_interval` (1800 s by default) each up host of a text model gets one billed,
streamed chat completion of `throughput_tokens` (16) output tokens, prompt starting with a fresh
nonce like the completion probe's (the probe kind `throughput` of `monitor.probe.prober`). What it
measures, from the arrival times of the chunks that carry text (content or reasoning; not the
role-only or finish chunks):

* `tokens`: the host's `usage.completion_tokens` when it sends usage, else the chunks counted;
* `tokens_per_s`: (tokens - 1) / (last text chunk - first text chunk), the decode rate a client
  sees once the first token is there (the first token's wait is what `ttft` measures);
* `inter_token_ms_p50`: the median (nearest-rank, as everywhere in the monitor) gap between text
  chunks, divided by the tokens per gap when usage says a chunk carried several.

Throughput is not health evidence: a failed measurement changes no state; the last successful one
is shown (`/v1/hosts`, metrics) and ranks hosts for `/v1/best?sort=throughput`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from monitor.core.percentile import percentile

__all__ = ["Throughput", "by_throughput", "measure"]


@dataclass(frozen=True, slots=True)
class Throughput:
    """What one throughput probe measured; `tokens_per_s` is None when the stream was too short
    to measure (fewer than two tokens, or all in one instant)."""

    tokens: int
    tokens_per_s: float | None
    inter_token_ms_p50: float | None

    @property
    def measured(self) -> bool:
        return self.tokens_per_s is not None


def measure(arrivals_s: Sequence[float], usage_tokens: int | None) -> Throughput:
    """The throughput of one stream from the arrival times (seconds, any origin) of its text
    chunks and the host's completion token count if it sent one."""
    chunks = len(arrivals_s)
    tokens = usage_tokens if usage_tokens is not None and usage_tokens > 0 else chunks
    if chunks < 2 or tokens < 2:
        return Throughput(tokens, None, None)
    span = arrivals_s[-1] - arrivals_s[0]
    gaps = [b - a for a, b in itertools.pairwise(arrivals_s)]
    per_gap = (tokens - 1) / (chunks - 1)  # tokens a chunk brought, when usage says more than one
    p50 = percentile(gaps, 50)
    rate = (tokens - 1) / span if span > 0 else None
    return Throughput(tokens, rate, None if p50 is None else p50 * 1000.0 / per_gap)


def by_throughput(
    best: str | None, fallbacks: Sequence[str], eligible: Iterable[str], rate: Mapping[str, float | None]
) -> tuple[str | None, tuple[str, ...]]:
    """(best, fallbacks) ordered by throughput instead of time to first token: the eligible hosts
    (those that may be best) by tokens per second, highest first, unmeasured ones after in their
    latency order; then the other fallbacks as they were. Without an eligible host, as it was."""
    order = [h for h in (best, *fallbacks) if h is not None]
    allowed = set(eligible)
    contenders = [h for h in order if h in allowed]
    if best is None or not contenders:
        return best, tuple(fallbacks)

    def key(h: str) -> tuple[bool, float]:
        value = rate.get(h)
        return (value is None, -(value or 0.0))

    ranked = sorted(contenders, key=key)  # stable: ties keep their latency order
    rest = [h for h in order if h not in allowed]
    return ranked[0], (*ranked[1:], *rest)
