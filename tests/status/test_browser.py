"""The status page in a real browser (headless Chromium, Selenium 4) against the simulated network
and the whole service. Skipped with the reason when the browser is absent; failing in CI.

Waits are bounded polls on a condition (never fixed sleeps); the page's refresh interval is set
short through `?refresh=` and every refresh is counted in `body[data-refreshes]`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.urls import normalise_url
from monitor.server import Running, serving
from monitor.sim import SimNetwork
from monitor.store import Store
from monitor.web.status.history import hour_start
from tests.service.support import get_json, network, settings_for
from tests.status.browser import (
    artefacts_dir,
    chromium,
    console_errors,
    full_screenshot,
    in_thread,
    require_browser,
    set_width,
    until,
)
from tests.status.support import NOW, A, FakeSource, app_for, host, model, snapshot

pytestmark = pytest.mark.slow

REFRESH = 0.5  # seconds between the page's refreshes in these tests


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    require_browser()
    with chromium(tmp_path / "profile") as driver:
        yield driver


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@asynccontextmanager
async def demo(tmp_path: Path) -> AsyncIterator[tuple[SimNetwork, Running]]:
    async with network("demo") as net, serving(settings_for(net, tmp_path)) as svc:
        yield net, svc


def url_of(net: SimNetwork, name: str) -> str:
    return normalise_url(next(h.url for h in net.hosts if h.name == name))


async def best_known(http: aiohttp.ClientSession, svc: Running) -> dict[str, str | None]:
    """/v1/best once every listed model has a best host (bounded wait)."""

    async def ready() -> dict[str, str | None] | None:
        best = await get_json(http, svc.url + "/v1/best")
        models = {m: v["host"] for m, v in best["models"].items()}
        return models if len(models) >= 5 and sum(1 for h in models.values() if h) >= 5 else None

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = await ready()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("the demo's models did not get best hosts within 30 s")


def page_best(driver: Any) -> dict[str, str | None]:
    """Each model card's name and best host, as the browser shows them (read in one script: the
    page replaces its content on every refresh, so element handles go stale)."""
    return dict(
        driver.execute_script(
            """
            const out = {};
            for (const card of document.querySelectorAll("section.model")) {
              const best = card.querySelector("dd.best code");
              out[card.dataset.model] = best ? best.textContent : null;
            }
            return out;
            """
        )
    )


def refreshes(driver: Any) -> int:
    return int(driver.execute_script("return document.body.dataset.refreshes"))


async def test_page_shows_every_model_and_its_best_host(tmp_path: Path, browser: Any, http: Any) -> None:
    async with demo(tmp_path) as (_net, svc):
        await best_known(http, svc)
        await in_thread(browser.get, f"{svc.url}/?refresh={REFRESH}")

        async def agree() -> bool:
            shown = await in_thread(page_best, browser)
            best = await get_json(http, svc.url + "/v1/best")
            return shown == {m: v["host"] for m, v in best["models"].items()}

        deadline = time.monotonic() + 20
        while not await agree():
            assert time.monotonic() < deadline, (await in_thread(page_best, browser), "differs from /v1/best")
            await asyncio.sleep(0.2)
        full_screenshot(browser, artefacts_dir(tmp_path) / "demo-1280.png")


async def test_a_host_taken_down_is_shown_down_with_its_reason_within_two_refreshes(
    tmp_path: Path, browser: Any, http: Any
) -> None:
    async with demo(tmp_path) as (net, svc):
        await best_known(http, svc)
        url = url_of(net, "qwen-a")
        await in_thread(browser.get, f"{svc.url}/?refresh={REFRESH}")
        await in_thread(browser.execute_script, "window.__sameDocument = true")
        row = f'section.model[data-model="qwen3-coder-next"] tr.host[data-url="{url}"]'
        state = f"return document.querySelector('{row}').className"
        assert "up" in await in_thread(browser.execute_script, state)

        net.set_host("qwen-a", down=True)

        async def monitor_says_down() -> bool:
            hosts = (await get_json(http, svc.url + "/v1/hosts"))["hosts"]
            return any(
                h["url"] == url and h["model"] == "qwen3-coder-next" and h["state"] == "down" for h in hosts
            )

        deadline = time.monotonic() + 30
        while not await monitor_says_down():
            assert time.monotonic() < deadline, "the monitor did not see the host go down"
            await asyncio.sleep(0.05)
        seen_at = await in_thread(refreshes, browser)

        def shown_down() -> str | None:
            cell = f"const c = document.querySelector('{row} td.st'); return c ? c.innerText : '';"
            text = str(browser.execute_script(cell))
            return text if "down" in text and "server error (5xx)" in text else None

        text = await until(shown_down, timeout=20, every=0.05)
        assert await in_thread(refreshes, browser) <= seen_at + 2, "shown later than two refreshes"
        assert "✕" in text  # the state has a symbol, not only a colour
        assert await in_thread(browser.execute_script, "return window.__sameDocument === true"), (
            "page reloaded"
        )
        full_screenshot(browser, artefacts_dir(tmp_path) / "host-down-1280.png")


async def _seed_history(tmp_path: Path, model_id: str, host_url: str, at: float) -> None:
    """120 completions of one host in the hour starting `at`, 3 of them failed, TTFT 143.6 ms."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    await store.upgrade()
    store.start_writer()
    for i in range(120):
        failed = i % 40 == 0
        outcome = Outcome.SERVER_ERROR if failed else Outcome.OK
        store.submit(
            ProbeResult(
                model_id,
                host_url,
                ProbeKind.COMPLETION,
                outcome,
                at + i * 25,
                200,
                1.0,
                None if failed else 143.6,
                150.0,
            )
        )
    await store.flush()
    await store.close()


async def test_the_tooltip_of_an_uptime_bar_shows_its_figures(
    tmp_path: Path, browser: Any, http: Any
) -> None:
    hour = hour_start(time.time()) - 2 * 3600
    async with network("demo") as net:
        url = url_of(net, "hermes-fast")
        await _seed_history(tmp_path, "hermes-3-8b-tee", url, hour)
        async with serving(settings_for(net, tmp_path)) as svc:
            page = f"{svc.url}/status/hermes-3-8b-tee?refresh=3600"  # no refresh under the pointer
            figures = " · 97.5% · 120 probes · TTFT p50 144 ms"
            find = (
                "const rows = document.querySelectorAll('tr.hbars[data-url=\"' + arguments[0] + '\"]');"
                "return [...rows].flatMap(r => [...r.querySelectorAll('svg.bars rect')])"
                ".find(r => r.textContent.endsWith(arguments[1])) || null"
            )

            def bar() -> Any:
                browser.get(page)  # again until the history's first read is in
                return browser.execute_script(find, url, figures)

            rect = await until(bar, timeout=60, every=0.5)
            expected = rect.get_attribute("textContent")
            assert expected.startswith(time.strftime("%b %-d %H:00", time.gmtime(hour)))
            from selenium.webdriver.common.action_chains import ActionChains

            def hover_tip() -> str | None:
                ActionChains(browser).move_to_element(rect).perform()
                tip = browser.find_element("id", "tip")
                return str(tip.text) if tip.is_displayed() else None

            assert await until(hover_tip, timeout=10) == expected
            full_screenshot(browser, artefacts_dir(tmp_path) / "tooltip-1280.png")


async def test_no_console_errors_across_refreshes(tmp_path: Path, browser: Any, http: Any) -> None:
    async with demo(tmp_path) as (_net, svc):
        await best_known(http, svc)
        for path in ("/", "/status/hermes-3-8b-tee"):
            await in_thread(browser.get, f"{svc.url}{path}?refresh={REFRESH}")
            await until(lambda: refreshes(browser) >= 2, timeout=20)
            assert await in_thread(console_errors, browser) == [], path


def layout(driver: Any, model: str) -> dict[str, Any]:
    """The page's width and the columns of `model`'s history (a chat model: bars and sparkline)."""
    return dict(
        driver.execute_script(
            """
            const h = document.querySelector(`section.model[data-model="${arguments[0]}"] .history`);
            const lefts = [...h.children].map(c => Math.round(c.getBoundingClientRect().left));
            return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
                    columns: new Set(lefts).size};
            """,
            model,
        )
    )


@pytest.mark.parametrize(("width", "columns"), [(360, 1), (1280, 3)])
async def test_page_fits_the_width_with_one_column_on_a_phone(
    tmp_path: Path, browser: Any, http: Any, width: int, columns: int
) -> None:
    async with demo(tmp_path) as (_net, svc):
        await best_known(http, svc)
        await in_thread(set_width, browser, width)
        for path in ("/", "/status/gemma-3-27b"):
            await in_thread(browser.get, f"{svc.url}{path}?refresh={REFRESH}")
            shape = await in_thread(layout, browser, "hermes-3-8b-tee" if path == "/" else "gemma-3-27b")
            assert shape["inner"] == width
            assert shape["scroll"] <= width, f"{path} scrolls sideways at {width} px: {shape}"
            assert shape["columns"] == columns, shape
            name = "overview" if path == "/" else "model"
            full_screenshot(browser, artefacts_dir(tmp_path) / f"{name}-{width}.png")


async def test_script_in_a_model_id_or_host_url_is_shown_as_text_never_run(
    tmp_path: Path, browser: Any
) -> None:
    evil_model = "m<script>window.__xss=1</script><img src=x onerror=window.__xss=2>"
    evil_url = "https://x.libertai.io/<script>window.__xss=3</script>"
    v = model(evil_model, [host(evil_model, evil_url, HostState.DOWN, Outcome.TIMEOUT), host(evil_model, A)])
    source = FakeSource(snapshot(v, at=NOW))
    server = TestServer(app_for(source)[0])
    await server.start_server()
    try:
        await in_thread(browser.get, str(server.make_url("/?refresh=0.5")))
        await until(lambda: refreshes(browser) >= 1, timeout=20)  # the refreshed content too
        assert await in_thread(browser.execute_script, "return window.__xss === undefined")
        text = (await in_thread(browser.find_element, "css selector", "main")).text
        assert evil_model in text
        assert evil_url in text
        errors = [e for e in await in_thread(console_errors, browser) if "/x" not in e]
        assert errors == []
    finally:
        await server.close()


async def test_refresh_zero_starts_no_timer(browser: Any) -> None:
    server = TestServer(app_for(FakeSource(snapshot(model("m", [host("m", A)]), at=NOW)))[0])
    await server.start_server()
    try:
        await in_thread(browser.get, str(server.make_url("/?refresh=0")))
        assert await in_thread(browser.execute_script, "return window.statusPage.every") == 0
        live = await in_thread(browser.find_element, "css selector", "#live")
        assert live.text == "not refreshing"
    finally:
        await server.close()
