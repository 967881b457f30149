"""Headless Chromium for the status page's tests: Debian's `chromium` and `chromium-driver`,
driven by Selenium 4. Absent browser: the tests skip with the reason, or fail when `CI` is set."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = Path(os.environ.get("STATUS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("STATUS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)
T = TypeVar("T")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} not found (Debian packages chromium and chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install '.[test]')"
    return None


def require_browser() -> None:
    reason = missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)


def artefacts_dir(tmp_path: Path) -> Path:
    """Screenshots go to $STATUS_TEST_ARTEFACTS when set (CI keeps them), else the test's tmp_path."""
    out = Path(os.environ.get("STATUS_TEST_ARTEFACTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextmanager
def chromium(profile: Path, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile directory), closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def set_width(driver: Any, width: int, height: int = 900) -> None:
    """Emulate a viewport of exactly `width` CSS pixels (a window cannot be made that narrow)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def full_screenshot(driver: Any, path: Path) -> Path:
    """The whole page, not only the viewport."""
    import base64

    data = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(data["data"]))
    return path


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Selenium blocks: call it off the event loop, which serves the page meanwhile."""
    return await asyncio.to_thread(fn, *args)


async def until(check: Callable[[], T | None], timeout: float = 30.0, every: float = 0.1) -> T:
    """Poll a blocking check (in a thread) until it returns something truthy; bounded, no fixed sleep."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await in_thread(check)
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"not within {timeout} s; last: {last!r}")
