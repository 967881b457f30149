"""Addresses as a user writes and reads them: IPv6 listen addresses, the gateway URL the demo prints."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor.cli import demo_banner, main
from monitor.config_load import load_settings

ANSWER = {
    "model": "m",
    "host": "http://[::1]:9001",
    "fallbacks": [],
    "upstream_model": "m",
    "request_fields": {},
}


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(ANSWER).encode() if self.path == "/v1/best/m" else b"{}"
        self.send_response(200 if self.path == "/v1/best/m" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@pytest.fixture
def monitor_on_ipv6() -> Iterator[int]:
    try:
        server = _V6Server(("::1", 0), _Answers)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("[::1]:8787", "http://[::1]:8787"),
        ("[::]:8787", "http://[::1]:8787"),
        ("0.0.0.0:8787", "http://127.0.0.1:8787"),
        ("monitor.internal:80", "http://monitor.internal:80"),
    ],
)
def test_the_url_of_a_listen_address_keeps_ipv6_in_brackets(listen: str, url: str) -> None:
    assert load_settings(environ={}, overrides={"listen": listen}).listen_url == url


def test_best_reaches_a_monitor_listening_on_ipv6(
    monitor_on_ipv6: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["best", "m", "--listen", f"[::1]:{monitor_on_ipv6}", "--json"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert json.loads(said.out)["host"] == "http://[::1]:9001"


def test_the_demo_prints_the_gateway_url_that_gateway_url_accepts() -> None:
    banner = demo_banner("http://127.0.0.1:40001")
    shown = re.search(r"simulated gateway\s+(\S+)", banner)
    assert shown is not None
    assert load_settings(environ={}, overrides={"gateway_url": shown.group(1)}).gateway_url == shown.group(1)
