"""structlog set-up: JSON lines off a terminal, readable lines on one, and the key never written.

Every log line, ours and the stdlib's (aiohttp, APScheduler, Alembic), passes through the same
processors, the last of which redacts: by key name, by `Bearer ...` pattern, and by the key's own
value wherever it might have slipped into a string, as a whole token (a key that happened to be a
common word's part would otherwise mask that part in every line).

Malformed HTTP requests (junk traffic, scanners) are one short warning line at most once a minute,
never an ERROR with a traceback each (`MalformedRequests`).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from aiohttp.http_exceptions import HttpProcessingError
from structlog.typing import EventDict, Processor, WrappedLogger

from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.core.secret import Secret

_MASK = "***"
_SECRET_KEYS = frozenset({"authorization", "api_key", "apikey", "key", "token", "password", "secret"})
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


class Redactor:
    """A processor that masks secrets in every value of an event, however deep."""

    def __init__(self) -> None:
        self._values: tuple[tuple[str, re.Pattern[str]], ...] = ()

    def add_secret(self, secret: Secret | None) -> None:
        if secret and secret.reveal() not in {v for v, _ in self._values}:
            value = secret.reveal()
            # A whole token: not preceded or followed by a letter, digit or underscore.
            self._values = (*self._values, (value, re.compile(rf"(?<!\w){re.escape(value)}(?!\w)")))

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        return {k: (_MASK if k.lower() in _SECRET_KEYS else self._clean(v)) for k, v in event.items()}

    def _clean(self, value: object) -> Any:
        if isinstance(value, str):
            for secret, token in self._values:
                if secret in value:
                    value = token.sub(_MASK, value)
            return _BEARER.sub(r"\1" + _MASK, value)
        if isinstance(value, dict):
            return {
                k: (_MASK if str(k).lower() in _SECRET_KEYS else self._clean(v)) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        if isinstance(value, BaseException):
            return self._clean(f"{type(value).__name__}: {value}")
        return value


REDACTOR = Redactor()


class MalformedRequests(logging.Filter):
    """On aiohttp's server logger: a malformed request becomes one short warning, at most one per
    `every_s` (with how many were not logged since), without the traceback aiohttp attaches.

    Anything else that logger says (a bug in a handler) passes unchanged, traceback included.
    """

    def __init__(self, every_s: float = 60.0, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        now = self.clock.monotonic()
        if self._last is not None and now - self._last < self.every_s:
            self._suppressed += 1
            return False
        reason = (getattr(exc, "message", "") or type(exc).__name__).splitlines()[0][:120]
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg, record.args = "malformed HTTP request", ()
        record.exc_info, record.exc_text = None, None
        if record.levelno > logging.WARNING:  # aiohttp says ERROR; a non-HTTP first line it says at DEBUG
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.__dict__.update(
            reason=f"{type(exc).__name__}: {reason}", remote=str(remote), not_logged_since=self._suppressed
        )
        self._last, self._suppressed = now, 0
        return True


MALFORMED_REQUESTS = MalformedRequests()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of writing (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _exc_to_text(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    # Render tracebacks before redaction so that a key inside an exception's text is masked too.
    return structlog.processors.format_exc_info(logger, method, event)


def configure_logging(level: str = "info", fmt: str = "auto", secret: Secret | None = None) -> None:
    """Route structlog and stdlib logging through one formatter writing to stderr."""
    REDACTOR.add_secret(secret)
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    tail: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        tail.append(_exc_to_text)
    tail += [REDACTOR, renderer]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=tail)
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Per-request access lines would drown the state changes that matter.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server_log = logging.getLogger("aiohttp.server")
    if MALFORMED_REQUESTS not in server_log.filters:
        server_log.addFilter(MALFORMED_REQUESTS)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
