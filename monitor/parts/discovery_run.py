"""One discovery run: poll the gateway's host list and check the key with it, at the same time.

Fetching and validating the list is `discovery`'s; this part keeps what the runs found (the
status the snapshot and /metrics show, the key's outcome), applies a good list to the fleet,
and keeps the last good list through a gateway outage.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import replace

import aiohttp

from monitor.config import Settings
from monitor.core.results import Outcome
from monitor.core.snapshot import DiscoveryStatus
from monitor.logging import get_logger
from monitor.parts.fleet import Fleet
from monitor.parts.key_watch import KeyWatch
from monitor.parts.persistence import Persistence
from monitor.probe.discovery import fetch_models, gateway_key_status
from monitor.slices import run_in_slices
from monitor.store import DiscoveryRecord

log = get_logger("monitor.service")  # the service's parts log under one name


class DiscoveryRun:
    def __init__(
        self,
        settings: Settings,
        fleet: Fleet,
        persistence: Persistence | None,
        publish: Callable[[], Awaitable[None] | None],
        key_watch: KeyWatch | None = None,
    ) -> None:
        self._settings = settings
        self._fleet = fleet
        self._persistence = persistence
        self._publish = publish
        self._key_watch = key_watch  # told what the gateway says of the key (a blocked key, once)
        self._session: aiohttp.ClientSession | None = None
        self.status = DiscoveryStatus()
        self.key_outcome: Outcome | None = None
        self.discovered_once = False
        self._applying = asyncio.Lock()

    @property
    def key_blocked(self) -> str | None:
        """Why the key is blocked, as any answer to it said last (`KeyWatch`); None: it is not."""
        return None if self._key_watch is None else self._key_watch.blocked

    def bind(self, session: aiohttp.ClientSession) -> None:
        """The HTTP session to poll with (opened when the service prepares)."""
        self._session = session

    async def run(self) -> None:
        session = self._session
        assert session is not None, "bind() a session first"
        s = self._settings
        result, key_outcome = await asyncio.gather(
            fetch_models(session, s.gateway_url, s.probe_timeout), self._check_key(session)
        )
        self._note_key(key_outcome)
        d = self.status
        if result.ok and result.models is not None:
            self.status = replace(
                d,
                last_attempt_at=result.fetched_at,
                last_ok_at=result.fetched_at,
                ok=True,
                duration_s=result.duration_s,
                error=None,
                runs_ok=d.runs_ok + 1,
            )
            # In steps, so that a huge listing does not stall the loop; one apply at a time.
            async with self._applying:
                changes = await run_in_slices(
                    self._fleet.apply_listing(result.models, result.fetched_at), 0.0
                )
            if self._persistence is not None:
                self._persistence.members_changed(changes)
            self.discovered_once = True
        else:
            if d.ok is not False:
                log.warning("discovery failed; keeping the last good host list", error=result.error)
            self.status = replace(
                d,
                last_attempt_at=result.fetched_at,
                ok=False,
                duration_s=result.duration_s,
                error=result.error,
                runs_failed=d.runs_failed + 1,
            )
        # Retirement is time-based: re-apply the last good list so that grace periods expire even
        # while the gateway is down, without ever treating the outage as hosts leaving.
        published = self._publish()
        if inspect.isawaitable(published):
            await published  # the snapshot rebuilt in steps on the loop
        if self._persistence is not None:
            await self._persistence.discovery_ran(
                DiscoveryRecord(
                    at=result.fetched_at,
                    ok=result.ok,
                    duration_s=result.duration_s,
                    models=len(result.models or {}),
                    hosts=self._fleet.host_count,
                    error=result.error,
                )
            )

    async def _check_key(self, session: aiohttp.ClientSession) -> Outcome | None:
        key = self._settings.api_key
        if key is None:
            return None
        s = self._settings
        outcome, reason = await gateway_key_status(session, s.gateway_url, key, s.probe_timeout)
        if self._key_watch is not None:
            self._key_watch.note(None, outcome, reason, s.gateway_url)
        return outcome

    def _note_key(self, outcome: Outcome | None) -> None:
        if outcome is None or outcome == self.key_outcome:
            if outcome is Outcome.KEY_REJECTED:
                log.error("the gateway rejects the API key", check="/libertai/auth/check")
            return
        previous, self.key_outcome = self.key_outcome, outcome
        if outcome is Outcome.KEY_REJECTED:
            log.error("the gateway rejects the API key", check="/libertai/auth/check")
        elif outcome is Outcome.KEY_BLOCKED:
            pass  # the KeyWatch says so, once
        elif outcome is Outcome.OK:
            if previous is not None:
                log.info("the gateway accepts the API key again")
        else:
            log.warning("could not check the API key with the gateway", outcome=outcome.value)
