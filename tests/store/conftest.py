"""Fixtures for the history store's tests: temporary-file SQLite databases, never :memory:."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.results import Outcome, ProbeKind, ProbeResult
from monitor.store import Store

T0 = 1_700_002_800.0  # an hour boundary (epoch seconds)

MakeResult = Callable[..., ProbeResult]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url, retry_initial_s=0.05, retry_max_s=0.2)
    await s.upgrade()
    s.start_writer()
    yield s
    await s.close(grace_s=2)


@pytest.fixture
def make_result() -> MakeResult:
    def make(
        at: float = T0,
        *,
        model: str = "llama-3",
        host: str = "https://a.libertai.io",
        kind: ProbeKind = ProbeKind.HEALTH,
        outcome: Outcome = Outcome.OK,
        **fields: Any,
    ) -> ProbeResult:
        defaults: dict[str, Any] = {"status": 200, "connect_ms": 3.0, "total_ms": 40.0}
        if kind in (ProbeKind.COMPLETION, ProbeKind.EMBEDDING):
            defaults["ttft_ms"] = 300.0
        defaults.update(fields)
        return ProbeResult(model=model, host=host, kind=kind, outcome=outcome, started_at=at, **defaults)

    return make
