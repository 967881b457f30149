"""What to tell operators: from state changes, the notices worth a message (pure; times are given).

Each subject (a host of a model, a model, the gateway's list, the service's own key) has a value
("down"/"up", "none"/"healthy", "failing"/"ok", "rejected"/"ok") and the value last announced,
which starts at the good one: a host first seen up is no news, one first seen down is. A change is
announced at once unless the subject's last message is younger than `min_interval_s`; then it is
held and counted, and `tick` sends one message for all of it when the interval is over (the new
value with the count of changes, or "flapping" when the value is back where it was announced).

A host is down for the notices when at least `quorum` vantages see it down: this one (its own
state changes, `host_changed`) and the others (`elsewhere`, from their results in the database).
It is up again when fewer than `quorum` still see it down. A model has no healthy host when its
last host that was up (so agreed) goes down (so the order in which a model's hosts are first probed
at start cannot announce a false outage), and is healthy again when one of its hosts comes up after
that. The gateway's list is announced failing once it has failed for `gateway_after_s` without a
good run. A host for which `quiet` is true (in maintenance) sends nothing, nor does its model for
the change it causes: the change is held, and `tick` announces it when the window is over if the
value is still not the one announced (a host still down then is announced down once; one that went
down and came back within the window sends nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal
from urllib.parse import quote

from monitor.core.results import HostState, Outcome

NoticeKind = Literal["down", "up", "no_healthy_host", "healthy", "gateway_failing", "gateway_ok",
                     "key_rejected", "key_blocked", "key_ok", "cert_changed", "flapping"]  # fmt: skip
Subject = tuple[str, str | None, str | None]  # (what, model, host)

_GOOD: Final = {"host": "up", "model": "healthy", "gateway": "ok", "key": "ok"}
_KIND: Final[dict[tuple[str, str], NoticeKind]] = {
    ("host", "down"): "down",
    ("host", "up"): "up",
    ("model", "none"): "no_healthy_host",
    ("model", "healthy"): "healthy",
    ("gateway", "failing"): "gateway_failing",
    ("gateway", "ok"): "gateway_ok",
    ("key", "rejected"): "key_rejected",
    ("key", "blocked"): "key_blocked",
    ("key", "ok"): "key_ok",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to send: what happened, to which model and host, why, since when."""

    kind: NoticeKind
    model: str | None
    host: str | None
    reason: str | None
    since: float  # when the subject took its current value
    at: float  # when the notice was decided
    changes: int = 1  # changes of the subject this notice sums up (more than 1: it flapped)
    state: str = (
        ""  # the subject's value now: "down", "up", "none", "healthy", "failing", "ok", "rejected", "blocked"
    )

    @property
    def event(self) -> str:
        """A stable identity of the change, for recording it once."""
        return f"{self.kind}|{self.model or ''}|{self.host or ''}|{self.since:.3f}"


# The kinds a subject's messages take: the last one recorded says what was announced of it.
_FAMILIES: Final[tuple[frozenset[str], ...]] = (
    frozenset({"down", "up", "flapping"}),
    frozenset({"no_healthy_host", "healthy", "flapping"}),
    frozenset({"gateway_failing", "gateway_ok", "flapping"}),
    frozenset({"key_rejected", "key_blocked", "key_ok", "flapping"}),
)


def subject_prefixes(event: str) -> tuple[str, tuple[str, ...]] | None:
    """(the event's own prefix, the prefixes of every message about the same subject), for
    finding what was last announced of it; None for a kind every change of which is news (a
    certificate change) or an event of another shape. A prefix is `kind|model|host|`."""
    kind, _, rest = event.partition("|")
    subject = rest.rpartition("|")[0]  # model|host, without the time
    family = next((f for f in _FAMILIES if kind in f and kind != "flapping"), None)
    if family is None or not subject:
        return None
    return f"{kind}|{subject}|", tuple(sorted(f"{k}|{subject}|" for k in family))


@dataclass(slots=True)
class _Track:
    announced: str
    value: str
    since: float = 0.0
    reason: str | None = None
    sent_at: float = float("-inf")
    changes: int = 0  # changes since the last message
    held_by: tuple[str, str] | None = None  # the (model, host) whose maintenance silences it now


def never_quiet(_model: str, _host: str, _at: float) -> bool:
    return False


def announces(local: str, others: Iterable[str]) -> bool:
    """Whether vantage `local` is the one that sends, among the vantages with fresh results: the
    lexically first. Every vantage decides the same notices from the same agreement; one sends."""
    return all(local < other for other in others)


@dataclass
class Notices:
    """The decisions: feed it changes, collect what to send (`host_changed`, `elsewhere`, `gateway`,
    `key`, `tick`)."""

    min_interval_s: float = 300.0
    gateway_after_s: float = 300.0
    # A (model, host) whose changes, and the model changes they cause, send nothing now: in maintenance.
    quiet: Callable[[str, str, float], bool] = never_quiet
    quorum: int = 1  # vantages that must see a host down before it is announced down
    _tracks: dict[Subject, _Track] = field(default_factory=dict)
    _up: dict[str, set[str]] = field(default_factory=dict)  # the hosts of each model now up (agreed)
    _local: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)  # value, why
    _others: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # vantages: down
    _agreed: dict[tuple[str, str], str] = field(default_factory=dict)
    _gateway_failing_since: float | None = None

    def host_changed(
        self, model: str, host: str, before: HostState, after: HostState, reason: Outcome, at: float
    ) -> list[Notice]:
        """A host's state changed here (the recorder's subscriber's arguments)."""
        if after not in (HostState.UP, HostState.DOWN) or before is after:
            return []
        value = "up" if after is HostState.UP else "down"
        self._local[(model, host)] = (value, reason.value if value == "down" else None)
        return self._agree(model, host, at)

    def elsewhere(self, down: Mapping[tuple[str, str], Sequence[str]], at: float) -> list[Notice]:
        """What the other vantages see down now: (model, host) -> those vantages (all of it, each time)."""
        now = {key: tuple(sorted(vantages)) for key, vantages in down.items() if vantages}
        changed = set(now) ^ set(self._others)
        changed |= {k for k in set(now) & set(self._others) if now[k] != self._others[k]}
        self._others = now
        out: list[Notice] = []
        for model, host in sorted(changed):
            out += self._agree(model, host, at)
        return out

    def _agree(self, model: str, host: str, at: float) -> list[Notice]:
        """The host's value as the vantages agree on it, and what its change says."""
        key = (model, host)
        local, why = self._local.get(key, (None, None))
        others = self._others.get(key, ())
        if (local == "down") + len(others) >= self.quorum:
            value = "down"
            why = why or f"down from {', '.join(others)}"
        elif local is not None or key in self._agreed:
            value, why = "up", None
        else:
            return []  # never seen here, and too few vantages see it down: not a subject yet
        if self._agreed.get(key) == value:
            return []
        self._agreed[key] = value
        up = self._up.setdefault(model, set())
        had_up = bool(up)
        if value == "up" and local is not None:
            up.add(host)
        else:
            up.discard(host)  # down, or up only for want of agreement on a host never seen here
        quiet = self.quiet(model, host, at)
        out = self._observe(("host", model, host), value, at, why, quiet=quiet, host=key)
        if had_up and not up:
            out += self._observe(("model", model, None), "none", at, why, quiet=quiet, host=key)
        elif up and not had_up:
            out += self._observe(("model", model, None), "healthy", at, None, quiet=quiet, host=key)
        return out

    def gateway(self, ok: bool, at: float, error: str | None = None) -> list[Notice]:
        """A run of discovery ended (ok or failed) at `at`."""
        if ok:
            self._gateway_failing_since = None
            return self._observe(("gateway", None, None), "ok", at, None)
        if self._gateway_failing_since is None:
            self._gateway_failing_since = at
        if at - self._gateway_failing_since < self.gateway_after_s:
            return []
        return self._observe(("gateway", None, None), "failing", self._gateway_failing_since, error, now=at)

    def key(self, outcome: Outcome | None, at: float, blocked: str | None = None) -> list[Notice]:
        """The gateway's check of the service's own key answered `outcome` (None: not asked);
        `blocked`: why the key is blocked (a 403 with a reason from the gateway or a host), if it is."""
        if blocked is not None:
            return self._observe(("key", None, None), "blocked", at, blocked)
        if outcome in (Outcome.KEY_REJECTED, Outcome.PAYMENT_REQUIRED):
            return self._observe(("key", None, None), "rejected", at, outcome.value)
        if outcome is Outcome.OK:
            return self._observe(("key", None, None), "ok", at, None)
        return []  # the check failed for another reason: it says nothing about the key

    def cert_changed(self, host: str, previous: str, sha256: str, withheld: bool, at: float) -> list[Notice]:
        """`host` shows the certificate `sha256` instead of `previous` (SHA-256, hex); `withheld`:
        pinned, so the key goes to it no more until an operator accepts the new one. A host that
        alternates between certificates is flapping: one message per interval, with a count."""
        subject: Subject = ("cert", None, host)
        if subject not in self._tracks:
            self._tracks[subject] = _Track(announced=previous, value=previous, since=at)
        why = f"sha256 {sha256[:16]}... (was {previous[:16]}...)"
        if withheld:
            why += f"; the key is withheld until `libertai-monitor certs accept {host}`"
        return self._observe(subject, sha256, at, why)

    def tick(self, now: float) -> list[Notice]:
        """Messages held back by the interval whose interval is over."""
        out = []
        for subject, track in self._tracks.items():
            if track.held_by is not None:
                if self.quiet(*track.held_by, now):
                    continue
                track.held_by = None  # the window is over: what it still shows is news now
                if track.value != track.announced:
                    track.changes = max(track.changes, 1)
                    out.append(self._send(subject, track, now))
                continue
            if track.changes and now - track.sent_at >= self.min_interval_s:
                out.append(self._send(subject, track, now))
        return out

    def _observe(
        self,
        subject: Subject,
        value: str,
        since: float,
        reason: str | None,
        now: float | None = None,
        *,
        quiet: bool = False,
        host: tuple[str, str] | None = None,
    ) -> list[Notice]:
        at = since if now is None else now
        track = self._tracks.get(subject)
        if track is None:
            good = _GOOD[subject[0]]
            track = self._tracks[subject] = _Track(announced=good, value=good, since=since)
        if value == track.value:
            return []
        track.value, track.since, track.reason = value, since, reason
        if quiet:
            track.held_by, track.changes = host, 0  # `tick` looks again when the window is over
            return []
        if track.held_by is not None:  # the window just ended: what changed within it is no news
            track.held_by, track.changes = None, 0
            if value == track.announced:
                return []
        track.changes += 1
        if at - track.sent_at < self.min_interval_s:
            return []  # held: `tick` sends it, summed up, when the interval is over
        return [self._send(subject, track, at)]

    def _send(self, subject: Subject, track: _Track, at: float) -> Notice:
        what, model, host = subject
        kind: NoticeKind = (
            "flapping"
            if track.value == track.announced
            else "cert_changed"
            if what == "cert"
            else _KIND[(what, track.value)]
        )
        notice = Notice(kind, model, host, track.reason, track.since, at, track.changes, track.value)
        track.announced, track.sent_at, track.changes = track.value, at, 0
        return notice


_TITLE: Final[dict[NoticeKind, str]] = {
    "down": "Host down",
    "up": "Host up again",
    "no_healthy_host": "No healthy host",
    "healthy": "Model healthy again",
    "gateway_failing": "Gateway list failing",
    "gateway_ok": "Gateway list back",
    "key_rejected": "API key rejected",
    "key_blocked": "API key blocked",
    "key_ok": "API key accepted again",
    "cert_changed": "Certificate changed",
    "flapping": "Flapping",
}


def render(notice: Notice, public_url: str | None = None) -> tuple[str, str]:
    """The message's title and body: the model, host, reason, since when, and the status page."""
    subject = " ".join(x for x in (notice.model, notice.host) if x)
    title = f"{_TITLE[notice.kind]}: {subject}" if subject else _TITLE[notice.kind]
    lines = [f"model: {notice.model}"] if notice.model else []
    if notice.kind == "flapping":
        lines.append(f"now: {notice.state}")
    if notice.host:
        lines.append(f"host: {notice.host}")
    if notice.reason:
        lines.append(f"reason: {notice.reason}")
    lines.append(f"since: {_iso(notice.since)}")
    if notice.changes > 1:
        lines.append(f"changes: {notice.changes} since the last message")
    if public_url:
        base = public_url.rstrip("/")
        lines.append(f"{base}/status/{quote(notice.model, safe='/')}" if notice.model else f"{base}/status")
    return title, "\n".join(lines)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
