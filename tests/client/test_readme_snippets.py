"""The Python a user copies: README's snippets of "What to send a host" and "Using it from your
application" compile, import only what the client installs (or the SDKs they name), and use no
undefined name; the demo's printed snippet works against the demo as pasted."""

from __future__ import annotations

import ast
import asyncio
import builtins
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from monitor.cli import DEMO_ALLOWED_HOSTS, DEMO_MODEL, demo_snippet
from monitor.server import Running, serving
from monitor.sim import SimNetwork, load_scenario
from tests.service.support import eventually, get_json, settings_for

README = Path(__file__).resolve().parents[2] / "README.md"
SECTIONS = ("## What to send a host", "## Using it from your application")
# What a snippet may import: the client package, what it installs, the SDKs, the standard library.
IMPORTABLE = {"libertai_failover", "httpx2", "openai", "anthropic", "os", "json", "urllib"}


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else None]


def _snippets() -> list[tuple[str, str]]:
    return [
        (title, code)
        for title in SECTIONS
        for code in re.findall(r"```python\n(.*?)```", _section(title), flags=re.DOTALL)
    ]


def _undefined(code: str) -> set[str]:
    """Names the snippet reads without defining them (assignment, import, builtins)."""
    tree = ast.parse(code)
    defined = set(dir(builtins))
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    return read - defined


def _imports(code: str) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_each_section_has_python_snippets() -> None:
    assert {title for title, _ in _snippets()} == set(SECTIONS)


@pytest.mark.parametrize(("title", "code"), _snippets(), ids=lambda v: v[:40])
def test_readme_snippets_define_every_name_and_import_what_is_installed(title: str, code: str) -> None:
    compile(code, title, "exec")
    assert _undefined(code) == set()
    assert _imports(code) <= IMPORTABLE
    for module in _imports(code):
        __import__(module)


def test_readme_installs_the_client_from_the_checkout_only() -> None:
    section = _section("## Using it from your application")
    assert "pip install ./clients/libertai-failover" in section
    assert "[client]" not in section


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[SimNetwork, Running, str]]:
    """The demo's network and the monitor against it, with the demo's allow-list and key."""
    async with SimNetwork(load_scenario("demo"), seed=1, port=0, host="127.0.0.1") as net:
        settings = settings_for(net, tmp_path, ALLOWED_HOSTS=DEMO_ALLOWED_HOSTS)
        async with serving(settings) as svc, aiohttp.ClientSession() as http:

            async def served() -> bool:
                return bool((await get_json(http, f"{svc.url}/v1/best/{DEMO_MODEL}")).get("host"))

            await eventually(served, timeout=30)
            yield net, svc, str(tmp_path / "sim-ca.pem")


@pytest.mark.e2e
async def test_the_demos_snippet_reaches_a_simulated_host_as_pasted(
    demo: tuple[SimNetwork, Running, str],
) -> None:
    net, svc, ca = demo
    code = demo_snippet(svc.url, net.gateway_url, ca)
    printed: list[tuple[object, ...]] = []  # the snippet's own print (the service logs to stdout)

    def run() -> None:
        exec(compile(code, "demo snippet", "exec"), {"print": lambda *a: printed.append(a)})

    await asyncio.to_thread(run)
    ((host, text),) = printed
    assert isinstance(host, str) and host != net.gateway_url
    assert host.startswith(("http://127.0.0.1:", "https://127.0.0.1:"))
    assert text
