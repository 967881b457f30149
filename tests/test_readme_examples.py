"""README's example answers carry every field the service answers with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from monitor.core.answer import AnswerKey
from monitor.core.health import new_host
from monitor.core.host_view import host_view
from monitor.core.snapshot import ModelView, ServedBy, Snapshot
from monitor.core.steps import finish

README = Path(__file__).resolve().parents[1] / "README.md"


def _example(title: str) -> dict[str, Any]:
    """The JSON block that follows the line starting with `title` in README."""
    text = README.read_text()
    found = re.search(re.escape(title) + r".*?\n```json\n(.*?)\n```", text, re.S)
    assert found is not None, f"no JSON example after {title!r}"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def _answer(model: str | None) -> dict[str, Any]:
    host = host_view(new_host("m", "http://127.0.0.1:9001", trusted=True))
    view = ModelView("m", "m", None, (), 0, 1, False, (host,), "m", {})
    snap = Snapshot(0.0, {"m": view}, served_by=ServedBy("default", "leader"), vantage="default")
    answer = finish(snap.answer(AnswerKey.best(model)))
    assert answer is not None
    data: dict[str, Any] = json.loads(answer.body)
    return data


@pytest.fixture(scope="module")
def best() -> dict[str, Any]:
    return _example("`GET /v1/best` (from the demo")


@pytest.fixture(scope="module")
def best_of_model() -> dict[str, Any]:
    return _example("`GET /v1/best/gemma-3-27b`")


def test_the_best_example_has_every_field_of_the_answer(best: dict[str, Any]) -> None:
    real = _answer(None)
    assert set(real) <= set(best)
    for model in best["models"].values():
        assert set(real["models"]["m"]) <= set(model)


def test_the_best_of_a_model_example_has_every_field_of_the_answer(best_of_model: dict[str, Any]) -> None:
    real = _answer("m")
    assert set(real) <= set(best_of_model)
    for host in best_of_model["hosts"]:
        assert set(real["hosts"][0]) <= set(host)
