"""Process level: a monitor killed with SIGKILL while it leads loses the lock with its session, and a
follower in another process leads within the issue's bound (10 s)."""

from __future__ import annotations

import pytest

from tests.ha.lock_holder import takeover_once


@pytest.mark.slow
async def test_follower_leads_within_10_s_after_the_leader_is_sigkilled(pg_url: str) -> None:
    assert await takeover_once(pg_url, retry_s=1.0) < 10.0
