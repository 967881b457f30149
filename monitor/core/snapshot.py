"""The immutable picture that the HTTP API and /metrics read: swapped whole, never edited.

Building it is pure: health states and rankings in, views out. Answers that every client asks for
(`/v1/best`, `/v1/best/{model}`, `/v1/hosts`, `/libertai/models`) are serialised once per snapshot,
lazily (plain and gzipped), so a busy API costs one dictionary lookup per request.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from monitor.core.health import HostHealth, stats
from monitor.core.ranking import ModelRanking
from monitor.core.results import HostState, Outcome
from monitor.core.steps import Steps, finish, mapped
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
    # The last throughput probe's figures (issue 11, `monitor.probe.throughput`); None before one.
    tokens_per_s: float | None = None
    inter_token_ms_p50: float | None = None
    # Vantages that see this host down (this one included), sorted, of `vantages` with fresh data.
    down_from: tuple[str, ...] = ()
    vantages: int = 1

    @property
    def scope(self) -> str | None:
        """ "all": down from every vantage; "regional": from some only; None: down from none."""
        if not self.down_from:
            return None
        return "all" if len(self.down_from) >= self.vantages else "regional"

    def as_json(self, model: str | None = None) -> dict[str, Any]:
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
            "key_ok": self.key_ok,
            "tokens_per_s": _ms(self.tokens_per_s),
            "inter_token_ms_p50": _ms(self.inter_token_ms_p50),
            "down_from": list(self.down_from),
            "scope": self.scope,
        }


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """What the other vantages see: (model, host) -> the other vantages that see it down, and
    how many vantages (this one included) have fresh results."""

    local: str = "default"
    down: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    vantages: int = 1


def host_view(
    h: HostHealth, throughput: Throughput | None = None, elsewhere: Elsewhere | None = None
) -> HostView:
    s = stats(h)
    last = h.samples.last()
    e = elsewhere or _ALONE
    down_from: tuple[str, ...] = ()
    if e.down or h.state is HostState.DOWN:  # most hosts are up everywhere: nothing to sort
        down = set(e.down.get((h.model, h.host), ()))
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
    # What a client sends a host for this id (issue 11, see monitor.core.upstream); set by with_aliases.
    upstream_model: str = ""
    request_fields: Mapping[str, Any] = field(default_factory=dict)
    eligible: tuple[str, ...] = ()  # the hosts that may be best (`ModelRanking.eligible`)

    def upstream_json(self) -> dict[str, Any]:
        return {
            "upstream_model": self.upstream_model or self.probed_as,
            "request_fields": self.request_fields,
        }

    def best_json(self) -> dict[str, Any]:
        return {
            "host": self.best,
            "fallbacks": list(self.fallbacks),
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
    _cache: dict[tuple[str, bool], bytes] = field(default_factory=dict, compare=False, repr=False)

    @property
    def host_count(self) -> int:
        return len({h.url for m in self.models.values() for h in m.hosts})

    def encoded(self, name: str, gzipped: bool = False) -> bytes | None:
        """The answer `name` as sent, if it was built for this snapshot already (see `encode`)."""
        return self._cache.get((name, gzipped))

    def encode(self, name: str, gzipped: bool = False) -> bytes | None:
        """Serialise (once per snapshot) the answer `name`: `best`, `hosts`, `models`, or
        `best/MODEL`; gzipped for clients that accept it. None for an unknown model."""
        return finish(self.encode_in_steps(name, gzipped))

    def encode_in_steps(self, name: str, gzipped: bool = False) -> Steps[bytes | None]:
        """`encode` in steps of a few milliseconds (see `monitor.core.steps`), for the event loop.

        Thousands of hosts make answers of megabytes: they are built once per snapshot (which
        never changes, so a build can span turns of the loop), and every request after that
        costs a dictionary lookup."""
        key = (name, gzipped)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if name.startswith("best/"):
            model, _, sort = name[5:].partition(_BY_THROUGHPUT)
            data = yield from self._best_of_in_steps(model, throughput=sort == "throughput")
        else:
            data = yield from _BODIES[name](self)
        if data is None:
            return None
        pieces: list[str] = []
        yield from _dumps_pieces(data, pieces)
        # The pieces are compressed one by one: an answer of 100,000 hosts (tens of MB of JSON)
        # is never copied whole into one string for a client that takes gzip, as clients do.
        cached = (yield from _gzip_in_steps(pieces)) if gzipped else "".join(pieces).encode()
        self._cache[key] = cached
        return cached

    def best_of(self, model: str, throughput: bool = False) -> dict[str, Any] | None:
        return finish(self._best_of_in_steps(model, throughput))

    def _best_of_in_steps(self, model: str, throughput: bool = False) -> Steps[dict[str, Any] | None]:
        view = self.models.get(model)
        if view is None:
            return None
        best, fallbacks = _by_throughput(view) if throughput else (view.best, view.fallbacks)
        hosts = yield from mapped(view.hosts, lambda h: h.as_json(model), _DUMP_SLICE)
        return {
            "model": model,
            "host": best,
            "fallbacks": list(fallbacks),
            **view.upstream_json(),
            "generated_at": iso(self.generated_at),
            "hosts": hosts,
            **({"vantage": self.vantage} if self.vantage is not None else {}),
        }


def _who(s: Snapshot) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.vantage is not None:
        out["vantage"] = s.vantage
    if s.served_by is not None:
        out["served_by"] = s.served_by.as_json()
    return out


# Elements of a list (or items of a dict) encoded per call of the C encoder, which holds the GIL
# for a whole call: a body of 100,000 hosts in one call took ~700 ms. A step of the encoding.
_DUMP_SLICE = 500
# Bytes compressed per step of gzipping an answer.
_GZIP_PIECE = 256 * 1024


def dumps(data: Any) -> str:
    """`json.dumps(data, separators=(",", ":"))`, the same text (encoded in steps, see below)."""
    pieces: list[str] = []
    finish(_dumps_pieces(data, pieces))
    return "".join(pieces)


def _dumps_pieces(data: Any, out: list[str]) -> Steps[None]:
    """Append the pieces of `dumps(data)` to `out`: long lists encoded a slice at a time and long
    dicts an item at a time, a step per slice or `_DUMP_SLICE` items. Nothing is concatenated
    (a piece is at most a slice's text), so that no step copies the whole text."""
    if isinstance(data, dict) and all(isinstance(k, str) for k in data):
        out.append("{")
        for i, (k, v) in enumerate(data.items()):
            out.append(("," if i else "") + json.dumps(k) + ":")
            yield from _dumps_pieces(v, out)
            if (i + 1) % _DUMP_SLICE == 0:
                yield None
        out.append("}")
    elif isinstance(data, list) and len(data) > _DUMP_SLICE:
        out.append("[")
        for i in range(0, len(data), _DUMP_SLICE):
            text = json.dumps(data[i : i + _DUMP_SLICE], separators=(",", ":"))
            out.append(("," if i else "") + text[1:-1])
            yield None
        out.append("]")
    else:
        out.append(json.dumps(data, separators=(",", ":")))


def _gzip_in_steps(pieces: Iterable[str]) -> Steps[bytes]:
    """The pieces' UTF-8 gzipped (level 6, no name, time 0: the same bytes for the same body),
    a step every `_GZIP_PIECE` characters or so."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    out: list[bytes] = []
    pending = 0
    for piece in pieces:
        out.append(packer.compress(piece.encode()))
        pending += len(piece)
        if pending >= _GZIP_PIECE:
            pending = 0
            yield None
    out.append(packer.flush())
    return b"".join(out)


def _best_body(s: Snapshot) -> Steps[dict[str, Any]]:
    models = yield from _per_model(s, lambda v: v.best_json())
    return {"generated_at": iso(s.generated_at), "models": models, **_who(s)}


def _per_model(s: Snapshot, fn: Callable[[ModelView], Any]) -> Steps[dict[str, Any]]:
    """{model: fn(view)}, a step every few models (a hostile listing may name thousands)."""
    pairs = yield from mapped(s.models.items(), lambda mv: (mv[0], fn(mv[1])), _DUMP_SLICE // 10)
    return dict(pairs)


def _by_throughput(v: ModelView) -> tuple[str | None, tuple[str, ...]]:
    return by_throughput(v.best, v.fallbacks, v.eligible, {h.url: h.tokens_per_s for h in v.hosts})


def _best_by_throughput_json(v: ModelView) -> dict[str, Any]:
    best, fallbacks = _by_throughput(v)
    return {**v.best_json(), "host": best, "fallbacks": list(fallbacks)}


def _best_by_throughput_body(s: Snapshot) -> Steps[dict[str, Any]]:
    models = yield from _per_model(s, _best_by_throughput_json)
    return {"generated_at": iso(s.generated_at), "models": models, **_who(s)}


def _hosts_body(s: Snapshot) -> Steps[dict[str, Any]]:
    hosts: list[dict[str, Any]] = []
    for m, v in s.models.items():
        upstream = v.upstream_json()
        hosts += yield from mapped(v.hosts, partial(_host_json, model=m, upstream=upstream), _DUMP_SLICE)
    return {
        "generated_at": iso(s.generated_at),
        "hosts": hosts,
        **({"vantage": s.vantage} if s.vantage is not None else {}),
    }


def _host_json(h: HostView, model: str, upstream: dict[str, Any]) -> dict[str, Any]:
    return {**h.as_json(model), **upstream}


def _models_body(s: Snapshot) -> Steps[dict[str, Any]]:
    return (yield from _per_model(s, lambda v: {"servers": [h.url for h in v.hosts]}))


# `/v1/best?sort=throughput` is encoded as "best?sort=throughput", `/v1/best/M?sort=...` as "best/M?sort=...".
_BY_THROUGHPUT = "?sort="
_BODIES = {
    "best": _best_body,
    "best?sort=throughput": _best_by_throughput_body,
    "hosts": _hosts_body,
    "models": _models_body,
}


def model_view(model: str, ranking: ModelRanking, views: Mapping[tuple[str, str], HostView]) -> ModelView:
    """A base model id's view: its hosts in ranked order."""
    hosts = tuple(views[(model, url)] for url in ranking.ordered if (model, url) in views)
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
