"""Prometheus metrics, read from the monitor's snapshot and counters (`Readout`) at scrape time.

Nothing here is updated on the probe path; a scrape walks the current snapshot, so metrics and the
JSON API always agree. One registry per application keeps tests free of duplicate series.

The families with a series per (model, host) are written straight to exposition text, one line at
a time, and handed out in chunks: as prometheus_client objects they cost a `Sample` and a label
dict per series, all alive at once, and the whole body was then held several times over (figures:
docs/performance.md). Those families and the text writing
they share are in `monitor.web.host_metrics`; this module runs the scrape. The small families (per
model, discovery, service, build) stay prometheus_client objects (`service_metrics.MonitorCollector`), encoded
last, so that an OpenMetrics body ends with their one `# EOF`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from monitor.logging import get_logger
from monitor.web.host_metrics import (
    HOST_FAMILIES,
    PREFIX,
    Exposition,
    Hosts,
    Template,
    escape,
    go,
    hole,
    negotiate,
)
from monitor.web.readout import Readout
from monitor.web.service_metrics import MonitorCollector

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

# Per write: small enough to render in a few milliseconds and not to show in RSS.
CHUNK_CHARS = 64 * 1024
# Pieces (lines, or hosts looked at) per chunk at most: a step of the render never runs long,
# even where it writes nothing (hosts whose series are left out, the per-host list being built).
PIECES_PER_CHUNK = 2000


def render(
    monitor: Readout, exposition: Exposition, registry: Collector, max_hosts: int | None = None
) -> Iterator[bytes]:
    """The whole exposition in UTF-8 chunks of at most about `CHUNK_CHARS` (some empty: a step
    that wrote nothing): the per-host families as text, then `registry` (the small families)
    through prometheus_client's encoder.

    Pure but for reading the monitor; meant to be advanced on the event loop, so that only one
    chunk of the body exists at a time and no step takes more than a few milliseconds (why not
    in a worker thread: docs/performance.md).

    At most `max_hosts` (model, host) pairs get per-host series (see `quotas`; None: all); the
    rest are counted in `libertai_monitor_metrics_hosts_left_out`."""
    return _chunks(_text(monitor, exposition, registry, max_hosts), CHUNK_CHARS, PIECES_PER_CHUNK)


def next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk of `render`, None at the end."""
    return next(chunks, None)


def quotas(sizes: Sequence[int], most: int) -> list[int]:
    """How many of each model's best-ranked hosts get per-host series: all of them when they fit
    in `most`, else an equal share each, the share a smaller model leaves unused going to the
    others. Past a few thousand hosts a scrape is more than any Prometheus should take from one
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
    monitor: Readout, exposition: Exposition, registry: Collector, max_hosts: int | None
) -> Iterator[str]:
    snap = monitor.snapshot
    refused = _Refused()
    hosts: Hosts = []
    # `-thinking` aliases are left out: their hosts are their base id's, exported once.
    views = [(model, view) for model, view in snap.models.items() if view.probed_as == model]
    sizes = [len(view.hosts) for _, view in views]
    shares = sizes if max_hosts is None else quotas(sizes, max_hosts)
    left_out = sum(len(view.hosts) for _, view in views) - sum(shares)
    kept: set[tuple[str, str]] | None = set() if left_out else None
    for (model, view), share in zip(views, shares, strict=True):
        escaped = escape(model)
        weights = {c.url: c.weight for c in view.candidates}
        for h in view.hosts[:share]:
            if refused.encodable(model, h.url):
                hosts.append((h, escaped, escape(h.url), weights.get(h.url, 0.0)))
            if kept is not None:
                kept.add((model, h.url))
            yield ""  # a piece: the list is built a chunk's worth of hosts at a time
    for family in HOST_FAMILIES:
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
            PREFIX + "metrics_hosts_left_out",
            "(model, host) pairs whose per-host series this scrape left out (past metrics_max_hosts).",
            value=float(self._left_out),
        )
        if self._refused.values:
            yield GaugeMetricFamily(
                PREFIX + "metrics_unencodable_labels",
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


def _probe_lines(
    monitor: Readout, exposition: Exposition, refused: _Refused, kept: set[tuple[str, str]] | None
) -> Iterator[str]:
    labels = ("model", "host", "kind", "outcome")
    family = CounterMetricFamily(PREFIX + "probes", "Probes by model, host, kind and outcome.", labels=labels)
    family.add_metric([hole(n) for n in labels], 0.0)
    t = Template.of(family, exposition, labels)
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
            model=escape(model or "*"),
            host=escape(host),
            kind=escape(kind),
            outcome=escape(outcome),
            value=go(float(n)),
        )


def make_registry(monitor: Readout) -> CollectorRegistry:
    """The registry of the small families, which `render` encodes after the per-host ones."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor))
    return registry
