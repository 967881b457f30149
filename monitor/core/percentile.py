"""The one definition of a percentile that every figure the service reports uses.

Nearest-rank: the p-th percentile of n sorted values is the value at 1-based rank ceil(p/100 * n),
always an observed value (p50 of [1, 2, 3, 4] is 2, p95 of 1..20 is 19). `/v1/hosts` (the live
window) and `/v1/history` (roll-ups and raw buckets) report the same kind of figure under the same
field names, so they must compute it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["percentile", "percentile_of_sorted"]


def percentile_of_sorted(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (0 < p <= 100) of values already sorted ascending; None if empty."""
    n = len(ordered)
    if n == 0:
        return None
    rank = max(1, math.ceil(p / 100.0 * n))
    return ordered[min(rank, n) - 1]


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (0 < p <= 100) of `values` in any order; None when there are none."""
    return percentile_of_sorted(sorted(values), p)
