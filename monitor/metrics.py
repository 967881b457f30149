"""Prometheus metrics: a collector that reads the monitor's snapshot and counters at scrape time.

Nothing here is updated on the probe path; a scrape walks the current snapshot, so metrics and the
JSON API always agree. One registry per application keeps tests free of duplicate series.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.registry import Collector

from monitor.results import HostState, Outcome

if TYPE_CHECKING:
    from monitor.service import Monitor

P = "libertai_monitor_"
_HOST = ["model", "host"]


class MonitorCollector(Collector):
    def __init__(self, monitor: Monitor) -> None:
        self._m = monitor

    def describe(self) -> list[Metric]:
        return []  # collected at scrape time only: the registry must not call collect() on register

    def collect(self) -> Iterator[Metric]:
        yield from self._hosts()
        yield from self._models()
        yield from self._probes()
        yield from self._discovery()
        yield from self._service()

    def _hosts(self) -> Iterator[Metric]:
        snap = self._m.snapshot
        up = GaugeMetricFamily(P + "host_up", "1 if the host is up for the model, else 0.", labels=_HOST)
        state = StateSetMetricFamily(P + "host_state", "State of a host for a model.", labels=_HOST)
        reason = GaugeMetricFamily(
            P + "host_reason",
            "The outcome that decided the host's state (value 1).",
            labels=[*_HOST, "reason"],
        )
        last = GaugeMetricFamily(
            P + "host_last_outcome",
            "Outcome of the host's latest probe (value 1).",
            labels=[*_HOST, "outcome"],
        )
        avail = GaugeMetricFamily(
            P + "host_availability_ratio", "Share of successful probes in the window.", labels=_HOST
        )
        samples = GaugeMetricFamily(P + "host_window_samples", "Probe results in the window.", labels=_HOST)
        ttft50 = GaugeMetricFamily(
            P + "host_ttft_p50_seconds", "Median time to first token over the window.", labels=_HOST
        )
        ttft95 = GaugeMetricFamily(
            P + "host_ttft_p95_seconds", "95th percentile time to first token over the window.", labels=_HOST
        )
        latency = GaugeMetricFamily(
            P + "host_latency_p50_seconds", "Median total probe latency over the window.", labels=_HOST
        )
        failures = GaugeMetricFamily(P + "host_consecutive_failures", "Failed probes in a row.", labels=_HOST)
        last_ok = GaugeMetricFamily(
            P + "host_last_success_timestamp_seconds",
            "When a probe of the host last succeeded.",
            labels=_HOST,
        )
        key_ok = GaugeMetricFamily(
            P + "host_key_ok",
            "1 if the host accepts the key, 0 if it rejects it (absent: unknown).",
            labels=_HOST,
        )
        for model, view in snap.models.items():
            if view.probed_as != model:
                continue  # a `-thinking` alias: its hosts are its base id's, already exported
            for h in view.hosts:
                labels = [model, h.url]
                up.add_metric(labels, 1.0 if h.state is HostState.UP else 0.0)
                state.add_metric(labels, {s.value: h.state is s for s in HostState})
                reason.add_metric([*labels, h.reason.value], 1.0)
                last.add_metric([*labels, h.last_outcome.value], 1.0)
                samples.add_metric(labels, float(h.samples))
                failures.add_metric(labels, float(h.consecutive_failures))
                if h.availability is not None:
                    avail.add_metric(labels, h.availability)
                if h.ttft_ms_p50 is not None:
                    ttft50.add_metric(labels, h.ttft_ms_p50 / 1000)
                if h.ttft_ms_p95 is not None:
                    ttft95.add_metric(labels, h.ttft_ms_p95 / 1000)
                if h.latency_ms_p50 is not None:
                    latency.add_metric(labels, h.latency_ms_p50 / 1000)
                if h.last_ok_at is not None:
                    last_ok.add_metric(labels, h.last_ok_at)
                if h.key_ok is not None:
                    key_ok.add_metric(labels, 1.0 if h.key_ok else 0.0)
        yield from (
            up,
            state,
            reason,
            last,
            avail,
            samples,
            ttft50,
            ttft95,
            latency,
            failures,
            last_ok,
            key_ok,
        )

    def _models(self) -> Iterator[Metric]:
        snap = self._m.snapshot
        best = InfoMetricFamily(
            P + "best_host", "The host a client should call now for a model.", labels=["model"]
        )
        healthy = GaugeMetricFamily(P + "model_healthy_hosts", "Hosts up for the model.", labels=["model"])
        known = GaugeMetricFamily(P + "model_known_hosts", "Hosts listed for the model.", labels=["model"])
        for model, view in snap.models.items():
            best.add_metric([model], {"host": view.best or ""})
            healthy.add_metric([model], float(view.healthy))
            known.add_metric([model], float(view.known))
        yield from (best, healthy, known)

    def _probes(self) -> Iterator[Metric]:
        probes = CounterMetricFamily(
            P + "probes", "Probes by model, host, kind and outcome.", labels=[*_HOST, "kind", "outcome"]
        )
        # A copy in one step: collect() runs in a worker thread while the loop keeps counting.
        for (model, host, kind, outcome), n in dict(self._m.probe_counts).items():
            probes.add_metric([model or "*", host, kind, outcome], float(n))
        yield probes

    def _discovery(self) -> Iterator[Metric]:
        d = self._m.discovery
        snap = self._m.snapshot
        runs = CounterMetricFamily(
            P + "discovery_runs", "Polls of the gateway's model list.", labels=["result"]
        )
        runs.add_metric(["ok"], float(d.runs_ok))
        runs.add_metric(["error"], float(d.runs_failed))
        yield runs
        yield GaugeMetricFamily(
            P + "discovery_success",
            "1 if the latest poll of the gateway succeeded.",
            value=1.0 if d.ok else 0.0,
        )
        if d.duration_s is not None:
            yield GaugeMetricFamily(
                P + "discovery_duration_seconds", "Duration of the latest poll.", value=d.duration_s
            )
        yield GaugeMetricFamily(
            P + "discovery_hosts", "Distinct hosts in the current list.", value=snap.host_count
        )
        yield GaugeMetricFamily(P + "discovery_models", "Models in the current list.", value=len(snap.models))
        if d.last_ok_at is not None:
            yield GaugeMetricFamily(
                P + "discovery_last_success_timestamp_seconds",
                "When the list was last fetched.",
                value=d.last_ok_at,
            )
            yield GaugeMetricFamily(
                P + "discovery_list_age_seconds",
                "Age of the last good host list.",
                value=max(0.0, time.time() - d.last_ok_at),
            )
        key = self._m.key_outcome
        if key is not None:
            yield GaugeMetricFamily(
                P + "gateway_key_ok",
                "1 if the gateway accepts the API key, 0 if it rejects it.",
                value=0.0 if key is Outcome.KEY_REJECTED else 1.0,
            )

    def _service(self) -> Iterator[Metric]:
        s = self._m.sched_stats
        yield GaugeMetricFamily(
            P + "scheduler_lag_seconds",
            "Worst delay of a probe against its slot since the last scrape.",
            value=s.take_max_lag(),
        )
        skipped = CounterMetricFamily(
            P + "scheduler_skipped_runs", "Runs not made, by reason.", labels=["reason"]
        )
        skipped.add_metric(["overrun"], float(s.skipped_overrun))
        skipped.add_metric(["missed"], float(s.job_missed))
        skipped.add_metric(["max_instances"], float(s.job_max_instances))
        yield skipped
        yield CounterMetricFamily(
            P + "scheduler_job_errors", "Periodic jobs that raised.", value=s.job_errors
        )
        yield GaugeMetricFamily(P + "probes_in_flight", "Probes running now.", value=s.in_flight)
        yield GaugeMetricFamily(
            P + "probe_targets", "Scheduled probe targets.", value=float(self._m.target_count)
        )
        store = self._m.store
        if store is not None:
            st = store.stats
            yield CounterMetricFamily(P + "db_write_errors", "Failed database writes.", value=st.write_errors)
            yield CounterMetricFamily(P + "db_rows_written", "Probe results written.", value=st.rows_written)
            yield CounterMetricFamily(
                P + "db_dropped_results",
                "Results dropped because the write queue was full.",
                value=st.dropped,
            )
            yield GaugeMetricFamily(
                P + "db_queue_depth", "Results waiting to be written.", value=st.queue_depth
            )
            yield GaugeMetricFamily(
                P + "db_healthy",
                "1 if the latest database write succeeded.",
                value=1.0 if st.healthy else 0.0,
            )
        yield GaugeMetricFamily(
            P + "start_time_seconds", "When the service started.", value=self._m.started_at
        )
        info = InfoMetricFamily(P + "build", "Version of the service.")
        info.add_metric([], {"version": self._m.build_info["version"], "python": platform.python_version()})
        yield info


def make_registry(monitor: Monitor) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor))
    return registry
