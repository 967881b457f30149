"""The demo starts from a clean database of its own (the previous run's hosts are not shown down
at start), unless asked to keep it."""

from __future__ import annotations

from pathlib import Path

from monitor.cli import DEMO_KEPT_DATABASE, _parser, demo_database


def test_the_demo_uses_a_new_database_in_its_own_directory_unless_kept(tmp_path: Path) -> None:
    args = _parser().parse_args(["demo"])
    assert not args.keep
    assert demo_database(args.keep, tmp_path) == f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    kept = _parser().parse_args(["demo", "--keep"])
    assert demo_database(kept.keep, tmp_path) == DEMO_KEPT_DATABASE
