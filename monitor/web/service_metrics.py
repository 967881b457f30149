"""The small metric families: per model, discovery, scheduler, store and build (a few dozen
series, as prometheus_client objects; the per-host families are `metrics.render`'s text)."""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.core.results import Outcome
from monitor.core.slo import AVAILABILITY, TTFT
from monitor.core.snapshot import Snapshot
from monitor.web.readout import Counters, Readout

P = "libertai_monitor_"


class MonitorCollector(Collector):
    """The small families: per model, discovery, scheduler, store and build (a few dozen series;
    the per-host ones are `render`'s)."""

    def __init__(self, monitor: Readout) -> None:
        self._m = monitor

    def describe(self) -> list[Metric]:
        return []  # collected at scrape time only: the registry must not call collect() on register

    def collect(self) -> Iterator[Metric]:
        snap = self._m.snapshot
        yield from _model_families(snap)
        yield from _vantage_families(snap)
        yield from _discovery_families(snap, self._m.clock.time())
        yield from _service_families(self._m.counters)
        yield from _slo_families(self._m.counters)
        yield from _tls_families(snap)


def _model_families(snap: Snapshot) -> Iterator[Metric]:
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


def _tls_families(snap: Snapshot) -> Iterator[Metric]:
    """The expiry of the certificate each HTTPS host showed last (one series per host, whatever
    models it serves; hosts not seen over TLS have none)."""
    not_after = GaugeMetricFamily(
        P + "tls_not_after_seconds",
        "When the certificate an HTTPS host showed last expires (Unix time).",
        labels=["host"],
    )
    seen: set[str] = set()
    for view in snap.models.values():
        for h in view.hosts:
            tls = h.tls
            if tls is not None and tls.not_after is not None and h.url not in seen:
                seen.add(h.url)
                not_after.add_metric([h.url], tls.not_after)
    yield not_after


def _vantage_families(snap: Snapshot) -> Iterator[Metric]:
    """The role of this process, and the hosts down from some vantage (a series per such host
    only: a healthy fleet adds none)."""
    if snap.served_by is not None:
        leader = GaugeMetricFamily(
            P + "leader",
            "1 if this process leads its vantage (probes and writes), 0 if it follows the leader.",
            labels=["vantage"],
        )
        leader.add_metric([snap.served_by.vantage], 1.0 if snap.served_by.role == "leader" else 0.0)
        yield leader
    down = GaugeMetricFamily(
        P + "host_down_vantages",
        "Vantages from which a host is down; scope is all (every vantage) or regional (some only).",
        labels=["model", "host", "scope"],
    )
    for model, view in snap.models.items():
        if view.probed_as != model:
            continue  # an alias: its hosts are its base id's, already exported
        for h in view.hosts:
            if h.down_from:
                down.add_metric([model, h.url, h.scope or ""], float(len(h.down_from)))
    yield down


def _discovery_families(snap: Snapshot, now: float) -> Iterator[Metric]:
    d = snap.discovery
    runs = CounterMetricFamily(P + "discovery_runs", "Polls of the gateway's model list.", labels=["result"])
    runs.add_metric(["ok"], float(d.runs_ok))
    runs.add_metric(["error"], float(d.runs_failed))
    yield runs
    if snap.served_by is None or snap.served_by.role == "leader" or d.ok is not None:
        # A follower does not poll the gateway: no series that would say its polls fail.
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
            value=max(0.0, now - d.last_ok_at),
        )
    key = snap.key_outcome
    if key is not None:
        yield GaugeMetricFamily(
            P + "gateway_key_ok",
            "1 if the gateway accepts the API key, 0 if it rejects it.",
            value=0.0 if key in (Outcome.KEY_REJECTED, Outcome.KEY_BLOCKED) else 1.0,
        )


def _service_families(c: Counters) -> Iterator[Metric]:
    blocked = c.key_blocked()
    key = GaugeMetricFamily(
        P + "key_blocked",
        "1 while the API key is blocked (a 403 with a reason from the gateway or a host), else 0.",
        labels=["reason"],
    )
    key.add_metric([blocked or ""], 0.0 if blocked is None else 1.0)
    yield key
    s = c.scheduler
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
    yield CounterMetricFamily(P + "scheduler_job_errors", "Periodic jobs that raised.", value=s.job_errors)
    yield GaugeMetricFamily(P + "probes_in_flight", "Probes running now.", value=s.in_flight)
    yield GaugeMetricFamily(P + "probe_targets", "Scheduled probe targets.", value=float(c.targets()))
    notified = CounterMetricFamily(
        P + "notifications", "Notification messages by state: sent, retried, dropped.", labels=["state"]
    )
    for state in ("sent", "retried", "dropped"):
        notified.add_metric([state], float(c.notifications.get(state, 0)))
    yield notified
    st = c.store()
    if st is not None:
        yield CounterMetricFamily(P + "db_write_errors", "Failed database writes.", value=st.write_errors)
        yield CounterMetricFamily(P + "db_rows_written", "Probe results written.", value=st.rows_written)
        yield CounterMetricFamily(
            P + "db_dropped_results",
            "Probe results never written (every reason; see db_dropped_results_by_reason).",
            value=st.dropped,
        )
        by_reason = CounterMetricFamily(
            P + "db_dropped_results_by_reason", "Probe results never written, by reason.", labels=["reason"]
        )
        for reason, count in st.dropped_by_reason.items():
            by_reason.add_metric([reason], float(count))
        yield by_reason
        facts = CounterMetricFamily(
            P + "db_dropped_facts_by_reason",
            "Host facts (identity, paths, throughput) never written, by reason.",
            labels=["reason"],
        )
        for reason, count in st.facts_dropped_by_reason.items():
            facts.add_metric([reason], float(count))
        yield facts
        yield GaugeMetricFamily(P + "db_queue_depth", "Results waiting to be written.", value=st.queue_depth)
        yield GaugeMetricFamily(
            P + "db_healthy",
            "1 if the latest database write succeeded.",
            value=1.0 if st.healthy else 0.0,
        )
    yield GaugeMetricFamily(P + "start_time_seconds", "When the service started.", value=c.started_at)
    info = InfoMetricFamily(P + "build", "Version of the service.")
    info.add_metric([], {"version": c.version, "python": platform.python_version()})
    yield info


def _slo_families(c: Counters) -> Iterator[Metric]:
    """Good and all events per (model, objective) and the objectives themselves, so that the
    burn-rate rules (grafana/prometheus/slo.yml) hold no target of their own."""
    labels = ["model", "slo"]
    good = CounterMetricFamily(
        P + "slo_good", "Events within the objective, by model and SLO.", labels=labels
    )
    total = CounterMetricFamily(P + "slo", "Events counted toward an SLO, by model and SLO.", labels=labels)
    good_counts = dict(c.slo_good)
    for (model, slo), n in sorted(dict(c.slo_total).items()):
        total.add_metric([model, slo], float(n))
        good.add_metric([model, slo], float(good_counts.get((model, slo), 0)))
    yield from (good, total)
    objective = GaugeMetricFamily(
        P + "slo_objective", "The share of events an SLO wants within it (a setting).", labels=["slo"]
    )
    objective.add_metric([AVAILABILITY], c.objectives.availability)
    objective.add_metric([TTFT], c.objectives.ttft_target)
    yield objective
    yield GaugeMetricFamily(
        P + "slo_ttft_threshold_seconds",
        "The time to first token a completion must not exceed to count within the ttft SLO.",
        value=c.objectives.ttft_ms / 1000.0,
    )
