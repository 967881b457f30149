"""What the client keeps of the monitor's `/v1/best/{model}` answer, validated where it enters.

A monitor is trusted to rank hosts, not to run code or rewrite requests at will: every field is
checked for type and size, host URLs are normalised (a bad one is dropped, not the whole answer),
and `request_fields` may not touch the fields the client itself decides (`model`, `stream`).
An answer from a monitor that gives no `candidates` keeps them empty: the client then routes on
`host` and `fallbacks` alone. The API paths each host refuses (`paths_refused` of the answer's
`hosts` entries) are kept so that a request never goes to a host that refuses its path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from libertai_failover.urls import normalise_url

__all__ = ["MAX_ANSWER_BYTES", "Answer", "Candidate", "parse_answer"]

MAX_ANSWER_BYTES = 1 << 20
_MAX_HOSTS = 256
_RESERVED_FIELDS = frozenset({"model", "stream"})
_MAX_PATHS = 32
_MAX_PATH_CHARS = 256


@dataclass(frozen=True, slots=True)
class Candidate:
    """A host worth sending to now: `weight` is its share of new requests (the weights of an
    answer sum to 1), `warm` False for a host whose model is still loading."""

    url: str
    weight: float
    ttft_ms_p50: float | None = None
    ttft_ms_p95: float | None = None
    load: float = 0.0
    warm: bool = True


@dataclass(frozen=True, slots=True)
class Answer:
    """One model's answer: hosts to try in order (best first), which of them the monitor sees up,
    and what to send them: the model id (`upstream_model`) and extra body fields (`request_fields`,
    kept as JSON text so the value cannot be changed by whoever holds it)."""

    model: str
    order: tuple[str, ...]
    up: frozenset[str]
    upstream_model: str
    request_fields_json: str = "{}"
    candidates: tuple[Candidate, ...] = ()
    # host -> the API paths it refuses (as the monitor learnt them); a host not here refuses none.
    refused_paths: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def refuses(self, host: str, path: str) -> bool:
        """Whether `host` is known to refuse requests to `path` (e.g. "/v1/messages")."""
        refused = self.refused_paths.get(host)
        return refused is not None and path.rstrip("/") in refused

    def candidate(self, url: str) -> Candidate | None:
        return next((c for c in self.candidates if c.url == url), None)

    @property
    def request_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = json.loads(self.request_fields_json)
        return fields


def _url(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        return normalise_url(raw)
    except ValueError:
        return None


def _number(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
        return None
    return float(raw)


def _candidates(raw: object) -> tuple[Candidate, ...]:
    """The valid entries of `candidates`, best first, weights scaled to sum to 1 (equal shares
    where the monitor gave none)."""
    if not isinstance(raw, list):
        return ()
    kept: list[Candidate] = []
    for item in raw[:_MAX_HOSTS]:
        if not isinstance(item, Mapping) or (url := _url(item.get("url"))) is None:
            continue
        if any(c.url == url for c in kept):
            continue
        warm = item.get("warm")
        kept.append(
            Candidate(
                url,
                _number(item.get("weight")) or 0.0,
                _number(item.get("ttft_ms_p50")),
                _number(item.get("ttft_ms_p95")),
                _number(item.get("load")) or 0.0,
                warm if isinstance(warm, bool) else True,
            )
        )
    total = sum(c.weight for c in kept)
    return tuple(Candidate(c.url, c.weight / total if total > 0 else 1 / len(kept), *_rest(c)) for c in kept)


def _rest(c: Candidate) -> tuple[float | None, float | None, float, bool]:
    return c.ttft_ms_p50, c.ttft_ms_p95, c.load, c.warm


def _refused(raw: object) -> frozenset[str] | None:
    """A host entry's `paths_refused`: the valid paths of it, or None when it names none."""
    if not isinstance(raw, list):
        return None
    kept = frozenset(
        p.rstrip("/")
        for p in raw[:_MAX_PATHS]
        if isinstance(p, str) and p.startswith("/") and len(p) <= _MAX_PATH_CHARS
    )
    return kept or None


def _fields(raw: object) -> str:
    if not isinstance(raw, Mapping):
        return "{}"
    kept = {k: v for k, v in raw.items() if isinstance(k, str) and k not in _RESERVED_FIELDS}
    return json.dumps(kept, separators=(",", ":"), sort_keys=True)


def parse_answer(model: str, body: bytes) -> Answer:
    """The answer for `model` in a `/v1/best/{model}` body; `ValueError` if it is not one."""
    if len(body) > MAX_ANSWER_BYTES:
        raise ValueError("answer too large")
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("answer is not JSON") from None
    if not isinstance(data, dict) or data.get("model") != model:
        raise ValueError("answer is not about this model")
    order: list[str] = []
    for raw in [data.get("host"), *(data.get("fallbacks") or [])][:_MAX_HOSTS]:
        url = _url(raw)
        if url is not None and url not in order:
            order.append(url)
    hosts = data.get("hosts")
    up = {order[0]} if data.get("host") is not None and order else set()
    refused: dict[str, frozenset[str]] = {}
    if isinstance(hosts, list):
        for h in hosts[: _MAX_HOSTS * 4]:
            if not isinstance(h, dict) or (url := _url(h.get("url"))) is None:
                continue
            if h.get("state") == "up":
                up.add(url)
            if (paths := _refused(h.get("paths_refused"))) is not None:
                refused[url] = paths
    else:  # an answer without host states: its best and fallbacks are the hosts it calls up
        up.update(order)
    upstream = data.get("upstream_model")
    if not isinstance(upstream, str) or not upstream or len(upstream) > 256:
        upstream = model
    fields = _fields(data.get("request_fields"))
    candidates = _candidates(data.get("candidates"))
    return Answer(model, tuple(order), frozenset(up), upstream, fields, candidates, refused)
