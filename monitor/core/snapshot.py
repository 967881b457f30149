"""The immutable picture that the HTTP API and /metrics read: swapped whole, never edited.

Building it is pure: health states and rankings in, views out. Answers that every client asks for
(`/v1/best`, `/v1/best/{model}`, `/v1/hosts`, `/libertai/models`) are serialised once per snapshot,
lazily (plain and gzipped) and with their ETags (`monitor.core.answer`), so a busy API costs one
dictionary lookup per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from monitor.core.answer import DUMP_SLICE, Answer, AnswerKey, Kind, Sort, dump, packed, weak_etag
from monitor.core.candidates import Candidate, coarse, reordered
from monitor.core.host_view import HostView, iso
from monitor.core.keys import HostKey
from monitor.core.ranking import ModelRanking
from monitor.core.results import Outcome
from monitor.core.steps import Steps, mapped
from monitor.core.throughput import by_throughput
from monitor.core.upstream import upstream_request


@dataclass(frozen=True, slots=True)
class ServedBy:
    """Which process answered: its vantage and its role ("leader" or "follower")."""

    vantage: str
    role: str

    def as_json(self) -> dict[str, str]:
        return {"vantage": self.vantage, "role": self.role}


@dataclass(frozen=True, slots=True)
class ModelView:
    """A model id as clients see it. A `-thinking` alias shares its base id's probes (`probed_as`)."""

    model: str
    probed_as: str
    best: str | None
    fallbacks: tuple[str, ...]
    healthy: int
    known: int
    panic: bool
    hosts: tuple[HostView, ...]  # every known host, best first
    # What a client sends a host for this id (see monitor.core.upstream); set by with_aliases.
    upstream_model: str = ""
    request_fields: Mapping[str, Any] = field(default_factory=dict)
    eligible: tuple[str, ...] = ()  # the hosts that may be best (`ModelRanking.eligible`)
    candidates: tuple[Candidate, ...] = ()  # the hosts to spread requests over, best first

    def upstream_json(self) -> dict[str, Any]:
        return {
            "upstream_model": self.upstream_model or self.probed_as,
            "request_fields": self.request_fields,
        }

    def best_json(self) -> dict[str, Any]:
        return {
            "host": self.best,
            "fallbacks": list(self.fallbacks),
            "candidates": [c.as_json() for c in self.candidates],
            "healthy_hosts": self.healthy,
            "known_hosts": self.known,
            **self.upstream_json(),
        }


@dataclass(frozen=True, slots=True)
class DiscoveryStatus:
    last_attempt_at: float | None = None
    last_ok_at: float | None = None
    ok: bool | None = None
    duration_s: float | None = None
    error: str | None = None
    runs_ok: int = 0
    runs_failed: int = 0


@dataclass(frozen=True)
class Snapshot:
    generated_at: float
    models: Mapping[str, ModelView]
    discovery: DiscoveryStatus = DiscoveryStatus()
    key_outcome: Outcome | None = None  # the gateway's auth check of our key; None until asked
    served_by: ServedBy | None = None  # None: a snapshot not made by a running service
    vantage: str | None = None  # whose results the answers are built from
    # Not an init field: a snapshot made with `replace` builds its own answers.
    _cache: dict[tuple[AnswerKey, bool], Answer] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def gateway_rejects_key(self) -> bool:
        return self.key_outcome is Outcome.KEY_REJECTED

    @property
    def host_count(self) -> int:
        return len({h.url for m in self.models.values() for h in m.hosts})

    def answered(self, key: AnswerKey, gzipped: bool = False) -> Answer | None:
        """The answer `key` as sent, if it was built for this snapshot already (see `answer`)."""
        return self._cache.get((key, gzipped))

    def answer(self, key: AnswerKey, gzipped: bool = False) -> Steps[Answer | None]:
        """The answer `key` (gzipped for clients that accept it) with its ETag, built once per
        snapshot in steps; None for an unknown model. Thousands of hosts make answers of
        megabytes: the snapshot never changes, so a build can span turns of the loop, and every
        request after it costs a dictionary lookup."""
        cached = self._cache.get((key, gzipped))
        if cached is not None:
            return cached
        built = yield from _data(self, key)
        if built is None:
            return None
        data, decision = built
        pieces: list[str] = []
        yield from dump(data, pieces)
        answer = yield from packed(pieces, gzipped)
        if key.weak:
            # The same decision whether gzipped or not: one ETag for both (they validate each other).
            other = self._cache.get((key, not gzipped))
            etag = other.etag if other is not None else (yield from weak_etag(decision))
            answer = Answer(answer.body, etag)
        self._cache[(key, gzipped)] = answer
        return answer


def _who(s: Snapshot) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.vantage is not None:
        out["vantage"] = s.vantage
    if s.served_by is not None:
        out["served_by"] = s.served_by.as_json()
    return out


def _vantage(s: Snapshot) -> dict[str, Any]:
    return {"vantage": s.vantage} if s.vantage is not None else {}


# An answer's JSON data and, for a best answer, what a client acts on in it (its weak ETag's input).
_Built = tuple[dict[str, Any], Any]


def _data(s: Snapshot, key: AnswerKey) -> Steps[_Built | None]:
    if key.kind is Kind.BEST:
        if key.model is not None:
            return (yield from _best_of(s, key.model, key.sort))
        return (yield from _best(s, key.sort))
    if key.kind is Kind.HOSTS:
        return (yield from _hosts(s))
    return (yield from _models(s))


def _best_of(s: Snapshot, model: str, sort: Sort) -> Steps[_Built | None]:
    """`/v1/best/{model}`; its decision: the choice, the candidates as clients act on them
    (`candidates.coarse`), and per host only its URL and state (the measurements move on every
    probe while the choice stays)."""
    view = s.models.get(model)
    if view is None:
        return None
    best, fallbacks, chosen = _sorted(view, sort)
    choice = {"model": model, "host": best, "fallbacks": list(fallbacks), **view.upstream_json()}
    rejects = s.gateway_rejects_key
    hosts = yield from mapped(view.hosts, lambda h: h.as_json(model, rejects), DUMP_SLICE)
    states = yield from mapped(view.hosts, lambda h: [h.url, h.state.value], DUMP_SLICE)
    listed = {"candidates": [c.as_json() for c in chosen]}
    data = {**choice, **listed, "generated_at": iso(s.generated_at), "hosts": hosts, **_vantage(s)}
    return data, {**choice, "candidates": coarse(chosen), "hosts": states, **_vantage(s)}


def _best(s: Snapshot, sort: Sort) -> Steps[_Built]:
    """`/v1/best`; its decision: everything but when it was generated and the candidates'
    figures (`candidates.coarse`)."""
    pairs = yield from _per_model(s, lambda v: _best_entry(v, sort))
    models = {m: entry for m, (entry, _) in pairs.items()}
    decided = {m: decision for m, (_, decision) in pairs.items()}
    return {"generated_at": iso(s.generated_at), "models": models, **_who(s)}, {"models": decided, **_who(s)}


def _per_model(s: Snapshot, fn: Callable[[ModelView], Any]) -> Steps[dict[str, Any]]:
    """{model: fn(view)}, a step every few models (a hostile listing may name thousands)."""
    pairs = yield from mapped(s.models.items(), lambda mv: (mv[0], fn(mv[1])), DUMP_SLICE // 10)
    return dict(pairs)


def _sorted(v: ModelView, sort: Sort) -> tuple[str | None, tuple[str, ...], tuple[Candidate, ...]]:
    """(best, fallbacks, candidates) in the order `sort` asks for."""
    if sort is not Sort.THROUGHPUT:
        return v.best, v.fallbacks, v.candidates
    best, fallbacks = by_throughput(v.best, v.fallbacks, v.eligible, {h.url: h.tokens_per_s for h in v.hosts})
    order = (best, *fallbacks) if best is not None else fallbacks
    return best, fallbacks, reordered(v.candidates, order)


def _best_entry(v: ModelView, sort: Sort) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model's entry of `/v1/best` and what a client acts on in it."""
    best, fallbacks, chosen = _sorted(v, sort)
    entry = {**v.best_json(), "host": best, "fallbacks": list(fallbacks)}
    if sort is Sort.THROUGHPUT:
        entry["candidates"] = [c.as_json() for c in chosen]
    return entry, {**entry, "candidates": coarse(chosen)}


def _hosts(s: Snapshot) -> Steps[_Built]:
    hosts: list[dict[str, Any]] = []
    for m, v in s.models.items():
        upstream = v.upstream_json()
        host = partial(_host_json, model=m, upstream=upstream, rejects=s.gateway_rejects_key)
        hosts += yield from mapped(v.hosts, host, DUMP_SLICE)
    return {"generated_at": iso(s.generated_at), "hosts": hosts, **_vantage(s)}, None


def _host_json(h: HostView, model: str, upstream: dict[str, Any], rejects: bool) -> dict[str, Any]:
    return {**h.as_json(model, rejects), **upstream}


def _models(s: Snapshot) -> Steps[_Built]:
    models = yield from _per_model(s, lambda v: {"servers": [h.url for h in v.hosts]})
    return models, None


def model_view(model: str, ranking: ModelRanking, views: Mapping[HostKey, HostView]) -> ModelView:
    """A base model id's view: its hosts in ranked order."""
    keys = (HostKey(model, url) for url in ranking.ordered)
    hosts = tuple(views[key] for key in keys if key in views)
    r = ranking
    return ModelView(
        model, model, r.best, r.fallbacks, r.healthy, r.known, r.panic, hosts, eligible=r.eligible
    )


def with_aliases(bases: Mapping[str, ModelView], aliases: Mapping[str, str]) -> dict[str, ModelView]:
    """Every base view plus a view per alias that shares its base's hosts, sorted by id; each with
    what a client sends a host for its id (`monitor.core.upstream`)."""
    out = {m: replace(v, **_upstream(m, aliases)) for m, v in bases.items()}
    for alias, base in aliases.items():
        if base in bases:
            out[alias] = replace(bases[base], model=alias, probed_as=base, **_upstream(alias, aliases))
    return dict(sorted(out.items()))


def _upstream(model: str, aliases: Mapping[str, str]) -> dict[str, Any]:
    upstream_model, fields = upstream_request(model, aliases)
    return {"upstream_model": upstream_model, "request_fields": fields}
