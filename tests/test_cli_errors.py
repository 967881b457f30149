"""The commands refuse what they cannot use with one line on stderr and exit status 2, before work."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from monitor.cli import main
from monitor.store.migrate import alembic_config

Capsys = pytest.CaptureFixture[str]


def _refused(argv: list[str], capsys: Capsys) -> str:
    """Run the command; assert exit 2 and one line on stderr, no traceback; return that line."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("LIBERTAI_MONITOR_CONFIG", "LIBERTAI_API_KEY", "LIBERTAI_MONITOR_API_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["simulate", "--port", "99999"], "--port"),
        (["simulate", "--port", "-1"], "--port"),
        (["simulate", "--seed", "x"], "--seed"),
        (["simulate", "--key", ""], "--key"),
        (["simulate", "--scenario", "/no/such/scenario.toml"], "scenario"),
        (["demo", "--seed", "1.5"], "--seed"),
        (["demo", "--listen", "127.0.0.1:70000"], "--listen"),
        (["run", "--listen", "[::1:8787"], "--listen"),
        (["run", "--gateway-url", "ftp://gateway"], "--gateway-url"),
        (["run", "--config", "/no/such/monitor.toml"], "/no/such/monitor.toml"),
        (["probe-once", "--gateway-url", "not a url"], "--gateway-url"),
        (["best", "m", "--timeout", "-1"], "--timeout"),
        (["best", "m", "--timeout", "nan"], "--timeout"),
        (["best", "m", "--monitor-url", "http://[bad"], "--monitor-url"),
        (["best", "m", "--listen", "127.0.0.1:-1"], "--listen"),
        (["db", "upgrade", "--database-url", "nonsense"], "--database-url"),
        (["db", "upgrade", "--database-url", "mysql://u@db/h"], "mysql"),
    ],
)
def test_a_bad_value_exits_2_with_one_line_naming_it(argv: list[str], named: str, capsys: Capsys) -> None:
    assert named in _refused(argv, capsys)


@pytest.mark.parametrize(
    "argv", [["run", "--frobnicate"], ["db", "upgrade", "--frobnicate"], ["best", "m", "--frobnicate"]]
)
def test_an_unknown_flag_is_reported_by_its_command(argv: list[str], capsys: Capsys) -> None:
    line = _refused(argv, capsys)
    command = " ".join(a for a in argv if a not in {"m", "--frobnicate"})
    assert line.startswith(f"libertai-monitor {command}: unrecognized arguments: --frobnicate")
    assert f"libertai-monitor {command} --help" in line


def test_simulate_help_says_what_the_command_does(capsys: Capsys) -> None:
    assert main(["simulate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "the simulated LibertAI network alone" in out.split("options:")[0]


def test_gateway_url_refuses_the_listing_url_and_names_the_base(capsys: Capsys) -> None:
    line = _refused(["probe-once", "--gateway-url", "http://127.0.0.1:9/libertai/models"], capsys)
    assert "without /libertai/models" in line and "(http://127.0.0.1:9)" in line


def test_db_upgrade_does_not_create_a_missing_directory(tmp_path: Path, capsys: Capsys) -> None:
    missing = tmp_path / "mistyped" / "dir"
    line = _refused(["db", "upgrade", "--database-url", f"sqlite+aiosqlite:///{missing}/x.db"], capsys)
    assert f"the directory {missing} does not exist" in line
    assert not missing.parent.exists()


def test_a_database_path_that_is_a_directory_is_named_with_the_cause(tmp_path: Path, capsys: Capsys) -> None:
    line = _refused(["db", "upgrade", "--database-url", f"sqlite+aiosqlite:///{tmp_path}"], capsys)
    assert f"cannot open {tmp_path}: {tmp_path} is a directory" in line


def test_a_database_under_a_file_is_named_with_the_cause(tmp_path: Path, capsys: Capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = _refused(["db", "upgrade", "--database-url", f"sqlite+aiosqlite:///{blocker}/sub/m.db"], capsys)
    assert f"{blocker} is not a directory" in line


def test_db_upgrade_says_what_it_applied_then_that_nothing_was_left(tmp_path: Path, capsys: Capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    first = capsys.readouterr()
    assert main(["db", "upgrade", "--database-url", url]) == 0
    second = capsys.readouterr()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert first.out.strip().endswith(f"upgraded from no schema to revision {head}")
    assert second.out.strip().endswith(f"is already at the latest schema (revision {head})")


def test_db_upgrade_prints_no_alembic_lines(tmp_path: Path, capsys: Capsys) -> None:
    assert main(["db", "upgrade", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"]) == 0
    said = capsys.readouterr()
    assert "Context impl" not in said.err + said.out
    assert "non-transactional DDL" not in said.err + said.out


def test_run_on_a_port_in_use_stops_before_touching_the_database(tmp_path: Path, capsys: Capsys) -> None:
    db = tmp_path / "m.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["run", "--listen", f"127.0.0.1:{port}", "--database-url", f"sqlite+aiosqlite:///{db}"]
        line = _refused([*argv, "--gateway-url", "http://127.0.0.1:9"], capsys)
    assert line.startswith(f"libertai-monitor: cannot listen on 127.0.0.1:{port}: ")
    assert not db.exists()  # no migration ran


def test_run_with_notify_urls_but_no_apprise_asks_for_the_extra(
    capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "apprise" else real(name, *a)
    )
    monkeypatch.setenv("LIBERTAI_MONITOR_NOTIFY_URLS", "tgram://BOT-SECRET-TOKEN/42")
    line = _refused(["run"], capsys)
    assert "[notify]" in line and "BOT-SECRET-TOKEN" not in line


def test_a_bad_identity_reference_file_exits_2_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    bad = tmp_path / "reference.toml"
    bad.write_text('[models.m]\nprompt_tokens = 0\ntokens = ["Paris"]\n')
    monkeypatch.setenv("LIBERTAI_MONITOR_IDENTITY_REFERENCE", str(bad))
    line = _refused(["run", "--listen", "127.0.0.1:0"], capsys)
    assert "reference.toml" in line and "prompt_tokens" in line
