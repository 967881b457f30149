"""Settings: defaults < TOML file < environment < flags, and one readable line for a bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import FIELDS, MIN_KEY_CHARS, ConfigError, Settings
from monitor.config_load import check_key, describe_settings, load_settings, unknown_env_warnings
from monitor.settings_doc import readme_table, settings_help, settings_table


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


@pytest.mark.subprocess
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


@pytest.mark.subprocess
def test_missing_config_file_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", "/no/such.toml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "libertai-monitor: /no/such.toml: no such configuration file"


def test_readme_settings_table_is_the_rendering_of_the_declarations() -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    assert readme_table(readme.read_text()) == settings_table(), (
        "run: python -m monitor.settings_doc --write README.md"
    )


def test_every_setting_is_a_field_of_settings_with_its_default() -> None:
    assert [f.name for f in FIELDS] == [n for n in Settings.__dataclass_fields__ if n != "api_key"]
    assert load_settings(environ={}) == Settings()


def test_ejection_time_above_its_cap_is_refused_in_one_line() -> None:
    env = {"LIBERTAI_MONITOR_EJECTION_TIME": "500", "LIBERTAI_MONITOR_EJECTION_MAX_TIME": "300"}
    with pytest.raises(ConfigError) as err:
        load_settings(environ=env)
    message = str(err.value)
    assert "ejection_time (500 s) must not exceed ejection_max_time (300 s)" in message
    assert "LIBERTAI_MONITOR_EJECTION_TIME" in message and "\n" not in message


@pytest.mark.subprocess
def test_ejection_time_above_its_cap_exits_2_without_a_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "probe-once"],
        env={"LIBERTAI_MONITOR_EJECTION_TIME": "500", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_retention_errors_speak_of_days() -> None:
    with pytest.raises(ConfigError, match="positive number of days"):
        load_settings(environ={"LIBERTAI_MONITOR_RAW_RETENTION_DAYS": "-3"})


def test_a_ca_bundle_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    not_pem = tmp_path / "hostname"
    not_pem.write_text("my-machine\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate") as err:
        load_settings(environ={"LIBERTAI_MONITOR_CA_BUNDLE": str(not_pem)})
    assert "LIBERTAI_MONITOR_CA_BUNDLE" in str(err.value)


def test_a_misspelt_variable_is_named_with_the_closest_setting() -> None:
    lines = unknown_env_warnings(
        {"LIBERTAI_MONITOR_PROBE_INTERVALL": "5", "LIBERTAI_MONITOR_PROBE_INTERVAL": "5"}
    )
    assert lines == [
        "LIBERTAI_MONITOR_PROBE_INTERVALL is not a setting and is ignored: "
        "did you mean LIBERTAI_MONITOR_PROBE_INTERVAL?"
    ]


def test_variables_an_orchestrator_injects_are_not_warned_about() -> None:
    env = {
        "LIBERTAI_MONITOR_PORT": "tcp://10.0.0.1:8787",
        "LIBERTAI_MONITOR_PORT_8787_TCP_ADDR": "10.0.0.1",
        "LIBERTAI_MONITOR_SERVICE_HOST": "10.0.0.1",
        "LIBERTAI_MONITOR_API_KEY_FILE": "/run/secrets/key",
        "LIBERTAI_MONITOR_CONFIG": "/etc/m.toml",
    }
    assert unknown_env_warnings(env) == []


def test_a_key_too_short_to_be_real_is_refused_without_echoing_it() -> None:
    settings = load_settings(environ={"LIBERTAI_API_KEY": "e"})
    with pytest.raises(ConfigError, match="too short") as err:
        check_key(settings, {"LIBERTAI_API_KEY": "e"})
    assert "LIBERTAI_API_KEY" in str(err.value) and "'e'" not in str(err.value)


def test_the_keys_of_the_simulator_tests_and_benchmarks_are_long_enough() -> None:
    for key in ("bench-key", "sk-sim-test", "demo-key-not-a-secret", "sk-libertai-test-9f8e7d6c5b4a"):
        assert len(key) >= MIN_KEY_CHARS
        check_key(load_settings(environ={"LIBERTAI_API_KEY": key}))


def test_run_help_lists_every_setting_with_its_variable_and_default() -> None:
    text = settings_help()
    for f in FIELDS:
        assert f"{f.name}  {f.env}  [default: {f.default or 'none'}]" in text


def test_ejection_time_is_described_as_counted_from_going_down() -> None:
    # monitor.core.health sets ejected_until from the result that took the host down
    # (tests/decisions/test_health.py: down at 100 -> out of best until 130).
    meaning = next(f.meaning for f in FIELDS if f.name == "ejection_time")
    assert "counted from when it went down" in meaning
    assert "once up" not in meaning
    assert "counted from when it went down" in settings_help()
