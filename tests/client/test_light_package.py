"""The light client package alone: installed into a fresh virtual environment with the openai SDK,
it brings none of the monitor's daemon libraries; and transports in separate processes spread
their conversations over the monitor's candidates."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import venv
from collections import Counter
from pathlib import Path

import pytest

from tests.client.support import StubMonitor, answer
from tests.client.test_spread_transport import Host

ROOT = Path(__file__).resolve().parents[2]
DAEMON = ("aiohttp", "sqlalchemy", "alembic", "apscheduler", "jinja2", "trustme")


@pytest.mark.slow
def test_the_light_package_installs_alone_with_the_openai_sdk(tmp_path: Path) -> None:
    venv.create(tmp_path / "env", with_pip=True)
    python = str(tmp_path / "env" / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", str(ROOT / "clients" / "libertai-failover"), "openai"]
    subprocess.run(pip, check=True, cwd=tmp_path, timeout=600)
    listed = subprocess.run(
        [python, "-m", "pip", "list"], check=True, capture_output=True, text=True, timeout=120
    ).stdout.lower()
    assert "libertai-failover" in listed and "openai" in listed
    assert not [name for name in DAEMON if name in listed]
    code = "from libertai_failover import FailoverTransport; print(FailoverTransport.__name__)"
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "FailoverTransport"


_CHILD = textwrap.dedent(
    """
    import sys, httpx2
    from libertai_failover import FailoverTransport
    t = FailoverTransport(sys.argv[1], allowed_hosts="http://127.0.0.1:*", spread=True)
    with httpx2.Client(transport=t) as client:
        for n in range(20):
            body = {"model": "m", "messages": [{"role": "user", "content": f"{sys.argv[2]} {n}"}]}
            r = client.post("http://gateway.invalid/v1/chat/completions", json=body)
            print(r.headers["X-LibertAI-Host"])
    """
)


@pytest.mark.slow
async def test_transports_in_two_processes_spread_their_conversations() -> None:
    a, b = await Host().start(), await Host().start()
    data = answer("m", a.url, [b.url])
    data["candidates"] = [{"url": h.url, "weight": 0.5, "warm": True} for h in (a, b)]
    monitor = await StubMonitor({"m": data}).start()
    path = f"{ROOT}:{ROOT / 'clients' / 'libertai-failover'}"

    async def child(name: str) -> list[str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            monitor.url,
            name,
            stdout=asyncio.subprocess.PIPE,
            env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        return out.decode().split()

    try:
        results = await asyncio.gather(child("one"), child("two"))
    finally:
        await monitor.stop()
        await a.stop()
        await b.stop()
    for hosts in results:
        counts = Counter(hosts)
        assert len(hosts) == 20 and counts[a.url] >= 4 and counts[b.url] >= 4
