"""Settings: defaults < TOML file < environment < flags, and one readable line for a bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import FIELDS, ConfigError, describe_settings, load_settings


def test_defaults_need_nothing() -> None:
    s = load_settings(environ={})
    assert s.gateway_url == "https://api.libertai.io"
    assert s.probe_interval == 30 and s.completion_interval == 300
    assert s.allowed_hosts.admits("https://a.libertai.io")
    assert s.api_key is None


def test_toml_file_overrides_defaults(tmp_path: Path) -> None:
    f = tmp_path / "m.toml"
    f.write_text('probe_interval = 12.5\nallowed_hosts = ["http://127.0.0.1:*"]\n')
    s = load_settings(config_file=str(f), environ={})
    assert s.probe_interval == 12.5
    assert s.allowed_hosts.admits("http://127.0.0.1:9000")


def test_environment_overrides_file_and_flags_override_environment(tmp_path: Path) -> None:
    f = tmp_path / "m.toml"
    f.write_text('gateway_url = "http://file.example"\nprobe_interval = 5\n')
    env = {"LIBERTAI_MONITOR_PROBE_INTERVAL": "7", "LIBERTAI_MONITOR_GATEWAY_URL": "http://env.example"}
    s = load_settings(config_file=str(f), environ=env, overrides={"gateway_url": "http://flag.example"})
    assert s.probe_interval == 7
    assert s.gateway_url == "http://flag.example"


def test_gateway_url_is_normalised() -> None:
    s = load_settings(environ={"LIBERTAI_MONITOR_GATEWAY_URL": "HTTPS://API.LibertAI.io/"})
    assert s.gateway_url == "https://api.libertai.io"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROBE_INTERVAL", "soon"),
        ("PROBE_INTERVAL", "-1"),
        ("PROBE_TIMEOUT", "0"),
        ("MAX_CONCURRENCY", "2.5"),
        ("LISTEN", "8080"),
        ("ALLOWED_HOSTS", "ftp://*.libertai.io"),
        ("COMPLETION_PROBES", "perhaps"),
        ("LOG_FORMAT", "xml"),
        ("CA_BUNDLE", "/no/such/file.pem"),
    ],
)
def test_a_bad_value_names_its_source(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={f"LIBERTAI_MONITOR_{name}": value})
    message = str(err.value)
    assert f"LIBERTAI_MONITOR_{name}" in message
    assert "\n" not in message


def test_unknown_setting_in_file_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "m.toml"
    f.write_text("probe_intervall = 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'probe_intervall'"):
        load_settings(config_file=str(f), environ={})


def test_key_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    f = tmp_path / "m.toml"
    f.write_text('api_key = "sk-very-secret"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(config_file=str(f), environ={})
    assert "sk-very-secret" not in str(err.value)


def test_key_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert load_settings(environ={"LIBERTAI_API_KEY": "k1"}).api_key.reveal() == "k1"  # type: ignore[union-attr]
    key_file = tmp_path / "key"
    key_file.write_text("k2\n")
    env = {"LIBERTAI_API_KEY": "k1", "LIBERTAI_MONITOR_API_KEY_FILE": str(key_file)}
    assert load_settings(environ=env).api_key.reveal() == "k2"  # type: ignore[union-attr]


def test_key_is_masked_in_the_settings_repr() -> None:
    s = load_settings(environ={"LIBERTAI_API_KEY": "sk-hidden-123"})
    assert "sk-hidden-123" not in repr(s)


def test_down_probe_interval_never_exceeds_probe_interval() -> None:
    s = load_settings(environ={"LIBERTAI_MONITOR_PROBE_INTERVAL": "5"})
    assert s.down_probe_interval == 5


def test_every_setting_is_described_for_the_readme() -> None:
    rows = describe_settings()
    assert len(rows) == len(FIELDS)
    assert all(env.startswith("LIBERTAI_MONITOR_") and meaning for _, env, _, meaning in rows)


def test_readme_documents_every_setting() -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    missing = [env for _, env, _, _ in describe_settings() if f"`{env}`" not in text]
    assert not missing, f"README.md lacks {missing}"


def test_bad_setting_exits_2_with_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "probe-once"],
        env={"LIBERTAI_MONITOR_PROBE_INTERVAL": "often", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "LIBERTAI_MONITOR_PROBE_INTERVAL" in lines[0]


def test_missing_config_file_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", "/no/such.toml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "libertai-monitor: /no/such.toml: no such configuration file"
