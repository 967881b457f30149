"""The page as values, built purely from a snapshot, history, readiness and incidents (no I/O).

What a client sends a host (`upstream_model`, `request_fields`) and the throughput figures come from
the snapshot's views as the JSON answers give them, so the page and the answers never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup

from monitor.core.host_view import HostView
from monitor.core.results import HostState, Outcome, ProbeKind
from monitor.core.snapshot import ModelView, Snapshot
from monitor.web.status.drawings import Drawn, ModelDrawing
from monitor.web.status.history import History
from monitor.web.status.incidents import Incident
from monitor.web.status.words import STATE_LABEL, ago, clock, ms, pct, rate, reason_words

# Per-host bars on the overview only up to this many host rows: beyond, they are on each model's
# page (a bar is ~100 bytes; 500 hosts x 114 bars would weigh megabytes).
HOST_BARS_MAX_ROWS: Final = 60

STATUS_LABEL: Final = {
    "served": ("✓", "served"),
    "degraded": ("!", "degraded"),
    "unserved": ("✕", "no healthy host"),
    "unknown": ("?", "waiting for probes"),
}
OVERALL_WORDS: Final = {
    "served": "All models served",
    "degraded": "Some models degraded",
    "unserved": "Some models have no healthy host",
    "unknown": "Waiting for the first probes",
    "empty": "No models known yet",
}
# A model's own page speaks of that model only.
MODEL_WORDS: Final = {
    "served": "This model is served",
    "degraded": "This model is served, some of its hosts are down",
    "unserved": "This model has no healthy host",
    "unknown": "Waiting for this model's first probes",
}
# What a model's hosts are measured by when no time to first token is (embeddings; image and
# audio models have their health probe only).
LATENCY_LABEL: Final = {ProbeKind.EMBEDDING: "Embedding time", ProbeKind.HEALTH: "Health latency"}
KEY_BANNER: Final = (
    "The monitor's API key is rejected by the gateway: hosts that refuse it are not at fault, and "
    "billed probes cannot pass. Check LIBERTAI_API_KEY (or LIBERTAI_MONITOR_API_KEY_FILE)."
)
_RANK = {"served": 0, "unknown": 1, "degraded": 2, "unserved": 3}


@dataclass(frozen=True, slots=True)
class HostRow:
    url: str
    state: str
    symbol: str
    word: str
    reason: str
    best: bool
    ttft_p50: str
    ttft_p95: str
    tokens_per_s: str
    inter_token: str
    availability: str
    last_ok: str  # absolute (UTC); the script shows it as an age
    last_ok_at: float | None
    # A down host: which probe's success that was, and which probe fails since when.
    last_ok_kind: str | None
    failing_kind: str | None
    failing_since: str | None
    failing_since_at: float | None
    # A host not up: what its last failing probe answered (`HTTP 503: overloaded`, `TimeoutError`).
    error: str | None
    latency: str | None  # the measured latency's label when not a time to first token
    bars24: Markup | None
    bars90: Markup | None
    spark: Markup | None
    # In a maintenance window (out of routing, still probed): until when, and the operator's reason.
    maintenance: str | None = None
    # Serving another model than its listing says (out of routing while another host is up): what differed.
    mismatch: str | None = None


@dataclass(frozen=True, slots=True)
class ModelCard:
    model: str
    alias_of: str | None
    status: str
    symbol: str
    word: str
    best: str | None
    healthy: int
    known: int
    upstream_model: str
    request_fields: str | None
    uptime24: str
    uptime90: str
    bars24: Markup
    bars90: Markup
    spark: Markup
    chart: Markup | None = None
    latency: str | None = None  # see `latency_label`; None: measured by time to first token
    budget: str | None = None  # "error budget left: 73%"; None before any probe counted


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    text: str


@dataclass(frozen=True, slots=True)
class IncidentRow:
    at: str
    ago: str
    kind: str
    symbol: str
    model: str
    text: str


@dataclass(frozen=True, slots=True)
class Page:
    title: str
    generated: str
    generated_iso: str
    overall: str
    overall_words: str
    checks: tuple[Check, ...]
    counts: str
    models: tuple[Markup, ...]  # each model's card, rendered (see monitor.web.status.render.Cards)
    incidents: tuple[IncidentRow, ...]
    host_bars: bool
    history_note: str | None
    banner: str | None = None  # what the whole page must say first (the gateway rejects the key)


def model_status(v: ModelView) -> str:
    if v.best is not None:
        return "degraded" if any(h.state is HostState.DOWN for h in v.hosts) else "served"
    if any(h.state is HostState.DOWN for h in v.hosts) or not v.hosts:
        return "unserved"
    return "unknown"


def overall_status(views: Iterable[ModelView]) -> str:
    statuses = [model_status(v) for v in views]
    if not statuses:
        return "empty"
    return max(statuses, key=lambda s: _RANK[s])


def url_markup(url: str) -> Markup:
    """A host URL as code whose `host:port` never breaks across lines (the rest may)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return Markup("<code>{}</code>").format(url)
    netloc, slash, path = rest.partition("/")
    return Markup('<code>{}://<span class="hp">{}</span>{}</code>').format(scheme, netloc, slash + path)


def latency_label(v: ModelView) -> str | None:
    """None when the model's hosts are measured by time to first token (or nothing yet), else
    what they are measured by: no TTFT is ever measured for embedding, image or audio models."""
    kinds = {h.latency_kind for h in v.hosts}
    if ProbeKind.COMPLETION in kinds:
        return None
    return next((LATENCY_LABEL[k] for k in (ProbeKind.EMBEDDING, ProbeKind.HEALTH) if k in kinds), None)


def failure_words(h: HostView, gateway_rejects_key: bool = False) -> str | None:
    """What a host that is not up last failed with: `HTTP 401: Invalid API key`, `TimeoutError`;
    None for an up host, one without a kept failure, or one that refuses a key the gateway
    rejects too (the banner says that once, for every host)."""
    f = h.last_failure
    if h.state is HostState.UP or f is None:
        return None
    if gateway_rejects_key and f.outcome is Outcome.KEY_REJECTED:
        return None
    status = f"HTTP {f.status}" if f.status is not None else None
    if status is None or f.error == status:
        return f.error
    return f"{status}: {f.error}"


def host_row(
    h: HostView,
    model: str,
    best: str | None,
    drawn: Drawn | None,
    latency: str | None = None,
    gateway_rejects_key: bool = False,
) -> HostRow:
    symbol, word = STATE_LABEL[h.state]
    itl = h.inter_token_ms_p50
    down = h.down
    return HostRow(
        url=h.url,
        state=h.state.value,
        symbol=symbol,
        word=word,
        reason=reason_words(h.state, h.reason, gateway_rejects_key),
        best=h.url == best,
        ttft_p50=ms(h.ttft_ms_p50 if latency is None else h.latency_ms_p50),
        ttft_p95=ms(h.ttft_ms_p95),
        tokens_per_s=rate(h.tokens_per_s),
        inter_token="" if itl is None else ms(itl),
        availability=pct(h.availability),
        last_ok=clock(h.last_ok_at),
        last_ok_at=h.last_ok_at,
        last_ok_kind=None if down.last_ok_kind is None else down.last_ok_kind.value,
        failing_kind=None if down.failing_kind is None else down.failing_kind.value,
        failing_since=None if down.failing_since is None else clock(down.failing_since),
        failing_since_at=down.failing_since,
        error=failure_words(h, gateway_rejects_key),
        latency=latency,
        bars24=None if drawn is None else drawn.bars24,
        bars90=None if drawn is None else drawn.bars90,
        spark=None if drawn is None else drawn.spark,
        maintenance=None if (m := h.maintenance) is None else f"until {clock(m.until)}: {m.reason}",
        mismatch=(h.identity.detail or "") if h.identity.state == "mismatch" else None,
    )


def model_card(
    v: ModelView, drawing: ModelDrawing, chart: bool = False, budget: str | None = None
) -> ModelCard:
    """A model's card without its host rows (rendered and kept one by one: see `host_row`)."""
    status = model_status(v)
    symbol, word = STATUS_LABEL[status]
    base = v.probed_as
    alias = v.model != base
    d = drawing.model
    return ModelCard(
        model=v.model,
        alias_of=base if alias else None,
        status=status,
        symbol=symbol,
        word=word,
        best=v.best,
        healthy=v.healthy,
        known=v.known,
        upstream_model=v.upstream_model or base,
        request_fields=json.dumps(v.request_fields, separators=(", ", ": ")) if v.request_fields else None,
        uptime24=d.uptime24,
        uptime90=d.uptime90,
        bars24=d.bars24,
        bars90=d.bars90,
        spark=d.spark,
        chart=d.chart,
        latency=latency_label(v),
        budget=budget,
    )


def incident_row(i: Incident, now: float, gateway_rejects_key: bool = False) -> IncidentRow:
    if i.kind == "down":
        why = reason_words(HostState.DOWN, i.reason, gateway_rejects_key) if i.reason else "failing"
        text = f"{i.host} went down: {why}"
        symbol, kind = "✕", "down"
    elif i.kind == "up":
        text, symbol, kind = f"{i.host} is back up", "✓", "up"
    elif i.kind == "cert":
        withheld = ": the key is withheld until it is accepted" if i.reason is not None else ""
        text, symbol, kind = f"{i.host} shows another certificate{withheld}", "⚿", "cert"
    elif i.host is None:
        text, symbol, kind = f"no healthy host (was {i.previous})", "✕", "best"
    else:
        text = f"best host is now {i.host}" + (f" (was {i.previous})" if i.previous else "")
        symbol, kind = "⇄", "best"
    return IncidentRow(clock(i.at), ago(i.at, now), kind, symbol, i.model, text)


def checks_of(readiness: Mapping[str, str], snapshot: Snapshot, now: float) -> tuple[Check, ...]:
    names = {"discovery": "Host list", "api_key": "Gateway key", "database": "Database"}
    out = []
    for key, value in readiness.items():
        text = value
        if key == "discovery":
            age = snapshot.discovery.last_ok_at
            text = f"{value}, updated {ago(age, now)}" if age is not None else value
            if snapshot.discovery.ok is False:
                text += " (last poll failed: serving the last good list)"
        out.append(Check(names.get(key, key), value == "ok", text))
    return tuple(out)


def reasoning_bases(models: Mapping[str, ModelView]) -> set[str]:
    return {v.probed_as for v in models.values() if v.model != v.probed_as}


def show_host_bars(models: Mapping[str, ModelView]) -> bool:
    """Per-host bars on the overview only while the page stays light (see HOST_BARS_MAX_ROWS)."""
    return sum(len(v.hosts) for v in models.values() if v.model == v.probed_as) <= HOST_BARS_MAX_ROWS


def build_page(
    title: str,
    snapshot: Snapshot,
    history: History,
    readiness: Mapping[str, str],
    incidents: Sequence[Incident],
    cards: tuple[Markup, ...],
    only: str | None = None,
) -> Page:
    """The overview (`only=None`) or one model's page (`only` = its id, which must be known),
    around the models' cards (rendered by the caller, which keeps those that did not change)."""
    now = snapshot.generated_at
    rejects = snapshot.gateway_rejects_key
    views = snapshot.models.values() if only is None else [snapshot.models[only]]
    overall = overall_status(views)
    counts = f"{len(snapshot.models)} models, {snapshot.host_count} hosts"
    note = None
    if history.error:
        note = f"No history: {history.error}."
    elif history.loaded_at is None:
        note = "History is being read."
    return Page(
        title=title,
        generated=clock(now),
        generated_iso=f"{now:.3f}",
        overall=overall,
        overall_words=OVERALL_WORDS[overall]
        if only is None
        else MODEL_WORDS.get(overall, OVERALL_WORDS[overall]),
        checks=checks_of(readiness, snapshot, now),
        counts=counts,
        models=cards,
        incidents=tuple(incident_row(i, now, rejects) for i in incidents[:200]),
        host_bars=only is not None or show_host_bars(snapshot.models),
        history_note=note,
        banner=KEY_BANNER if rejects else None,
    )
