"""The systemd unit example: it parses, it keeps the key a credential, and README links it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "libertai-monitor.service"


def _sections(text: str) -> dict[str, dict[str, list[str]]]:
    """The unit as systemd reads it: sections of keys, each key with its values in order."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None and key.strip().isidentifier(), f"line {number}: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_unit_runs_the_service_unprivileged_with_the_key_as_a_credential() -> None:
    unit = _sections(UNIT.read_text())
    service = unit["Service"]
    assert service["ExecStart"][0].endswith("libertai-monitor run")
    assert service["DynamicUser"] == ["yes"]
    credential, _, source = service["LoadCredential"][0].partition(":")
    assert source.startswith("/")
    assert f"LIBERTAI_MONITOR_API_KEY_FILE=%d/{credential}" in service["Environment"]
    assert not any(e.startswith("LIBERTAI_API_KEY=") for e in service["Environment"])
    state = service["StateDirectory"][0]
    database = next(e for e in service["Environment"] if e.startswith("LIBERTAI_MONITOR_DATABASE_URL="))
    assert database.endswith(f":////var/lib/{state}/libertai-monitor.db")  # inside the state directory
    assert service["RestartPreventExitStatus"] == ["2"]  # a configuration error is not retried
    assert {"NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"} <= set(service)
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart's program exists: point it at this environment's command.
    command = Path(sys.executable).with_name("libertai-monitor")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/libertai-monitor/bin/libertai-monitor", str(command)))
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if unit.name in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_readme_links_the_unit_and_the_changelog() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](deploy/libertai-monitor.service)" in readme
    assert "](CHANGELOG.md)" in readme
    assert (ROOT / "CHANGELOG.md").is_file()
