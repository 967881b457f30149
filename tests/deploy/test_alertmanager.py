"""The shipped Alertmanager routing (grafana/alertmanager) and its compose service, checked without a
server: the compose wiring read with PyYAML, render.sh run as the service runs it, and the rendered
routing file checked and its routes tried by Debian's amtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.alertmanager import AM_DIR, SAMPLE_ENV, SHIPPED_ROUTING, compose_service
from tests.deploy.prom import SHIPPED_CONFIG, tool
from tests.deploy.test_docker import compose, env_of, mounts, selected

RENDER = AM_DIR / "render.sh"
PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def _render(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """render.sh on the shipped routing file, writing tmp_path/alertmanager.yml, then `true`."""
    return subprocess.run(
        ["sh", str(RENDER), str(SHIPPED_ROUTING), str(tmp_path / "alertmanager.yml"), "true"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _amtool(*args: str) -> str:
    done = subprocess.run(
        [tool("amtool", "prometheus-alertmanager"), *args], capture_output=True, text=True, timeout=30
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"amtool {' '.join(args)}:\n{output}"
    return done.stdout


def test_compose_alerts_profile_starts_the_alertmanager_prometheus_sends_to() -> None:
    services = compose()["services"]
    service = compose_service()
    assert service["profiles"] == ["alerts"], "opt-in: it needs the operator's bot and webhook"
    for profile in ("live", "demo"):
        assert "alertmanager" in selected(services, {profile, "alerts"})
        assert "alertmanager" not in selected(services, {profile})
    assert any(p.endswith(":9093") for p in service["ports"])
    assert ("./grafana/alertmanager", "/etc/alertmanager", "ro") in set(mounts(service))

    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    managers = config["alerting"]["alertmanagers"]
    targets = [t for am in managers for s in am["static_configs"] for t in s["targets"]]
    assert targets == ["alertmanager:9093"], "Prometheus sends its alerts to the compose service"


def test_compose_service_renders_the_shipped_routing_file_before_starting_alertmanager() -> None:
    service = compose_service()
    entry, command = service["entrypoint"], service["command"]
    assert entry[:2] == ["/bin/sh", "/etc/alertmanager/render.sh"]
    template, rendered = entry[2:4]
    assert (AM_DIR / Path(template).relative_to("/etc/alertmanager")) == SHIPPED_ROUTING
    assert command[0] == "/bin/alertmanager" and f"--config.file={rendered}" in command
    assert rendered.startswith("/tmp/") and "/tmp" in service["tmpfs"], "the container is read-only"
    # Every placeholder comes from the operator's shell or .env, none is written here.
    env = env_of(service)
    names = set(PLACEHOLDER.findall(SHIPPED_ROUTING.read_text()))
    assert names == set(SAMPLE_ENV)
    assert {name: env[name] for name in names} == {name: f"${{{name}:-}}" for name in names}


@pytest.mark.subprocess  # render.sh and amtool
def test_rendered_routing_file_passes_amtool(tmp_path: Path) -> None:
    done = _render(tmp_path, SAMPLE_ENV)
    assert done.returncode == 0, done.stderr
    out = _amtool("check-config", str(tmp_path / "alertmanager.yml"))
    assert "SUCCESS" in out and "2 receivers" in out, out


@pytest.mark.subprocess  # render.sh and amtool
@pytest.mark.parametrize("severity", ["critical", "warning"])
def test_alerts_are_routed_to_telegram_and_the_webhook(tmp_path: Path, severity: str) -> None:
    assert _render(tmp_path, SAMPLE_ENV).returncode == 0
    routed = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={tmp_path / 'alertmanager.yml'}",
        "alertname=LibertaiHostDown",
        f"severity={severity}",
    )
    assert routed.split() == ["telegram,webhook"]


@pytest.mark.subprocess  # render.sh
def test_render_writes_values_literally_and_reads_secret_files(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("987654321:AA&b|c-d")
    url = "https://hooks.example.org/x?a=1&b=${NOT_A_PLACEHOLDER}"
    env = {**SAMPLE_ENV, "ALERT_WEBHOOK_URL": url, "TELEGRAM_BOT_TOKEN_FILE": str(token_file)}
    del env["TELEGRAM_BOT_TOKEN"]
    done = _render(tmp_path, env)
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in rendered["receivers"]}
    telegram = receivers["telegram"]["telegram_configs"][0]
    assert telegram["bot_token"] == "987654321:AA&b|c-d"
    assert telegram["chat_id"] == int(SAMPLE_ENV["TELEGRAM_CHAT_ID"])
    assert receivers["webhook"]["webhook_configs"][0]["url"] == url


@pytest.mark.subprocess  # render.sh
def test_render_refuses_to_start_without_a_value(tmp_path: Path) -> None:
    env = {k: v for k, v in SAMPLE_ENV.items() if k != "TELEGRAM_CHAT_ID"}
    done = _render(tmp_path, env)
    assert done.returncode != 0
    assert "TELEGRAM_CHAT_ID is not set" in done.stderr
    assert not (tmp_path / "alertmanager.yml").exists()
