"""structlog set-up: JSON lines off a terminal, readable lines on one, and the key never written.

Every log line, ours and the stdlib's (aiohttp, APScheduler, Alembic), passes through the same
processors, the last of which redacts: by key name, by `Bearer ...` pattern, and by the key's own
value wherever it might have slipped into a string.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from monitor.secret import Secret

_MASK = "***"
_SECRET_KEYS = frozenset({"authorization", "api_key", "apikey", "key", "token", "password", "secret"})
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


class Redactor:
    """A processor that masks secrets in every value of an event, however deep."""

    def __init__(self) -> None:
        self._values: tuple[str, ...] = ()

    def add_secret(self, secret: Secret | None) -> None:
        if secret:
            self._values = (*self._values, secret.reveal())

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        return {k: (_MASK if k.lower() in _SECRET_KEYS else self._clean(v)) for k, v in event.items()}

    def _clean(self, value: object) -> Any:
        if isinstance(value, str):
            for secret in self._values:
                if secret in value:
                    value = value.replace(secret, _MASK)
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
