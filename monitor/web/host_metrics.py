"""The families with a series per (model, host), written straight to exposition text a line at a
time (see `monitor.web.metrics` for why): each family's HELP and TYPE lines and the shape of its
sample lines come from prometheus_client's encoder (`Template`), so names, label order and
escaping match the negotiated format by construction."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric, StateSetMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.core.host_view import HostView
from monitor.core.results import HostState

__all__ = ["HOST_FAMILIES", "PREFIX", "Exposition", "Hosts", "Template", "escape", "go", "hole", "negotiate"]

PREFIX = "libertai_monitor_"
_HOST = ["model", "host"]


@dataclass(frozen=True, slots=True)
class Exposition:
    """The text format a client asked for (its Accept header), as prometheus_client picks it."""

    encoder: Callable[[Collector], bytes]
    content_type: str


def negotiate(accept: str) -> Exposition:
    encoder, content_type = choose_encoder(accept)
    return Exposition(encoder, content_type)


def escape(value: str) -> str:
    """A label value as both formats write it (prometheus_client's own escaping)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def go(value: float) -> str:
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


_HOLE = "\x00"


def hole(name: str) -> str:
    return f"{_HOLE}{name}{_HOLE}"


class _Families(Collector):
    def __init__(self, *families: Metric) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


@dataclass(frozen=True, slots=True)
class Template:
    """A family's HELP and TYPE lines and its sample line as prometheus_client writes them in one
    format, taken from encoding the family with one sample whose label values are holes: the
    line becomes a `str.format` pattern with a field per hole and one for the value. Whatever
    the format and the escaping, names, label order and the `_total` of counters are the
    encoder's own."""

    header: str
    line: str

    @classmethod
    def of(cls, family: Metric, exposition: Exposition, holes: Sequence[str]) -> Template:
        lines = exposition.encoder(_Families(family)).decode().removesuffix("\n").split("\n")
        header = "".join(f"{line}\n" for line in lines if line.startswith("#") and line != "# EOF")
        (sample,) = (line for line in lines if not line.startswith("#"))
        labels, _value = sample.rsplit(" ", 1)
        pattern = labels.replace("{", "{{").replace("}", "}}")
        for name in holes:
            pattern = pattern.replace(hole(name), "{" + name + "}")
        if _HOLE in pattern:
            raise ValueError(f"unexpected sample line for {family.name}: {sample!r}")
        return cls(header, pattern + " {value}\n")


# (view, escaped model, escaped host, its weight among the model's candidates: 0 when not one)
Hosts = list[tuple[HostView, str, str, float]]


@dataclass(frozen=True, slots=True)
class _Gauge:
    """A gauge with a series per (model, host); hosts whose `value` is None have none."""

    name: str
    doc: str
    value: Callable[[HostView], float | None]

    def lines(self, hosts: Hosts, exposition: Exposition) -> Iterator[str]:
        family = GaugeMetricFamily(PREFIX + self.name, self.doc, labels=_HOST)
        family.add_metric([hole("model"), hole("host")], 0.0)
        t = Template.of(family, exposition, ("model", "host"))
        yield t.header
        for h, model, host, _ in hosts:
            v = self.value(h)
            if v is not None:
                yield t.line.format(model=model, host=host, value=go(v))


@dataclass(frozen=True, slots=True)
class _Weight:
    """Each host's weight among its model's candidates (`monitor.core.candidates`)."""

    name: str
    doc: str

    def lines(self, hosts: Hosts, exposition: Exposition) -> Iterator[str]:
        family = GaugeMetricFamily(PREFIX + self.name, self.doc, labels=_HOST)
        family.add_metric([hole("model"), hole("host")], 0.0)
        t = Template.of(family, exposition, ("model", "host"))
        yield t.header
        for _, model, host, weight in hosts:
            yield t.line.format(model=model, host=host, value=go(weight))


@dataclass(frozen=True, slots=True)
class _Labelled:
    """A gauge of value 1 per (model, host), whose extra label carries the reading."""

    name: str
    doc: str
    label: str
    value: Callable[[HostView], str]

    def lines(self, hosts: Hosts, exposition: Exposition) -> Iterator[str]:
        family = GaugeMetricFamily(PREFIX + self.name, self.doc, labels=[*_HOST, self.label])
        family.add_metric([hole("model"), hole("host"), hole("extra")], 1.0)
        t = Template.of(family, exposition, ("model", "host", "extra"))
        yield t.header
        one = go(1.0)
        for h, model, host, _ in hosts:
            yield t.line.format(model=model, host=host, extra=escape(self.value(h)), value=one)


@dataclass(frozen=True, slots=True)
class _States:
    """The host state as a stateset: a series per state, 1 for the current one."""

    name: str
    doc: str

    def lines(self, hosts: Hosts, exposition: Exposition) -> Iterator[str]:
        family = StateSetMetricFamily(PREFIX + self.name, self.doc, labels=_HOST)
        family.add_metric([hole("model"), hole("host")], {hole("state"): True})
        t = Template.of(family, exposition, ("model", "host", "state"))
        yield t.header
        # In prometheus_client's order: its add_metric sorts the states by name.
        states = [(escape(s.value), s) for s in sorted(HostState, key=lambda s: s.value)]
        one, zero = go(1), go(0)
        for h, model, host, _ in hosts:
            for name, s in states:
                yield t.line.format(model=model, host=host, state=name, value=one if h.state is s else zero)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


HOST_FAMILIES: tuple[_Gauge | _Weight | _Labelled | _States, ...] = (
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
    _Gauge(
        "host_load",
        "How far the host's recent time to first token is above its unloaded one (0: idle; 1: doubled).",
        lambda h: h.load,
    ),
    _Labelled(
        "host_identity",
        "Whether the host serves the model it is listed for: ok, mismatch or unknown (value 1).",
        "identity",
        lambda h: h.identity.state,
    ),
    _Weight(
        "candidate_weight",
        "The host's share of new requests for the model (0 when it is not a candidate).",
    ),
)
