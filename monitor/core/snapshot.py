"""The immutable picture that the HTTP API and /metrics read: swapped whole, never edited.

Building it is pure: health states and rankings in, views out. Answers that every client asks for
(`/v1/best`, `/v1/best/{model}`, `/v1/hosts`, `/libertai/models`) are serialised once per snapshot,
lazily (plain and gzipped) and with their ETags (`monitor.core.answer`), so a busy API costs one
dictionary lookup per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from monitor.core.answer import DUMP_SLICE, Answer, AnswerKey, Kind, Sort, dump, packed, weak_etag
from monitor.core.candidates import Candidate, coarse, host_load, reordered
from monitor.core.facts import NO_DOWN_FACTS, DownFacts, down_facts, last_failure, measured_by
from monitor.core.failure import Failure, blamed
from monitor.core.health import HostHealth, stats
from monitor.core.keys import HostKey
from monitor.core.maintenance import Drain
from monitor.core.ranking import ModelRanking
from monitor.core.results import HostState, Outcome, ProbeKind
from monitor.core.steps import Steps, mapped
from monitor.core.throughput import Throughput, by_throughput
from monitor.core.upstream import upstream_request


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True, slots=True)
class HostView:
    """One host of one model as the contract's HOST object, plus what metrics need."""

    model: str
    url: str
    state: HostState
    reason: Outcome
    availability: float | None
    samples: int
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    latency_ms_p50: float | None
    last_probe_at: float | None
    last_ok_at: float | None
    consecutive_failures: int
    key_ok: bool | None
    last_outcome: Outcome
    # The last throughput probe's figures (`monitor.core.throughput`); None before one.
    tokens_per_s: float | None = None
    inter_token_ms_p50: float | None = None
    # Vantages that see this host down (this one included), sorted, of `vantages` with fresh data.
    down_from: tuple[str, ...] = ()
    vantages: int = 1
    # Its unloaded time to first token and how far its recent one is above it (`monitor.core.candidates`).
    ttft_ms_baseline: float | None = None
    load: float = 0.0
    # For the status page (not in the JSON): the kind `latency_ms_p50` is measured on, and for a down
    # host, which probe succeeded last and which fails since when (`monitor.core.facts`).
    latency_kind: ProbeKind | None = None
    down: DownFacts = NO_DOWN_FACTS
    # The failure that explains `reason` (`monitor.core.facts.last_failure`); None when none was kept.
    last_failure: Failure | None = None
    maintenance: Drain | None = None  # in a maintenance window: out of routing, still probed

    @property
    def scope(self) -> str | None:
        """ "all": down from every vantage; "regional": from some only; None: down from none."""
        if not self.down_from:
            return None
        return "all" if len(self.down_from) >= self.vantages else "regional"

    def blamed(self, gateway_rejects_key: bool) -> tuple[Failure | None, bool | None]:
        """(last failure, key_ok) as answers give them: see `monitor.core.failure.blamed`."""
        d = self.down
        return blamed(
            self.last_failure, self.reason, self.key_ok, gateway_rejects_key, d.failing_kind, d.failing_since
        )

    def as_json(self, model: str | None = None, gateway_rejects_key: bool = False) -> dict[str, Any]:
        failure, key_ok = self.blamed(gateway_rejects_key)
        return {
            "model": model or self.model,
            "url": self.url,
            "state": self.state.value,
            "reason": self.reason.value,
            "availability": None if self.availability is None else round(self.availability, 4),
            "samples": self.samples,
            "ttft_ms_p50": _ms(self.ttft_ms_p50),
            "ttft_ms_p95": _ms(self.ttft_ms_p95),
            "latency_ms_p50": _ms(self.latency_ms_p50),
            "last_probe_at": iso(self.last_probe_at),
            "last_ok_at": iso(self.last_ok_at),
            "consecutive_failures": self.consecutive_failures,
            "key_ok": key_ok,
            "tokens_per_s": _ms(self.tokens_per_s),
            "inter_token_ms_p50": _ms(self.inter_token_ms_p50),
            "down_from": list(self.down_from),
            "scope": self.scope,
            "last_failure": None if failure is None else _failure_json(failure),
            "failing_since": iso(self.down.failing_since),
            "maintenance": None
            if (m := self.maintenance) is None
            else {"reason": m.reason, "until": iso(m.until)},
        }


def _failure_json(f: Failure) -> dict[str, Any]:
    return {"kind": f.kind.value, "status": f.status, "error": f.error, "at": iso(f.at)}


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """What the other vantages see: (model, host) -> the other vantages that see it down, and
    how many vantages (this one included) have fresh results."""

    local: str = "default"
    down: Mapping[HostKey, tuple[str, ...]] = field(default_factory=dict)
    vantages: int = 1


def host_view(
    h: HostHealth, throughput: Throughput | None = None, elsewhere: Elsewhere | None = None
) -> HostView:
    s = stats(h)
    last = h.samples.last()
    baseline, load = host_load(h.samples.ok_ttfts_at(ProbeKind.COMPLETION))
    e = elsewhere or _ALONE
    down_from: tuple[str, ...] = ()
    if e.down or h.state is HostState.DOWN:  # most hosts are up everywhere: nothing to sort
        down = set(e.down.get(HostKey(h.model, h.host), ()))
        if h.state is HostState.DOWN:
            down.add(e.local)
        down_from = tuple(sorted(down))
    return HostView(
        model=h.model,
        url=h.host,
        state=h.state,
        reason=h.reason,
        availability=s.availability,
        samples=s.samples,
        ttft_ms_p50=s.ttft_ms_p50,
        ttft_ms_p95=s.ttft_ms_p95,
        latency_ms_p50=s.latency_ms_p50,
        last_probe_at=h.last_probe_at,
        last_ok_at=h.last_ok_at,
        consecutive_failures=s.consecutive_failures,
        key_ok=h.key_ok,
        last_outcome=Outcome.NOT_PROBED if last is None else last[1],
        tokens_per_s=None if throughput is None else throughput.tokens_per_s,
        inter_token_ms_p50=None if throughput is None else throughput.inter_token_ms_p50,
        down_from=down_from,
        vantages=max(e.vantages, len(down_from)),
        ttft_ms_baseline=baseline,
        load=load,
        latency_kind=ProbeKind.COMPLETION if s.ttft_ms_p50 is not None else measured_by(h.samples),
        down=down_facts(h),
        last_failure=last_failure(h),
    )


_ALONE = Elsewhere()


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
