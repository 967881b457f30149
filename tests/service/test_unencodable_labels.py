"""Defence in depth behind discovery's id check: a label value that cannot be
encoded never turns /metrics into an error, and ids restored from an old database are checked as
a gateway listing is."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from monitor.config import Settings
from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.keys import HostKey
from monitor.core.results import Evidence, Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.parts.best_hosts import BestHosts, ranking_policy
from monitor.parts.fleet import Fleet
from monitor.parts.recorder import health_policy
from monitor.parts.restore import restore
from monitor.parts.targets import Targets
from monitor.service import Monitor
from monitor.web.api import make_app

BAD = "bad-\ud800-id"  # a lone surrogate: a valid Python str, not encodable as UTF-8
GOOD = "hermes"
HOST = "http://127.0.0.1:1001"
BAD_HOST = "http://127.0.0.1:1002/\udcff"


def _settings() -> Settings:
    return load_settings(
        environ={
            "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*",
            "LIBERTAI_API_KEY": "sk-test-0123456789",
        }
    )


def _poisoned() -> Monitor:
    """A monitor whose state holds ids that slipped past every check (the parts are fed directly)."""
    m = Monitor(_settings(), clock=FakeClock())
    finish(m.fleet.apply_listing({GOOD: [HOST], BAD: [HOST, BAD_HOST]}, m.clock.time()))
    for model, host in ((GOOD, HOST), (BAD, HOST), (BAD, BAD_HOST)):
        m.recorder.record(
            ProbeResult(model, host, ProbeKind.COMPLETION, Outcome.OK, m.clock.time() - 1, 200, 1.0, 80.0)
        )
    finish(m.publisher.publish(force=True))
    return m


async def _scrape(aiohttp_client: Any, m: Monitor, accept: str = "") -> tuple[int, str]:
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    resp = await client.get("/metrics", headers={"Accept": accept} if accept else {})
    return resp.status, (await resp.read()).decode()


async def test_metrics_answer_200_with_an_unencodable_model_id_in_the_state(aiohttp_client: Any) -> None:
    status, text = await _scrape(aiohttp_client, _poisoned())
    assert status == 200
    assert f'libertai_monitor_host_up{{host="{HOST}",model="{GOOD}"}} 1.0' in text
    assert "bad-" not in text  # every series of the bad id is left out, whichever family


async def test_openmetrics_scrape_also_answers_and_ends_with_eof(aiohttp_client: Any) -> None:
    status, text = await _scrape(aiohttp_client, _poisoned(), "application/openmetrics-text;version=1.0.0")
    assert status == 200 and text.endswith("# EOF\n")


async def test_left_out_label_values_are_counted(aiohttp_client: Any) -> None:
    _, text = await _scrape(aiohttp_client, _poisoned())
    assert "libertai_monitor_metrics_unencodable_labels 2.0" in text  # the bad id and the bad host URL


async def test_left_out_label_values_are_logged_once_without_their_raw_characters(
    aiohttp_client: Any,
) -> None:
    m = _poisoned()
    finish(m.fleet.apply_listing({GOOD: [HOST], BAD + "x": [HOST]}, m.clock.time()))  # a new set: a new line
    finish(m.publisher.publish(force=True))
    with capture_logs() as logs:
        await _scrape(aiohttp_client, m)
        await _scrape(aiohttp_client, m)
    lines = [e for e in logs if e["event"].startswith("metrics: series left out")]
    assert len(lines) == 1
    assert all(label.isascii() for label in lines[0]["labels"])


async def test_a_scrape_without_bad_values_has_no_count_family(aiohttp_client: Any) -> None:
    m = Monitor(_settings(), clock=FakeClock())
    finish(m.fleet.apply_listing({GOOD: [HOST]}, m.clock.time()))
    finish(m.publisher.publish(force=True))
    status, text = await _scrape(aiohttp_client, m)
    assert status == 200 and "unencodable" not in text


class _OldStore:
    """A database written before discovery checked ids: it holds an unprintable one."""

    async def load_members(self) -> dict[str, set[str]]:
        return {GOOD: {HOST}, BAD: {HOST}, "ctl\x07id": {HOST}}

    async def load_recent_evidence(
        self, since: float, per_host_limit: int = 200
    ) -> list[tuple[HostKey, Evidence]]:
        return []

    async def load_best(self) -> dict[str, str | None]:
        return {GOOD: HOST, BAD: HOST}


async def test_restored_members_with_unprintable_ids_are_left_out_and_logged() -> None:
    settings = _settings()
    fleet = Fleet(settings, Targets(settings, FakeClock()))
    best = BestHosts(ranking_policy(settings))
    with capture_logs() as logs:
        await restore(_OldStore(), fleet, best, health_policy(settings), 1_700_000_000.0)
    assert fleet.models() == {GOOD}
    assert set(best.best) == {GOOD}
    (entry,) = [e for e in logs if e["event"] == "restored members left out"]
    assert entry["skipped"] == 2 and all(r.isascii() for r in entry["reasons"])
