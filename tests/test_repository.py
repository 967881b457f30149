"""The repository's own files: what the packaging and CI say exists, exists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_license_file_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_every_test_file_ci_names_exists() -> None:
    named = set(re.findall(r"tests/[\w/]+\.py", (ROOT / ".ci" / "run").read_text()))
    assert named and not [path for path in named if not (ROOT / path).is_file()]


def test_the_slow_marker_is_registered() -> None:
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers)
