"""One host of one model as answers show it (`HostView`), built from its health (`host_view`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.core.candidates import host_load
from monitor.core.certs import HostCert
from monitor.core.facts import NO_DOWN_FACTS, DownFacts, down_facts, last_failure, measured_by
from monitor.core.failure import Failure, blamed
from monitor.core.health import HostHealth, stats
from monitor.core.identity import NOT_FINGERPRINTED, Identity
from monitor.core.keys import HostKey
from monitor.core.maintenance import Drain
from monitor.core.paths import Paths
from monitor.core.results import HostState, Outcome, ProbeKind
from monitor.core.throughput import Throughput


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True, slots=True)
class HostView:
    """One host of one model as the contract's HOST object, plus what metrics need."""

    model: str
    url: str
    state: HostState
    reason: Outcome
    availability: float | None
    samples: int
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    latency_ms_p50: float | None
    last_probe_at: float | None
    last_ok_at: float | None
    consecutive_failures: int
    key_ok: bool | None
    last_outcome: Outcome
    # The last throughput probe's figures (`monitor.core.throughput`); None before one.
    tokens_per_s: float | None = None
    inter_token_ms_p50: float | None = None
    # Vantages that see this host down (this one included), sorted, of `vantages` with fresh data.
    down_from: tuple[str, ...] = ()
    vantages: int = 1
    # Its unloaded time to first token and how far its recent one is above it (`monitor.core.candidates`).
    ttft_ms_baseline: float | None = None
    load: float = 0.0
    # For the status page (not in the JSON): the kind `latency_ms_p50` is measured on, and for a down
    # host, which probe succeeded last and which fails since when (`monitor.core.facts`).
    latency_kind: ProbeKind | None = None
    down: DownFacts = NO_DOWN_FACTS
    # The failure that explains `reason` (`monitor.core.facts.last_failure`); None when none was kept.
    last_failure: Failure | None = None
    maintenance: Drain | None = None  # in a maintenance window: out of routing, still probed
    # Whether it serves the model it is listed for (`monitor.core.identity`); set by the publisher.
    identity: Identity = NOT_FINGERPRINTED
    tls: HostCert | None = None  # the certificate an HTTPS host showed last (`monitor.core.certs`)
    paths: Paths | None = None  # the API paths it accepts and refuses (`monitor.core.paths`); None: not yet

    @property
    def scope(self) -> str | None:
        """ "all": down from every vantage; "regional": from some only; None: down from none."""
        if not self.down_from:
            return None
        return "all" if len(self.down_from) >= self.vantages else "regional"

    def blamed(self, gateway_rejects_key: bool) -> tuple[Failure | None, bool | None]:
        """(last failure, key_ok) as answers give them: see `monitor.core.failure.blamed`."""
        d = self.down
        return blamed(
            self.last_failure, self.reason, self.key_ok, gateway_rejects_key, d.failing_kind, d.failing_since
        )

    def as_json(self, model: str | None = None, gateway_rejects_key: bool = False) -> dict[str, Any]:
        failure, key_ok = self.blamed(gateway_rejects_key)
        return {
            "model": model or self.model,
            "url": self.url,
            "state": self.state.value,
            "reason": self.reason.value,
            "availability": None if self.availability is None else round(self.availability, 4),
            "samples": self.samples,
            "ttft_ms_p50": _ms(self.ttft_ms_p50),
            "ttft_ms_p95": _ms(self.ttft_ms_p95),
            "latency_ms_p50": _ms(self.latency_ms_p50),
            "last_probe_at": iso(self.last_probe_at),
            "last_ok_at": iso(self.last_ok_at),
            "consecutive_failures": self.consecutive_failures,
            "key_ok": key_ok,
            "tokens_per_s": _ms(self.tokens_per_s),
            "inter_token_ms_p50": _ms(self.inter_token_ms_p50),
            "down_from": list(self.down_from),
            "scope": self.scope,
            "last_failure": None if failure is None else _failure_json(failure),
            "failing_since": iso(self.down.failing_since),
            "maintenance": None
            if (m := self.maintenance) is None
            else {"reason": m.reason, "until": iso(m.until)},
            "identity": self.identity.state,
            "identity_detail": self.identity.detail,
            "tls": None if self.tls is None else self.tls.as_json(),
            # Sorted; null until a paths probe decided one. A path in neither list is unknown.
            "paths": None if (p := self.paths) is None else list(p.accepted),
            "paths_refused": None if p is None else list(p.refused),
        }


def _failure_json(f: Failure) -> dict[str, Any]:
    return {"kind": f.kind.value, "status": f.status, "error": f.error, "at": iso(f.at)}


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """What the other vantages see: (model, host) -> the other vantages that see it down, and
    how many vantages (this one included) have fresh results."""

    local: str = "default"
    down: Mapping[HostKey, tuple[str, ...]] = field(default_factory=dict)
    vantages: int = 1
    others: tuple[str, ...] = ()  # the other vantages with fresh results, by name


def host_view(
    h: HostHealth,
    throughput: Throughput | None = None,
    elsewhere: Elsewhere | None = None,
    tls: HostCert | None = None,
    *,
    paths: Paths | None = None,
    identity: Identity = NOT_FINGERPRINTED,
) -> HostView:
    s = stats(h)
    last = h.samples.last()
    baseline, load = host_load(h.samples.ok_ttfts_at(ProbeKind.COMPLETION))
    e = elsewhere or _ALONE
    down_from: tuple[str, ...] = ()
    if e.down or h.state is HostState.DOWN:  # most hosts are up everywhere: nothing to sort
        down = set(e.down.get(HostKey(h.model, h.host), ()))
        if h.state is HostState.DOWN:
            down.add(e.local)
        down_from = tuple(sorted(down))
    return HostView(
        model=h.model,
        url=h.host,
        state=h.state,
        reason=h.reason,
        availability=s.availability,
        samples=s.samples,
        ttft_ms_p50=s.ttft_ms_p50,
        ttft_ms_p95=s.ttft_ms_p95,
        latency_ms_p50=s.latency_ms_p50,
        last_probe_at=h.last_probe_at,
        last_ok_at=h.last_ok_at,
        consecutive_failures=s.consecutive_failures,
        key_ok=h.key_ok,
        last_outcome=Outcome.NOT_PROBED if last is None else last[1],
        tokens_per_s=None if throughput is None else throughput.tokens_per_s,
        inter_token_ms_p50=None if throughput is None else throughput.inter_token_ms_p50,
        down_from=down_from,
        vantages=max(e.vantages, len(down_from)),
        ttft_ms_baseline=baseline,
        load=load,
        latency_kind=ProbeKind.COMPLETION if s.ttft_ms_p50 is not None else measured_by(h.samples),
        down=down_facts(h),
        last_failure=last_failure(h),
        tls=tls,
        paths=paths,
        identity=identity,
    )


_ALONE = Elsewhere()
