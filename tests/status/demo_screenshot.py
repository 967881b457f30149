"""Screenshot of the demo's status page for README: `python -m tests.status.demo_screenshot [OUT]`.

Starts `libertai-monitor demo` in a temporary directory, lets it probe for `--seconds` (so that the
page's history has been read with data in it), and saves the whole overview, 1280 px wide, to OUT
(default docs/status.png). Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.status.browser import chromium, full_screenshot, missing

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", default=str(ROOT / "docs" / "status.png"))
    p.add_argument("--seconds", type=float, default=75.0, help="how long the demo probes first")
    a = p.parse_args()
    reason = missing()
    if reason:
        print(f"skip: {reason}", file=sys.stderr)
        return 1
    port = _free_port()
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "LIBERTAI_MONITOR_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
        demo = subprocess.Popen(
            [sys.executable, "-m", "monitor", "demo", "--listen", f"127.0.0.1:{port}"],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait(url + "/healthz", 30)
            time.sleep(a.seconds)  # a screenshot, not a test: let the demo gather some history
            with chromium(Path(work) / "profile", width=1280, height=900) as driver:
                driver.get(url + "/")
                out = full_screenshot(driver, Path(a.out))
            print(f"written to {out}")
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
