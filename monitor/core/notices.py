"""What to tell operators: from state changes, the notices worth a message (pure; times are given).

Each subject (a host of a model, a model, the gateway's list, the service's own key) has a value
("down"/"up", "none"/"healthy", "failing"/"ok", "rejected"/"ok") and the value last announced,
which starts at the good one: a host first seen up is no news, one first seen down is. A change is
announced at once unless the subject's last message is younger than `min_interval_s`; then it is
held and counted, and `tick` sends one message for all of it when the interval is over (the new
value with the count of changes, or "flapping" when the value is back where it was announced).

A model has no healthy host when its last host that was up goes down (so the order in which a
model's hosts are first probed at start cannot announce a false outage), and is healthy again
when one of its hosts comes up after that. The gateway's list is announced failing once it has
failed for `gateway_after_s` without a good run. A host for which `quiet` is true (in maintenance)
sends nothing, nor does its model for the change it causes: the value is taken as announced,
silently (so a host still down when its window ends is not announced then).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal
from urllib.parse import quote

from monitor.core.results import HostState, Outcome

NoticeKind = Literal["down", "up", "no_healthy_host", "healthy", "gateway_failing", "gateway_ok",
                     "key_rejected", "key_ok", "flapping"]  # fmt: skip
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
    state: str = ""  # the subject's value now: "down", "up", "none", "healthy", "failing", "ok", "rejected"

    @property
    def event(self) -> str:
        """A stable identity of the change, for recording it once."""
        return f"{self.kind}|{self.model or ''}|{self.host or ''}|{self.since:.3f}"


@dataclass(slots=True)
class _Track:
    announced: str
    value: str
    since: float = 0.0
    reason: str | None = None
    sent_at: float = float("-inf")
    changes: int = 0  # changes since the last message


def never_quiet(_model: str, _host: str, _at: float) -> bool:
    return False


@dataclass
class Notices:
    """The decisions: feed it changes, collect what to send (`host_changed`, `gateway`, `key`, `tick`)."""

    min_interval_s: float = 300.0
    gateway_after_s: float = 300.0
    # A (model, host) whose changes, and the model changes they cause, send nothing now: in maintenance.
    quiet: Callable[[str, str, float], bool] = never_quiet
    _tracks: dict[Subject, _Track] = field(default_factory=dict)
    _up: dict[str, set[str]] = field(default_factory=dict)  # the hosts of each model now up
    _gateway_failing_since: float | None = None

    def host_changed(
        self, model: str, host: str, before: HostState, after: HostState, reason: Outcome, at: float
    ) -> list[Notice]:
        """A host's state changed (the recorder's subscriber's arguments)."""
        if after not in (HostState.UP, HostState.DOWN) or before is after:
            return []
        up = self._up.setdefault(model, set())
        had_up = bool(up)
        if after is HostState.UP:
            up.add(host)
        else:
            up.discard(host)
        value = "up" if after is HostState.UP else "down"
        why = reason.value if after is HostState.DOWN else None
        quiet = self.quiet(model, host, at)
        out = self._observe(("host", model, host), value, at, why, quiet=quiet)
        if had_up and not up:
            out += self._observe(("model", model, None), "none", at, why, quiet=quiet)
        elif up and not had_up:
            out += self._observe(("model", model, None), "healthy", at, None, quiet=quiet)
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

    def key(self, outcome: Outcome | None, at: float) -> list[Notice]:
        """The gateway's check of the service's own key answered `outcome` (None: not asked)."""
        if outcome in (Outcome.KEY_REJECTED, Outcome.PAYMENT_REQUIRED):  # rejected or blocked
            return self._observe(("key", None, None), "rejected", at, outcome.value)
        if outcome is Outcome.OK:
            return self._observe(("key", None, None), "ok", at, None)
        return []  # the check failed for another reason: it says nothing about the key

    def tick(self, now: float) -> list[Notice]:
        """Messages held back by the interval whose interval is over."""
        out = []
        for subject, track in self._tracks.items():
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
            track.announced, track.changes = value, 0
            return []
        track.changes += 1
        if at - track.sent_at < self.min_interval_s:
            return []  # held: `tick` sends it, summed up, when the interval is over
        return [self._send(subject, track, at)]

    def _send(self, subject: Subject, track: _Track, at: float) -> Notice:
        what, model, host = subject
        kind: NoticeKind = "flapping" if track.value == track.announced else _KIND[(what, track.value)]
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
    "key_ok": "API key accepted again",
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
