"""/metrics: what an operator's Prometheus scrapes, linted by promtool, and rendered a chunk at a
time, off the event loop, exactly as prometheus_client rendered it before."""

from __future__ import annotations

import gzip
import itertools
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import parser as text_parser
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, StateSetMetricFamily
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.registry import Collector

from monitor.core.candidates import Candidate
from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.core.host_view import HostView
from monitor.core.results import HostState, Outcome
from monitor.core.snapshot import ModelView, Snapshot
from monitor.core.steps import finish
from monitor.parts.dispatcher import SchedulerStats
from monitor.parts.ports import HistoryReader
from monitor.parts.readiness import Readiness
from monitor.server import serving
from monitor.web import api
from monitor.web.api import make_app
from monitor.web.metrics import CHUNK_CHARS, PIECES_PER_CHUNK, MonitorCollector, negotiate, quotas, render
from monitor.web.readout import Counters, Readout
from tests.deploy.prom import tool
from tests.service.support import eventually, network, settings_for
from tests.turns import Turns

# What Prometheus 2.42 sends (OpenMetrics), what Prometheus 3 sends, and no preference (text 0.0.4).
OPENMETRICS = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
OPENMETRICS_UTF8 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8"
TEXT = ""

BASE = "hermes-3-8b"
ALIAS = "hermes-3-8b-thinking"
ODD = 'od"d\\model\nname'
FULL = "http://127.0.0.1:1001"
BARE = "http://127.0.0.1:1002"
REJECTING = "http://127.0.0.1:1003"
ODD_HOST = 'http://127.0.0.1:1004/"quoted"\\path'


def _promtool() -> str:
    return tool("promtool")  # PATH, then .ci-tools/; fails in CI, skips elsewhere when missing


async def _scrape(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return await r.text()


@pytest.mark.e2e
async def test_metrics_describe_every_model_and_host(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with network("demo") as net, serving(settings_for(net, tmp_path)) as svc:
        await eventually(
            lambda: (
                any(k[2] == "completion" and k[3] == "ok" for k in svc.monitor.probe_counts)
                and any(m.best for m in svc.monitor.snapshot.models.values())
            ),
            timeout=30,
        )
        finish(svc.monitor.publisher.publish(force=True))
        text = await _scrape(http, svc.url)
        snap = svc.monitor.snapshot
        for model, view in snap.models.items():
            assert f'libertai_monitor_model_healthy_hosts{{model="{model}"}} {float(view.healthy)}' in text
            for h in view.hosts:
                line = f'libertai_monitor_host_up{{host="{h.url}",model="{model}"}}'
                # Per-host series are exported once, under the base id, not again per alias.
                assert (line in text) == (view.probed_as == model), line
        best_model, best_view = next((m, v) for m, v in snap.models.items() if v.best)
        assert f'libertai_monitor_best_host_info{{host="{best_view.best}",model="{best_model}"}} 1.0' in text
        assert 'libertai_monitor_probes_total{host="' in text
        assert 'kind="completion",model="' in text and 'outcome="ok"' in text
        for name in (
            "libertai_monitor_discovery_success 1.0",
            "libertai_monitor_discovery_hosts ",
            "libertai_monitor_discovery_list_age_seconds ",
            "libertai_monitor_scheduler_lag_seconds ",
            'libertai_monitor_scheduler_skipped_runs_total{reason="overrun"}',
            "libertai_monitor_db_write_errors_total 0.0",
            "libertai_monitor_build_info{",
            "libertai_monitor_gateway_key_ok 1.0",
        ):
            assert name in text, name


@pytest.mark.e2e
@pytest.mark.subprocess  # promtool
async def test_promtool_finds_nothing_to_lint(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    promtool = _promtool()
    async with network("chaos") as net, serving(settings_for(net, tmp_path)) as svc:
        await eventually(lambda: svc.monitor.probe_counts.total() > 50, timeout=30)
        text = await _scrape(http, svc.url)
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), (
        proc.stdout + proc.stderr
    )


def _view(model: str, url: str, **figures: Any) -> HostView:
    bare: dict[str, Any] = {
        "state": HostState.UNKNOWN,
        "reason": Outcome.NOT_PROBED,
        "availability": None,
        "samples": 0,
        "ttft_ms_p50": None,
        "ttft_ms_p95": None,
        "latency_ms_p50": None,
        "last_probe_at": None,
        "last_ok_at": None,
        "consecutive_failures": 0,
        "key_ok": None,
        "last_outcome": Outcome.NOT_PROBED,
    }
    return HostView(model=model, url=url, **(bare | figures))


class _View:
    """A `Readout` over a given snapshot and probe counts: what /metrics reads, no service."""

    def __init__(
        self, snapshot: Snapshot, probes: dict[tuple[str, str, str, str], int] | None = None
    ) -> None:
        self.snapshot = snapshot
        self.counters = Counters(
            probes=probes or {},
            scheduler=SchedulerStats(),
            targets=lambda: 0,
            store=lambda: None,
            started_at=1732492800.0,
            version="test",
        )
        self.history: HistoryReader | None = None
        self.clock: Clock = SYSTEM_CLOCK

    def readiness(self) -> Readiness:
        return Readiness(True, {})


def _awkward_monitor() -> Readout:
    """Hosts with every figure, with none, a rejected key, an alias, and label values to escape."""
    hosts = (
        _view(
            BASE,
            FULL,
            state=HostState.UP,
            reason=Outcome.OK,
            availability=0.987654321,
            samples=20,
            ttft_ms_p50=80.25,
            ttft_ms_p95=1234.5,
            latency_ms_p50=95.0,
            last_probe_at=1732492801.5,
            last_ok_at=1732492800.123,
            key_ok=True,
            last_outcome=Outcome.OK,
            tokens_per_s=42.5,
            inter_token_ms_p50=23.5,
            ttft_ms_baseline=70.0,
            load=0.375,
        ),
        _view(BASE, BARE),
        _view(
            BASE,
            REJECTING,
            state=HostState.DOWN,
            reason=Outcome.KEY_REJECTED,
            samples=3,
            consecutive_failures=3,
            key_ok=False,
            last_outcome=Outcome.KEY_REJECTED,
        ),
    )
    odd = (_view(ODD, ODD_HOST, state=HostState.UNTRUSTED, availability=0.5, samples=2),)
    chosen = (Candidate(FULL, 1.0, 80.25, 1234.5, 0.375, True),)
    snapshot = Snapshot(
        generated_at=time.time(),
        models={
            BASE: ModelView(BASE, BASE, FULL, (), 1, 3, False, hosts, candidates=chosen),
            ALIAS: ModelView(ALIAS, BASE, FULL, (), 1, 3, False, hosts, candidates=chosen),
            ODD: ModelView(ODD, ODD, None, (), 0, 1, False, odd),
        },
    )
    probes = {
        (BASE, FULL, "completion", "ok"): 3,
        (BASE, REJECTING, "completion", "key_rejected"): 3,
        ("", FULL, "auth", "unsupported"): 1,
        (ODD, ODD_HOST, "health", "timeout"): 2,
    }
    return _View(snapshot, probes)


class _Reference(Collector):
    """How every family was collected before the per-host ones were written as text: the
    prometheus_client objects of the per-host families and the probe counter, then the rest."""

    def __init__(self, monitor: Readout) -> None:
        self._m = monitor

    def collect(self) -> Iterator[Metric]:
        yield from self._hosts()
        yield from self._probes()
        yield from MonitorCollector(self._m).collect()
        yield GaugeMetricFamily(
            "libertai_monitor_metrics_hosts_left_out",
            "(model, host) pairs whose per-host series this scrape left out (past metrics_max_hosts).",
            value=0.0,
        )

    def _hosts(self) -> Iterator[Metric]:
        p, labels = "libertai_monitor_", ["model", "host"]
        up = GaugeMetricFamily(p + "host_up", "1 if the host is up for the model, else 0.", labels=labels)
        state = StateSetMetricFamily(p + "host_state", "State of a host for a model.", labels=labels)
        reason = GaugeMetricFamily(
            p + "host_reason",
            "The outcome that decided the host's state (value 1).",
            labels=[*labels, "reason"],
        )
        last = GaugeMetricFamily(
            p + "host_last_outcome",
            "Outcome of the host's latest probe (value 1).",
            labels=[*labels, "outcome"],
        )
        avail = GaugeMetricFamily(
            p + "host_availability_ratio", "Share of successful probes in the window.", labels=labels
        )
        samples = GaugeMetricFamily(p + "host_window_samples", "Probe results in the window.", labels=labels)
        ttft50 = GaugeMetricFamily(
            p + "host_ttft_p50_seconds", "Median time to first token over the window.", labels=labels
        )
        ttft95 = GaugeMetricFamily(
            p + "host_ttft_p95_seconds", "95th percentile time to first token over the window.", labels=labels
        )
        latency = GaugeMetricFamily(
            p + "host_latency_p50_seconds", "Median total probe latency over the window.", labels=labels
        )
        failures = GaugeMetricFamily(
            p + "host_consecutive_failures", "Failed probes in a row.", labels=labels
        )
        last_ok = GaugeMetricFamily(
            p + "host_last_success_timestamp_seconds",
            "When a probe of the host last succeeded.",
            labels=labels,
        )
        key_ok = GaugeMetricFamily(
            p + "host_key_ok",
            "1 if the host accepts the key, 0 if it rejects it (absent: unknown).",
            labels=labels,
        )
        tps = GaugeMetricFamily(
            p + "host_tokens_per_second",
            "Output tokens per second of the last throughput probe, after its first token.",
            labels=labels,
        )
        itl = GaugeMetricFamily(
            p + "host_inter_token_p50_seconds",
            "Median gap between output tokens in the last throughput probe.",
            labels=labels,
        )
        load = GaugeMetricFamily(
            p + "host_load",
            "How far the host's recent time to first token is above its unloaded one (0: idle; 1: doubled).",
            labels=labels,
        )
        identity = GaugeMetricFamily(
            p + "host_identity",
            "Whether the host serves the model it is listed for: ok, mismatch or unknown (value 1).",
            labels=[*labels, "identity"],
        )
        weight = GaugeMetricFamily(
            p + "candidate_weight",
            "The host's share of new requests for the model (0 when it is not a candidate).",
            labels=labels,
        )
        for model, view in self._m.snapshot.models.items():
            if view.probed_as != model:
                continue
            weights = {c.url: c.weight for c in view.candidates}
            for h in view.hosts:
                values = [model, h.url]
                up.add_metric(values, 1.0 if h.state is HostState.UP else 0.0)
                state.add_metric(values, {s.value: h.state is s for s in HostState})
                reason.add_metric([*values, h.reason.value], 1.0)
                last.add_metric([*values, h.last_outcome.value], 1.0)
                samples.add_metric(values, float(h.samples))
                failures.add_metric(values, float(h.consecutive_failures))
                if h.availability is not None:
                    avail.add_metric(values, h.availability)
                if h.ttft_ms_p50 is not None:
                    ttft50.add_metric(values, h.ttft_ms_p50 / 1000)
                if h.ttft_ms_p95 is not None:
                    ttft95.add_metric(values, h.ttft_ms_p95 / 1000)
                if h.latency_ms_p50 is not None:
                    latency.add_metric(values, h.latency_ms_p50 / 1000)
                if h.last_ok_at is not None:
                    last_ok.add_metric(values, h.last_ok_at)
                if h.key_ok is not None:
                    key_ok.add_metric(values, 1.0 if h.key_ok else 0.0)
                if h.tokens_per_s is not None:
                    tps.add_metric(values, h.tokens_per_s)
                if h.inter_token_ms_p50 is not None:
                    itl.add_metric(values, h.inter_token_ms_p50 / 1000)
                load.add_metric(values, h.load)
                identity.add_metric([*values, h.identity.state], 1.0)
                weight.add_metric(values, weights.get(h.url, 0.0))
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
            tps,
            itl,
            load,
            identity,
            weight,
        )

    def _probes(self) -> Iterator[Metric]:
        probes = CounterMetricFamily(
            "libertai_monitor_probes",
            "Probes by model, host, kind and outcome.",
            labels=["model", "host", "kind", "outcome"],
        )
        for (model, host, kind, outcome), n in dict(self._m.counters.probes).items():
            probes.add_metric([model or "*", host, kind, outcome], float(n))
        yield probes


def _parsed(text: str, accept: str) -> dict[str, Metric]:
    """Families by name: the per-host families no longer come first, and order means nothing."""
    if negotiate(accept).content_type.startswith("application/openmetrics-text"):
        families = openmetrics_parser.text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    else:
        families = text_parser.text_string_to_metric_families(text)
    return {f.name: f for f in families}


def _rendered(monitor: Readout, accept: str) -> str:
    return b"".join(render(monitor, negotiate(accept), MonitorCollector(monitor))).decode()


@pytest.mark.parametrize("accept", [OPENMETRICS, OPENMETRICS_UTF8, TEXT], ids=["om", "om-utf8", "text"])
def test_rendered_families_are_the_ones_prometheus_client_rendered(accept: str) -> None:
    monitor = _awkward_monitor()
    before = negotiate(accept).encoder(_Reference(monitor)).decode()
    assert _parsed(_rendered(monitor, accept), accept) == _parsed(before, accept)


@pytest.mark.parametrize("accept", [OPENMETRICS, OPENMETRICS_UTF8, TEXT], ids=["om", "om-utf8", "text"])
def test_rendered_text_has_the_lines_prometheus_client_wrote(accept: str) -> None:
    monitor = _awkward_monitor()
    before = negotiate(accept).encoder(_Reference(monitor)).decode()
    assert sorted(_rendered(monitor, accept).splitlines()) == sorted(before.splitlines())


def test_label_values_are_escaped() -> None:
    text = _rendered(_awkward_monitor(), TEXT)
    assert 'libertai_monitor_host_up{host="http://127.0.0.1:1004/\\"quoted\\"\\\\path",' in text
    assert 'model="od\\"d\\\\model\\nname"} 0.0\n' in text


def test_alias_hosts_are_exported_once_under_their_base_id() -> None:
    text = _rendered(_awkward_monitor(), OPENMETRICS)
    per_host = [line for line in text.splitlines() if line.startswith("libertai_monitor_host_")]
    assert any(f'model="{BASE}"' in line for line in per_host)
    assert not any(f'model="{ALIAS}"' in line for line in per_host)


def test_hosts_without_a_figure_have_no_series_for_it() -> None:
    text = _rendered(_awkward_monitor(), OPENMETRICS)
    assert f'libertai_monitor_host_window_samples{{host="{BARE}",model="{BASE}"}} 0.0' in text
    assert f'libertai_monitor_host_ttft_p50_seconds{{host="{BARE}"' not in text
    assert f'libertai_monitor_host_key_ok{{host="{BARE}"' not in text


def test_openmetrics_body_ends_with_exactly_one_eof() -> None:
    lines = _rendered(_awkward_monitor(), OPENMETRICS).splitlines()
    assert lines[-1] == "# EOF" and lines.count("# EOF") == 1


def test_text_body_has_no_eof() -> None:
    assert "# EOF" not in _rendered(_awkward_monitor(), TEXT)


def test_counters_are_named_as_each_format_wants() -> None:
    om, text = _rendered(_awkward_monitor(), OPENMETRICS), _rendered(_awkward_monitor(), TEXT)
    assert "# TYPE libertai_monitor_probes counter\n" in om
    assert "# TYPE libertai_monitor_probes_total counter\n" in text
    for body in (om, text):
        assert 'libertai_monitor_probes_total{host="http://127.0.0.1:1001",kind="auth",model="*",' in body
        assert "_created" not in body


def _crowded_monitor(hosts: int) -> Readout:
    views = tuple(_view(BASE, f"http://10.0.{i // 250}.{i % 250}:8000", samples=i) for i in range(hosts))
    return _View(Snapshot(time.time(), {BASE: ModelView(BASE, BASE, None, (), 0, hosts, False, views)}))


def test_a_large_exposition_is_rendered_in_bounded_chunks() -> None:
    monitor = _crowded_monitor(3000)
    sizes = [len(c) for c in render(monitor, negotiate(OPENMETRICS), MonitorCollector(monitor))]
    assert sum(sizes) > 10 * CHUNK_CHARS
    assert max(sizes) < CHUNK_CHARS + 1024  # a chunk ends at the first line past the size


async def test_the_loop_turns_between_every_chunk_of_a_scrape(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = Turns()
    seen: list[int] = []

    def spied(*args: Any) -> Iterator[bytes]:
        for chunk in render(*args):
            seen.append(turns.count)
            yield chunk

    monkeypatch.setattr(api, "render", spied)
    monkeypatch.setattr(api, "METRICS_SLICE_S", 0.0)  # a turn after every chunk, however fast
    client = await aiohttp_client(make_app(_crowded_monitor(2000)))
    with turns:
        resp = await client.get("/metrics")
        body = await resp.read()
    assert resp.status == 200 and len(body) > 2 * CHUNK_CHARS
    assert len(seen) > 2 and all(b > a for a, b in itertools.pairwise(seen))


def test_hosts_whose_series_are_all_left_out_still_render_in_bounded_steps() -> None:
    views = tuple(_view(BASE, f"http://bad-\ud800-{i}", samples=1) for i in range(5 * PIECES_PER_CHUNK))
    monitor = _View(
        Snapshot(time.time(), {BASE: ModelView(BASE, BASE, None, (), 0, len(views), False, views)})
    )
    chunks = list(render(monitor, negotiate(OPENMETRICS), MonitorCollector(monitor)))
    assert len(chunks) >= 5  # not one step over every host
    assert "bad-" not in b"".join(chunks).decode()


async def test_scrape_is_gzip_compressed_when_the_client_accepts_gzip(aiohttp_client: Any) -> None:
    monitor = _awkward_monitor()
    client = await aiohttp_client(make_app(monitor))
    resp = await client.get(
        "/metrics", headers={"Accept": OPENMETRICS, "Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert gzip.decompress(await resp.read()).decode() == _rendered(monitor, OPENMETRICS)


async def test_scrape_is_plain_when_the_client_accepts_no_compression(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_awkward_monitor()))
    resp = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in resp.headers
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "libertai_monitor_host_up{" in await resp.text()


async def test_head_answers_the_content_type_without_a_body(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_awkward_monitor()))
    resp = await client.head("/metrics", headers={"Accept": OPENMETRICS})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/openmetrics-text")
    assert await resp.read() == b""


def test_every_model_keeps_all_its_hosts_when_they_fit() -> None:
    assert quotas([3, 5], 8) == [3, 5] and quotas([], 10) == []


def test_past_the_cap_each_model_gets_an_equal_share_and_small_ones_give_theirs_up() -> None:
    assert quotas([100, 100], 50) == [25, 25]
    assert quotas([100, 4, 100], 50) == [23, 4, 23]


def _two_models(big: int, small: int) -> Readout:
    def model(name: str, n: int) -> ModelView:
        views = tuple(_view(name, f"http://127.0.0.{n % 200}:{1025 + i}", samples=i) for i in range(n))
        return ModelView(name, name, views[0].url, (), n, n, False, views)

    snapshot = Snapshot(time.time(), {"big": model("big", big), "small": model("small", small)})
    probes = {("big", h.url, "health", "ok"): 1 for h in snapshot.models["big"].hosts}
    probes |= {("", h.url, "auth", "ok"): 1 for h in snapshot.models["big"].hosts}
    return _View(snapshot, probes)


def test_a_fleet_past_metrics_max_hosts_exports_each_models_best_ranked_hosts() -> None:
    monitor = _two_models(big=30, small=5)
    families = _parsed(
        b"".join(render(monitor, negotiate(TEXT), MonitorCollector(monitor), max_hosts=20)).decode(), TEXT
    )
    up = {(s.labels["model"], s.labels["host"]) for s in families["libertai_monitor_host_up"].samples}
    big = [h.url for h in monitor.snapshot.models["big"].hosts]
    assert {h for m, h in up if m == "big"} == set(big[:15])  # its 15 best, in ranked order
    assert len([m for m, _ in up if m == "small"]) == 5
    probed = {(s.labels["model"], s.labels["host"]) for s in families["libertai_monitor_probes"].samples}
    assert probed == {("big", h) for h in big[:15]} | {("*", h) for h in big[:15]}
    (left_out,) = families["libertai_monitor_metrics_hosts_left_out"].samples
    assert left_out.value == 15


async def test_the_application_caps_per_host_series_by_its_setting(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_two_models(big=30, small=5), metrics_max_hosts=10))
    families = _parsed(await (await client.get("/metrics")).text(), TEXT)
    assert len(families["libertai_monitor_host_up"].samples) == 10
    assert families["libertai_monitor_metrics_hosts_left_out"].samples[0].value == 25
