"""Prometheus metrics, read from the monitor's snapshot and counters (`MonitorView`) at scrape time.

Nothing here is updated on the probe path; a scrape walks the current snapshot, so metrics and the
JSON API always agree. One registry per application keeps tests free of duplicate series.

The families with a series per (model, host) are written straight to exposition text, one line at
a time, and handed out in chunks: as prometheus_client objects they cost a `Sample` and a label
dict per series (150,000 at 10,000 hosts), all alive at once, and the whole body (19 MiB at 10,000
hosts) was then held several times over (parts, joined text, bytes, compressed copy), which raised
the peak RSS by 100 to 150 MiB (bench/metrics_memory.py). Their HELP and TYPE lines and the shape
of their sample lines still come from prometheus_client's encoder (see `_Template`), so names,
label order and escaping match the negotiated format by construction. The small families (per
model, discovery, service, build) stay prometheus_client objects (`service_metrics.MonitorCollector`), encoded
last, so that an OpenMetrics body ends with their one `# EOF`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.core.results import HostState
from monitor.core.snapshot import HostView
from monitor.logging import get_logger
from monitor.web.service_metrics import MonitorCollector
from monitor.web.view import MonitorView

__all__ = [
    "CHUNK_CHARS",
    "Exposition",
    "MonitorCollector",
    "make_registry",
    "negotiate",
    "next_chunk",
    "quotas",
    "render",
]

log = get_logger("monitor.web.metrics")

P = "libertai_monitor_"
_HOST = ["model", "host"]
# Per write: small enough to render in a few milliseconds and not to show in RSS.
CHUNK_CHARS = 64 * 1024
# Pieces (lines, or hosts looked at) per chunk at most: a step of the render never runs long,
# even where it writes nothing (hosts whose series are left out, the per-host list being built).
PIECES_PER_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class Exposition:
    """The text format a client asked for (its Accept header), as prometheus_client picks it."""

    encoder: Callable[[Collector], bytes]
    content_type: str


def negotiate(accept: str) -> Exposition:
    encoder, content_type = choose_encoder(accept)
    return Exposition(encoder, content_type)


def render(
    monitor: MonitorView, exposition: Exposition, registry: Collector, max_hosts: int | None = None
) -> Iterator[bytes]:
    """The whole exposition in UTF-8 chunks of at most about `CHUNK_CHARS` (some empty: a step
    that wrote nothing): the per-host families as text, then `registry` (the small families)
    through prometheus_client's encoder.

    Pure but for reading the monitor; meant to be advanced on the event loop a chunk per turn, so
    that only one chunk of the body exists at a time and no step takes more than a few
    milliseconds. (In a worker thread, rendering 100,000 hosts' series competed with the loop for
    the GIL: each probe's socket call waited for the thread to hand the GIL back, turns of the
    loop took 200-400 ms, and the scrape itself took 96 s.)

    At most `max_hosts` (model, host) pairs get per-host series (see `quotas`; None: all); the
    rest are counted in `libertai_monitor_metrics_hosts_left_out`."""
    return _chunks(_text(monitor, exposition, registry, max_hosts), CHUNK_CHARS, PIECES_PER_CHUNK)


def next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk of `render`, None at the end."""
    return next(chunks, None)


def quotas(sizes: Sequence[int], most: int) -> list[int]:
    """How many of each model's best-ranked hosts get per-host series: all of them when they fit
    in `most`, else an equal share each, the share a smaller model leaves unused going to the
    others. A fleet of 100,000 probed hosts wrote 111 MB of series per scrape (4 s of rendering
    on an idle loop, minutes on a busy one): more than any Prometheus should take from one
    target, and the JSON API lists every host anyway."""
    if sum(sizes) <= most:
        return list(sizes)
    out = [0] * len(sizes)
    left, remaining = most, len(sizes)
    for i in sorted(range(len(sizes)), key=lambda i: sizes[i]):
        out[i] = min(sizes[i], left // remaining)
        left -= out[i]
        remaining -= 1
    return out


def _text(
    monitor: MonitorView, exposition: Exposition, registry: Collector, max_hosts: int | None
) -> Iterator[str]:
    snap = monitor.snapshot
    refused = _Refused()
    hosts: _Hosts = []
    # `-thinking` aliases are left out: their hosts are their base id's, exported once.
    views = [(model, view) for model, view in snap.models.items() if view.probed_as == model]
    sizes = [len(view.hosts) for _, view in views]
    shares = sizes if max_hosts is None else quotas(sizes, max_hosts)
    left_out = sum(len(view.hosts) for _, view in views) - sum(shares)
    kept: set[tuple[str, str]] | None = set() if left_out else None
    for (model, view), share in zip(views, shares, strict=True):
        escaped = _escape(model)
        for h in view.hosts[:share]:
            if refused.encodable(model, h.url):
                hosts.append((h, escaped, _escape(h.url)))
            if kept is not None:
                kept.add((model, h.url))
            yield ""  # a piece: the list is built a chunk's worth of hosts at a time
    for family in _HOST_FAMILIES:
        yield from family.lines(hosts, exposition)
    yield from _probe_lines(monitor, exposition, refused, kept)
    yield exposition.encoder(_Encodable(registry, refused, left_out)).decode()
    refused.report()


class _Refused:
    """Label values that cannot be encoded (a lone surrogate, say), met in one scrape: their series
    are left out, counted in `libertai_monitor_metrics_unencodable_labels`, and logged once per
    change. Discovery refuses such ids where they enter; this is the defence behind it, so that
    one bad value can never turn every scrape into an error."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def encodable(self, *values: str) -> bool:
        ok = True
        for value in values:
            if not value.isascii():
                try:
                    value.encode()
                except UnicodeEncodeError:
                    self.values.add(value)
                    ok = False
        return ok

    def report(self) -> None:
        global _last_refused
        shown = frozenset(ascii(v)[:80] for v in self.values)
        with _refused_lock:
            if shown == _last_refused:
                return
            _last_refused = shown
        if shown:
            log.warning("metrics: series left out, a label cannot be encoded", labels=sorted(shown)[:20])


_refused_lock = threading.Lock()  # scrapes render on the loop; the lock costs nothing and stays safe
_last_refused: frozenset[str] = frozenset()


class _Encodable(Collector):
    """`inner`'s families without the samples whose label values cannot be encoded, then (only
    when some were left out) the gauge counting those values."""

    def __init__(self, inner: Collector, refused: _Refused, left_out: int) -> None:
        self._inner = inner
        self._refused = refused
        self._left_out = left_out

    def collect(self) -> Iterator[Metric]:
        for family in self._inner.collect():
            kept = [s for s in family.samples if self._refused.encodable(*s.labels.values())]
            if len(kept) != len(family.samples):
                family = copy.copy(family)
                family.samples = kept
            yield family
        yield GaugeMetricFamily(
            P + "metrics_hosts_left_out",
            "(model, host) pairs whose per-host series this scrape left out (past metrics_max_hosts).",
            value=float(self._left_out),
        )
        if self._refused.values:
            yield GaugeMetricFamily(
                P + "metrics_unencodable_labels",
                "Label values that cannot be encoded as UTF-8, whose series this scrape left out.",
                value=float(len(self._refused.values)),
            )


def _chunks(pieces: Iterable[str], size: int, most: int) -> Iterator[bytes]:
    """Pieces joined into chunks of about `size` characters, or of `most` pieces."""
    buf: list[str] = []
    n = count = 0
    for piece in pieces:
        buf.append(piece)
        n += len(piece)
        count += 1
        if n >= size or count >= most:
            yield "".join(buf).encode()
            buf.clear()
            n = count = 0
    if buf:
        yield "".join(buf).encode()


def _escape(value: str) -> str:
    """A label value as both formats write it (prometheus_client's own escaping)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _go(value: float) -> str:
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


_HOLE = "\x00"


def _hole(name: str) -> str:
    return f"{_HOLE}{name}{_HOLE}"


class _Families(Collector):
    def __init__(self, *families: Metric) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


@dataclass(frozen=True, slots=True)
class _Template:
    """A family's HELP and TYPE lines and its sample line as prometheus_client writes them in one
    format, taken from encoding the family with one sample whose label values are holes: the
    line becomes a `str.format` pattern with a field per hole and one for the value. Whatever
    the format and the escaping, names, label order and the `_total` of counters are the
    encoder's own."""

    header: str
    line: str

    @classmethod
    def of(cls, family: Metric, exposition: Exposition, holes: Sequence[str]) -> _Template:
        lines = exposition.encoder(_Families(family)).decode().removesuffix("\n").split("\n")
        header = "".join(f"{line}\n" for line in lines if line.startswith("#") and line != "# EOF")
        (sample,) = (line for line in lines if not line.startswith("#"))
        labels, _value = sample.rsplit(" ", 1)
        pattern = labels.replace("{", "{{").replace("}", "}}")
        for name in holes:
            pattern = pattern.replace(_hole(name), "{" + name + "}")
        if _HOLE in pattern:
            raise ValueError(f"unexpected sample line for {family.name}: {sample!r}")
        return cls(header, pattern + " {value}\n")


_Hosts = list[tuple[HostView, str, str]]  # (view, escaped model, escaped host)


@dataclass(frozen=True, slots=True)
class _Gauge:
    """A gauge with a series per (model, host); hosts whose `value` is None have none."""

    name: str
    doc: str
    value: Callable[[HostView], float | None]

    def lines(self, hosts: _Hosts, exposition: Exposition) -> Iterator[str]:
        family = GaugeMetricFamily(P + self.name, self.doc, labels=_HOST)
        family.add_metric([_hole("model"), _hole("host")], 0.0)
        t = _Template.of(family, exposition, ("model", "host"))
        yield t.header
        for h, model, host in hosts:
            v = self.value(h)
            if v is not None:
                yield t.line.format(model=model, host=host, value=_go(v))


@dataclass(frozen=True, slots=True)
class _Labelled:
    """A gauge of value 1 per (model, host), whose extra label carries the reading."""

    name: str
    doc: str
    label: str
    value: Callable[[HostView], str]

    def lines(self, hosts: _Hosts, exposition: Exposition) -> Iterator[str]:
        family = GaugeMetricFamily(P + self.name, self.doc, labels=[*_HOST, self.label])
        family.add_metric([_hole("model"), _hole("host"), _hole("extra")], 1.0)
        t = _Template.of(family, exposition, ("model", "host", "extra"))
        yield t.header
        one = _go(1.0)
        for h, model, host in hosts:
            yield t.line.format(model=model, host=host, extra=_escape(self.value(h)), value=one)


@dataclass(frozen=True, slots=True)
class _States:
    """The host state as a stateset: a series per state, 1 for the current one."""

    name: str
    doc: str

    def lines(self, hosts: _Hosts, exposition: Exposition) -> Iterator[str]:
        family = StateSetMetricFamily(P + self.name, self.doc, labels=_HOST)
        family.add_metric([_hole("model"), _hole("host")], {_hole("state"): True})
        t = _Template.of(family, exposition, ("model", "host", "state"))
        yield t.header
        # In prometheus_client's order: its add_metric sorts the states by name.
        states = [(_escape(s.value), s) for s in sorted(HostState, key=lambda s: s.value)]
        one, zero = _go(1), _go(0)
        for h, model, host in hosts:
            for name, s in states:
                yield t.line.format(model=model, host=host, state=name, value=one if h.state is s else zero)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


_HOST_FAMILIES: tuple[_Gauge | _Labelled | _States, ...] = (
    _Gauge(
        "host_up",
        "1 if the host is up for the model, else 0.",
        lambda h: 1.0 if h.state is HostState.UP else 0.0,
    ),
    _States("host_state", "State of a host for a model."),
    _Labelled(
        "host_reason",
        "The outcome that decided the host's state (value 1).",
        "reason",
        lambda h: h.reason.value,
    ),
    _Labelled(
        "host_last_outcome",
        "Outcome of the host's latest probe (value 1).",
        "outcome",
        lambda h: h.last_outcome.value,
    ),
    _Gauge("host_availability_ratio", "Share of successful probes in the window.", lambda h: h.availability),
    _Gauge("host_window_samples", "Probe results in the window.", lambda h: float(h.samples)),
    _Gauge(
        "host_ttft_p50_seconds",
        "Median time to first token over the window.",
        lambda h: _seconds(h.ttft_ms_p50),
    ),
    _Gauge(
        "host_ttft_p95_seconds",
        "95th percentile time to first token over the window.",
        lambda h: _seconds(h.ttft_ms_p95),
    ),
    _Gauge(
        "host_latency_p50_seconds",
        "Median total probe latency over the window.",
        lambda h: _seconds(h.latency_ms_p50),
    ),
    _Gauge("host_consecutive_failures", "Failed probes in a row.", lambda h: float(h.consecutive_failures)),
    _Gauge(
        "host_last_success_timestamp_seconds",
        "When a probe of the host last succeeded.",
        lambda h: h.last_ok_at,
    ),
    _Gauge(
        "host_key_ok",
        "1 if the host accepts the key, 0 if it rejects it (absent: unknown).",
        lambda h: None if h.key_ok is None else 1.0 if h.key_ok else 0.0,
    ),
    _Gauge(
        "host_tokens_per_second",
        "Output tokens per second of the last throughput probe, after its first token.",
        lambda h: h.tokens_per_s,
    ),
    _Gauge(
        "host_inter_token_p50_seconds",
        "Median gap between output tokens in the last throughput probe.",
        lambda h: _seconds(h.inter_token_ms_p50),
    ),
)


def _probe_lines(
    monitor: MonitorView, exposition: Exposition, refused: _Refused, kept: set[tuple[str, str]] | None
) -> Iterator[str]:
    labels = ("model", "host", "kind", "outcome")
    family = CounterMetricFamily(P + "probes", "Probes by model, host, kind and outcome.", labels=labels)
    family.add_metric([_hole(n) for n in labels], 0.0)
    t = _Template.of(family, exposition, labels)
    yield t.header
    # A copy in one step: the loop keeps counting between the steps of a render.
    kept_hosts = set() if kept is None else {host for _, host in kept}
    for (model, host, kind, outcome), n in dict(monitor.counters.probes).items():
        # A host-wide check (model "") counts for a kept host; the others for a kept pair only.
        left_out = kept is not None and (model, host) not in kept and (model or host not in kept_hosts)
        if left_out or not refused.encodable(model, host, kind, outcome):
            yield ""  # a piece all the same: a long run of counters left out is still in steps
            continue
        yield t.line.format(
            model=_escape(model or "*"),
            host=_escape(host),
            kind=_escape(kind),
            outcome=_escape(outcome),
            value=_go(float(n)),
        )


def make_registry(monitor: MonitorView) -> CollectorRegistry:
    """The registry of the small families, which `render` encodes after the per-host ones."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor))
    return registry
