"""What the probing process learnt of a (model, host) beside its health, as JSON text: an identity
probe's fingerprint, the paths it accepts and refuses, its last throughput. Pure.

These facts are kept in memory by the process that probes (`monitor.parts.recorder`) and stored,
the latest of each (model, host, kind), so that a follower and another vantage's answers show them
too. `encode` writes a fact; `decode` reads one back and checks every field: a stored value this
code cannot read raises `ValueError` (the reader skips and counts it), never anything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from monitor.core.identity import Fingerprint
from monitor.core.paths import Paths
from monitor.core.results import ProbeKind, ProbeResult
from monitor.core.throughput import Throughput

__all__ = ["FACT_KINDS", "Fact", "StoredFact", "decode", "encode", "fact_of"]

Fact = Fingerprint | Paths | Throughput
FACT_KINDS: Final = (ProbeKind.IDENTITY, ProbeKind.PATHS, ProbeKind.THROUGHPUT)
_TYPES: Final[Mapping[ProbeKind, type]] = {
    ProbeKind.IDENTITY: Fingerprint,
    ProbeKind.PATHS: Paths,
    ProbeKind.THROUGHPUT: Throughput,
}


@dataclass(frozen=True, slots=True)
class StoredFact:
    """One fact of a (model, host), learnt at `at` (epoch seconds)."""

    model: str
    host: str
    kind: ProbeKind
    at: float
    fact: Fact


def fact_of(result: ProbeResult) -> Fact | None:
    """The fact a result of a fact kind carries (None for any other result). A paths probe that
    left some path undecided is not `ok`, yet what it decided is learnt."""
    if result.kind is ProbeKind.PATHS:
        return result.paths if result.paths is not None and result.paths.known else None
    if not result.ok:
        return None
    if result.kind is ProbeKind.IDENTITY:
        return result.fingerprint
    if result.kind is ProbeKind.THROUGHPUT:
        return result.throughput
    return None


def encode(kind: ProbeKind, fact: Fact) -> str:
    """The JSON text of `fact` (ValueError: not a fact of `kind`, or not a finite number)."""
    if not isinstance(fact, _TYPES.get(kind, ())):
        raise ValueError(f"not a {kind.value} fact: {type(fact).__name__}")
    body: dict[str, Any]
    if isinstance(fact, Fingerprint):
        body = {
            "prompt_tokens": fact.prompt_tokens,
            "tokens": list(fact.tokens),
            "top_logprobs": dict(fact.top_logprobs),
        }
    elif isinstance(fact, Paths):
        body = {"accepted": list(fact.accepted), "refused": list(fact.refused)}
    else:
        body = {
            "tokens": fact.tokens,
            "tokens_per_s": fact.tokens_per_s,
            "inter_token_ms_p50": fact.inter_token_ms_p50,
        }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, allow_nan=False)


def decode(kind: ProbeKind, text: str) -> Fact:
    """The fact `text` holds (ValueError: not valid JSON of a `kind` fact)."""
    try:
        body = json.loads(text)
    except (TypeError, RecursionError) as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    if kind is ProbeKind.IDENTITY:
        logprobs = body.get("top_logprobs")
        if not isinstance(logprobs, dict):
            raise ValueError("top_logprobs: not an object")
        return Fingerprint(
            _int(body, "prompt_tokens"),
            _strings(body, "tokens"),
            {str(k): _number(v, "top_logprobs") for k, v in logprobs.items()},
        )
    if kind is ProbeKind.PATHS:
        return Paths(tuple(sorted(_strings(body, "accepted"))), tuple(sorted(_strings(body, "refused"))))
    if kind is ProbeKind.THROUGHPUT:
        return Throughput(
            _int(body, "tokens"),
            _optional_number(body, "tokens_per_s"),
            _optional_number(body, "inter_token_ms_p50"),
        )
    raise ValueError(f"{kind.value}: not a kind of fact")


def _int(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name}: not a count")
    return value


def _number(value: Any, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name}: not a finite number")
    return float(value)


def _optional_number(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    return None if value is None else _number(value, name)


def _strings(body: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ValueError(f"{name}: not a list of strings")
    return tuple(value)
