"""Building the snapshot: the fleet's changed entries rendered, changed models ranked, swapped whole.

Only rendering happens here; the fleet says what changed, `BestHosts` ranks (and announces a new
best host to its subscribers), `snapshot` renders. A rebuild is a generator of steps of about a
millisecond, so the running service gives the event loop a turn between steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from monitor.core.candidates import candidates
from monitor.core.certs import HostCert
from monitor.core.clock import Clock
from monitor.core.health import HostHealth
from monitor.core.host_view import Elsewhere, HostView, host_view
from monitor.core.identity import NOT_FINGERPRINTED, Identity, out_of_routing
from monitor.core.keys import HostKey
from monitor.core.maintenance import Drain
from monitor.core.paths import Paths
from monitor.core.results import HostState, Outcome
from monitor.core.snapshot import DiscoveryStatus, ModelView, ServedBy, Snapshot, model_view, with_aliases
from monitor.core.steps import Steps
from monitor.core.throughput import Throughput
from monitor.parts.best_hosts import BestHosts
from monitor.parts.fleet import Fleet
from monitor.parts.windows import MaintenanceWindows
from monitor.slices import run_in_slices

PUBLISH_EVERY_S = 0.25
PUBLISH_EVERY_LARGE_S = 1.0  # beyond LARGE_FLEET entries a rebuild is no longer free: less often
LARGE_FLEET = 2000
FULL_EVERY_S = 2.0  # every model re-ranked: ejection times expire with the clock, not with a probe
VIEWS_PER_STEP = 100  # host views per publishing step: about a millisecond


class GatewayState(Protocol):
    """What the snapshot says of the gateway (the discovery run keeps it)."""

    @property
    def status(self) -> DiscoveryStatus: ...

    @property
    def key_outcome(self) -> Outcome | None: ...


class Publisher:
    def __init__(
        self,
        fleet: Fleet,
        best: BestHosts,
        gateway: GatewayState,
        clock: Clock,
        throughput: Mapping[HostKey, Throughput] | None = None,
        windows: MaintenanceWindows | None = None,
        identities: Mapping[HostKey, Identity] | None = None,
        certs: Mapping[str, HostCert] | None = None,
        paths: Mapping[HostKey, Paths] | None = None,
    ) -> None:
        # The certificate each HTTPS host showed last (`monitor.parts.certs`), shown in its views.
        self._certs: Mapping[str, HostCert] = {} if certs is None else certs
        # Hosts in a maintenance window are drained here, model by model, as each is ranked.
        self._windows = windows
        # The last throughput measurement of each (model, host), as the recorder keeps it.
        self._throughput: Mapping[HostKey, Throughput] = {} if throughput is None else throughput
        # Each member's identity verdict, as `monitor.parts.identities` keeps it.
        self._identities: Mapping[HostKey, Identity] = {} if identities is None else identities
        self._paths: Mapping[HostKey, Paths] = {} if paths is None else paths  # the recorder's
        self._fleet = fleet
        self._best = best
        self._gateway = gateway
        self._clock = clock
        self._views: dict[HostKey, HostView] = {}
        self._model_views: dict[str, ModelView] = {}  # base ids, as last ranked
        self.served_by: ServedBy | None = None  # set by the service; shown in the answers
        self.vantage: str | None = None
        self._elsewhere = Elsewhere()
        self.snapshot = Snapshot(generated_at=clock.time(), models={})
        # Held while `publish` runs on the loop: one rebuild at a time (a second would rank
        # against best hosts the first has not settled yet).
        self.building = asyncio.Lock()

    def set_elsewhere(self, elsewhere: Elsewhere) -> None:
        """What the other vantages see now: the hosts whose view it changes are rendered again."""
        old, self._elsewhere = self._elsewhere, elsewhere
        keys = set(old.down) ^ set(elsewhere.down)
        keys |= {k for k in set(old.down) & set(elsewhere.down) if old.down[k] != elsewhere.down[k]}
        if old.vantages != elsewhere.vantages or old.local != elsewhere.local:
            keys |= set(self._views)  # every host's "scope" may change
        self._fleet.give_back((k for k in keys if k in self._fleet.health), ())

    async def run_forever(self) -> None:
        """Coalesce changes: rebuild at most every 250 ms, and re-rank all every few seconds."""
        last_full = float("-inf")  # the first rebuild ranks everything
        while True:
            large = len(self._fleet.health) >= LARGE_FLEET
            await self._clock.sleep(PUBLISH_EVERY_LARGE_S if large else PUBLISH_EVERY_S)
            now = self._clock.monotonic()
            full = now - last_full >= FULL_EVERY_S
            if full:
                last_full = now
            async with self.building:
                await run_in_slices(self.publish(force=full), 0.0)

    def publish(self, *, force: bool = False) -> Steps[None]:
        """Rebuild the snapshot, in steps of a few milliseconds: views of the hosts probed since
        the last rebuild (a slice at a time), then each changed model ranked on its own (in steps
        too, with its candidates), then the snapshot swapped in whole. `force`: every model ranked again.

        On the loop, run it with `run_in_slices(..., 0.0)` under `building`: a turn after every
        step, so that no probe answer waits (its time to first token would grow by the wait), and
        one rebuild at a time. Results recorded between steps mark their hosts changed again for
        the next rebuild; the ranking reads only immutable states, and the views, which no one
        else changes while a rebuild runs. Stopped early (closed), it hands the unfinished work
        back to the next rebuild."""
        fleet = self._fleet
        if not (fleet.has_changes or force):
            return
        changed = fleet.take_changed()
        for key in changed.dropped:
            self._views.pop(key, None)
        pending_views = list(changed.keys)
        pending_models = set(changed.models)
        try:
            while pending_views:
                for key in pending_views[-VIEWS_PER_STEP:]:
                    pending_models.add(key[0])
                    h = fleet.health.get(key)
                    if h is not None:
                        tls = self._certs.get(h.host)
                        self._views[key] = host_view(
                            h,
                            self._throughput.get(key),
                            self._elsewhere,
                            tls,
                            paths=self._paths.get(key),
                            identity=self._identities.get(key, NOT_FINGERPRINTED),
                        )
                del pending_views[-VIEWS_PER_STEP:]
                yield None
            now = self._clock.time()
            if force:
                pending_models = fleet.models()
            for model in sorted(pending_models):
                if model in fleet.models():
                    # An entry may be gone while the fleet walks its members in steps: skipped.
                    entries = (fleet.health.get(HostKey(model, host)) for host in fleet.hosts_of(model))
                    hosts = [h for h in entries if h is not None]
                    drained = self._drained(model, hosts, now)
                    demoted = self._mismatched(model, hosts, drained)
                    out = frozenset(drained) | demoted
                    done = yield from self._best.ranker(model, hosts, now, out).run()
                    view = model_view(model, done.ranking, self._views)
                    routable = view.hosts
                    if drained:
                        view = _marked(view, drained)
                    if out:
                        routable = tuple(h for h in view.hosts if h.url not in out)
                    chosen = yield from candidates(view.best, routable)
                    view = replace(view, candidates=chosen)
                    if model in fleet.models():  # not retired meanwhile
                        self._best.settle(done)
                        self._model_views[model] = view
                pending_models.discard(model)
                yield None
            models = fleet.models()
            for gone in [m for m in self._model_views if m not in models]:
                del self._model_views[gone]
                self._best.forget(gone)
            self.snapshot = Snapshot(
                generated_at=now,
                models=with_aliases(self._model_views, fleet.aliases),
                discovery=self._gateway.status,
                key_outcome=self._gateway.key_outcome,
                served_by=self.served_by,
                vantage=self.vantage,
            )
        finally:
            # Stopped early: what was not done yet is done by the next rebuild.
            fleet.give_back(pending_views, pending_models)

    def _drained(self, model: str, hosts: Sequence[HostHealth], now: float) -> dict[str, Drain]:
        """The hosts of `model` in a maintenance window now: never best, fallback nor candidate."""
        if self._windows is None:
            return {}
        return self._windows.drains(model, (h.host for h in hosts), now, self._fleet.aliases)

    def _mismatched(
        self, model: str, hosts: Sequence[HostHealth], drained: Mapping[str, Drain]
    ) -> frozenset[str]:
        """The hosts of `model` whose identity is `mismatch`, while another host is up: routed like
        drained ones (never best, fallback nor candidate)."""
        if not self._identities:
            return frozenset()
        mismatched = frozenset(
            h.host
            for h in hosts
            if (i := self._identities.get(HostKey(model, h.host))) is not None and i.state == "mismatch"
        )
        if not mismatched:
            return mismatched
        up = frozenset(
            h.host for h in hosts if h.trusted and h.state is HostState.UP and h.host not in drained
        )
        return out_of_routing(mismatched, up)


def _marked(view: ModelView, drained: Mapping[str, Drain]) -> ModelView:
    """`view` with its drained hosts showing their maintenance (in `/v1/hosts` and on the page)."""
    hosts = tuple(replace(h, maintenance=drained[h.url]) if h.url in drained else h for h in view.hosts)
    return replace(view, hosts=hosts)
