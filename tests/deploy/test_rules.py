"""The shipped Prometheus files, checked by promtool without a server: the example config, the
alert rules, and the rules' unit tests (grafana/prometheus/alerts_test.yml, with input series)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.prom import (
    RULES_TEST,
    SHIPPED_CONFIG,
    SHIPPED_RULES,
    SHIPPED_SLO_RULES,
    SLO_RULES_TEST,
    alert_names,
    local_config,
    shorten_for,
    tool,
)


def _promtool(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{output}"
    return output


def _rule_blocks(text: str) -> dict[str, str]:
    """Each alert's lines, by name (the file keeps one rule per `- alert:` block)."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"(?m)^\s*- alert:\s*(\S+)\s*$", text)]
    ends = [s for s, _ in starts[1:]] + [len(text)]
    return {name: text[start:end] for (start, name), end in zip(starts, ends, strict=True)}


@pytest.mark.subprocess  # promtool
def test_example_config_is_valid_with_its_rules_beside_it(tmp_path: Path) -> None:
    shutil.copy(SHIPPED_CONFIG, tmp_path / "prometheus.yml")
    shutil.copy(SHIPPED_RULES, tmp_path / "alerts.yml")
    shutil.copy(SHIPPED_SLO_RULES, tmp_path / "slo.yml")
    out = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS: 2 rule files found" in out
    text = SHIPPED_CONFIG.read_text()
    assert re.search(r"(?m)^\s*- job_name: libertai-monitor\s*$", text)
    assert re.search(r"(?m)^\s*scrape_interval: 15s", text)
    assert re.search(r"(?m)^rule_files:\s*\n\s*- alerts\.yml.*\n\s*- slo\.yml", text)


@pytest.mark.subprocess  # promtool
def test_alert_rules_are_valid() -> None:
    out = _promtool("check", "rules", str(SHIPPED_RULES))
    assert f"SUCCESS: {len(alert_names(SHIPPED_RULES.read_text()))} rules found" in out


def test_every_alert_has_a_severity_a_summary_and_a_runbook() -> None:
    blocks = _rule_blocks(SHIPPED_RULES.read_text()) | _rule_blocks(SHIPPED_SLO_RULES.read_text())
    assert set(blocks) >= {
        "LibertaiModelNoHealthyHost",
        "LibertaiHostDown",
        "LibertaiHostKeyRejected",
        "LibertaiGatewayKeyRejected",
        "LibertaiDiscoveryFailing",
        "LibertaiDiscoveryListStale",
        "LibertaiHostSlowFirstToken",
        "LibertaiMonitorDown",
        "LibertaiMonitorAbsent",
        "LibertaiMonitorDatabaseWriteErrors",
        "LibertaiMonitorDatabaseUnhealthy",
        "LibertaiSloFastBurn",
        "LibertaiSloBurn",
        "LibertaiSloSlowBurn",
    }
    for name, block in blocks.items():
        assert re.search(r"(?m)^\s+severity: (critical|warning)\s*$", block), name
        assert re.search(r"(?m)^\s+summary: \S", block), name
        assert re.search(r"(?m)^\s+description: >-\n(\s+\S.*\n){3,}", block), f"{name}: a runbook"
        assert re.search(r"(?m)^\s+for: \d+[smh]\s*$", block), name


def test_the_shipped_for_durations() -> None:
    blocks = _rule_blocks(SHIPPED_RULES.read_text())
    expected = {
        "LibertaiModelNoHealthyHost": "2m",
        "LibertaiHostDown": "15m",
        "LibertaiHostKeyRejected": "5m",
        "LibertaiGatewayKeyRejected": "1m",
        "LibertaiDiscoveryFailing": "10m",
        "LibertaiHostSlowFirstToken": "15m",
        "LibertaiMonitorDown": "2m",
        "LibertaiMonitorDatabaseUnhealthy": "5m",
    }
    for name, duration in expected.items():
        assert re.search(rf"(?m)^\s+for: {duration}\s*$", blocks[name]), name


@pytest.mark.subprocess  # promtool
def test_alert_rules_unit_tests_pass() -> None:
    out = _promtool("test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert "SUCCESS" in out


@pytest.mark.subprocess  # promtool
def test_the_fast_copies_used_by_the_live_test_are_valid(tmp_path: Path) -> None:
    rules = shorten_for(SHIPPED_RULES.read_text(), "2s")
    assert not re.search(r"(?m)^\s+for: (?!2s)", rules)
    (tmp_path / "alerts.yml").write_text(rules)
    shutil.copy(SHIPPED_SLO_RULES, tmp_path / "slo.yml")
    (tmp_path / "prometheus.yml").write_text(local_config(SHIPPED_CONFIG.read_text(), "127.0.0.1:9"))
    _promtool("check", "rules", "alerts.yml", cwd=tmp_path)
    out = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS" in out


@pytest.mark.subprocess  # promtool
def test_slo_rules_are_valid() -> None:
    text = SHIPPED_SLO_RULES.read_text()
    rules = len(alert_names(text)) + len(re.findall(r"(?m)^\s*- record:", text))
    out = _promtool("check", "rules", str(SHIPPED_SLO_RULES))
    assert f"SUCCESS: {rules} rules found" in out


def test_slo_alerts_use_the_workbook_windows_and_burn_rates() -> None:
    blocks = _rule_blocks(SHIPPED_SLO_RULES.read_text())
    expected = {
        "LibertaiSloFastBurn": ("1h", "5m", "14.4", "critical"),
        "LibertaiSloBurn": ("6h", "30m", "6", "critical"),
        "LibertaiSloSlowBurn": ("3d", "6h", "1", "warning"),
    }
    for name, (long, short, factor, severity) in expected.items():
        block = blocks[name]
        assert f"libertai_monitor:slo_error_ratio:rate{long}\n" in block, name
        assert f"libertai_monitor:slo_error_ratio:rate{short}\n" in block, name
        assert block.count(f"({factor} * libertai_monitor:slo_error_budget:ratio)") == 2, name
        assert re.search(rf"(?m)^\s+severity: {severity}\s*$", block), name
    # The target is the monitor's setting, exported as a gauge, never a number in the rules.
    assert "libertai_monitor_slo_objective" in SHIPPED_SLO_RULES.read_text()


@pytest.mark.subprocess  # promtool
def test_slo_rules_page_on_a_fast_burn_and_ticket_a_slow_one() -> None:
    """slo_test.yml: an outage after good days pages without a ticket; a steady small burn opens a
    ticket without a page; slow completions page on their own objective."""
    out = _promtool("test", "rules", SLO_RULES_TEST.name, cwd=SLO_RULES_TEST.parent)
    assert "SUCCESS" in out
