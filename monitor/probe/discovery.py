"""Discovery: fetch the gateway's `GET /libertai/models`, validate and normalise it.

The gateway answers `{"model-id": {"servers": ["https://host", ...]}, ...}`; entries may carry
other members, which are ignored. `fetch_models` never raises for a network, HTTP, JSON or shape
problem: it returns a `DiscoveryResult` with `ok=False` and a short error, and the caller keeps
its last good list (a gateway outage is not a host outage). The listing is public, so no key is
sent with it; `check_gateway_key` is the one call that sends the key to the gateway.
"""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import aiohttp

from monitor.core.results import Outcome, ProbeKind
from monitor.core.secret import Secret
from monitor.core.steps import Steps
from monitor.core.upstream import THINKING_SUFFIX
from monitor.core.urls import normalise_url
from monitor.logging import get_logger
from monitor.probe.classify import block_reason, classify_status
from monitor.probe.http import BodyTooLarge, classify_exception, read_bounded
from monitor.slices import run_in_slices

_KEY_BODY_BYTES = 16 * 1024  # a key check's error body: a short JSON object

__all__ = [
    "MAX_LISTING_BYTES",
    "THINKING_SUFFIX",
    "DiscoveryError",
    "DiscoveryResult",
    "ListingWarnings",
    "alias_of",
    "check_gateway_key",
    "fetch_models",
    "gateway_key_status",
    "parse_models",
]

MAX_LISTING_BYTES = 4 * 1024 * 1024
MAX_MODEL_ID_CHARS = 200
MAX_WARNINGS_SHOWN = 20
# Servers checked per step of a listing: the loop turns between steps (monitor.slices).
URLS_PER_STEP = 1000

log = get_logger("monitor.probe.discovery")


class DiscoveryError(ValueError):
    """The gateway's answer cannot be used; `reason` is short and secret-free."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """One discovery attempt. `models` is set only when `ok`; `error` only when not."""

    ok: bool
    models: dict[str, tuple[str, ...]] | None
    error: str | None
    duration_s: float
    fetched_at: float  # epoch seconds at the start of the request
    warnings: tuple[str, ...] = field(default=())


def _short(text: str, limit: int = 60) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _valid_id(model_id: str) -> bool:
    """Printable Unicode only: no controls, format characters, separators (whitespace) or lone
    surrogates (JSON's "\\ud800" decodes to one; it cannot be encoded, so it would break every
    metrics scrape and every database batch it reached)."""
    if len(model_id) > MAX_MODEL_ID_CHARS:
        return False
    return not any(unicodedata.category(ch)[0] in "CZ" for ch in model_id)


def parse_models(payload: object, warnings: list[str] | None = None) -> Steps[dict[str, tuple[str, ...]]]:
    """Validate and normalise the gateway's listing: model id -> normalised server URLs, in steps
    (one per model and per `URLS_PER_STEP` servers).

    A wrong overall shape raises `DiscoveryError`: not an object, an empty object (never wipe the
    list), an empty model id, an entry that is not an object, or `servers` missing or not a list of
    strings. Smaller problems are skipped and described in `warnings` (when given): a server URL
    that does not normalise, a model id over 200 characters or holding anything but printable
    Unicode (whitespace, control or format characters, lone surrogates). URLs are normalised,
    duplicates merged, first-seen order kept. A model whose list is empty (or became empty) is kept
    with no servers.
    """
    if not isinstance(payload, dict):
        raise DiscoveryError("listing is not a JSON object")
    if not payload:
        raise DiscoveryError("listing is empty")
    notes = warnings if warnings is not None else []
    models: dict[str, tuple[str, ...]] = {}
    for model_id, entry in payload.items():
        if not isinstance(model_id, str) or not model_id.strip():
            raise DiscoveryError("empty model id")
        if not isinstance(entry, dict):
            raise DiscoveryError(f"model {_short(model_id)}: entry is not an object")
        servers = entry.get("servers")
        if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
            raise DiscoveryError(f"model {_short(model_id)}: servers is not a list of strings")
        if not _valid_id(model_id):
            notes.append(f"model {_short(model_id)}: invalid model id skipped")
            continue
        urls: dict[str, None] = {}
        for n, raw in enumerate(servers, 1):
            try:
                urls[normalise_url(raw)] = None
            except ValueError as exc:
                notes.append(f"model {_short(model_id)}: server skipped: {exc}")
            if n % URLS_PER_STEP == 0:
                yield None
        models[model_id] = tuple(urls)
        yield None
    if not models:
        raise DiscoveryError("listing has no valid model")
    return models


def _parse_body(body: bytes) -> Steps[tuple[dict[str, tuple[str, ...]], list[str]]]:
    warnings: list[str] = []
    # One C call that holds the GIL however it is run, then the checks in steps on the loop.
    payload = json.loads(body)
    yield None
    return (yield from parse_models(payload, warnings)), warnings


class ListingWarnings:
    """Logs what a listing had to skip, once per change: not on every poll, never dropped.

    A gateway that keeps listing the same bad entry says so once; a new or a cleared problem is
    logged again. The lines hold `repr`s of what was skipped, never its raw characters.
    """

    def __init__(self) -> None:
        self._last: frozenset[str] = frozenset()

    def note(self, warnings: Sequence[str]) -> bool:
        """Log `warnings` if they differ from the last ones noted; True when something was logged."""
        current = frozenset(warnings)
        if current == self._last:
            return False
        new = sorted(current - self._last)
        self._last = current
        if not current:
            log.info("the gateway's listing has nothing to skip any more")
        else:
            log.warning(
                "discovery skipped entries of the gateway's listing",
                skipped=len(current),
                new=new[:MAX_WARNINGS_SHOWN],
                more=max(0, len(new) - MAX_WARNINGS_SHOWN),
            )
        return True


# Used when the caller gives none: one process polls one gateway.
LISTING_WARNINGS = ListingWarnings()


def alias_of(model_id: str, all_ids: Collection[str]) -> str:
    """The id to probe for `model_id`: `X` for `X-thinking` when `X` is listed too, else itself.

    Hosts do not know `-thinking` ids (they answer 404); the gateway lists each reasoning model
    twice with the same servers. The monitor probes the base id once (on every host listed under
    either id) and reports the result under both.
    """
    if model_id.endswith(THINKING_SUFFIX):
        base = model_id[: -len(THINKING_SUFFIX)]
        if base and base in all_ids:
            return base
    return model_id


def _endpoint(gateway_url: str, path: str) -> str:
    return gateway_url.rstrip("/") + path


async def fetch_models(
    session: aiohttp.ClientSession,
    gateway_url: str,
    timeout: float,  # noqa: ASYNC109 - the contract's signature; applied with asyncio.timeout
    max_bytes: int = MAX_LISTING_BYTES,
    listing_warnings: ListingWarnings | None = None,
) -> DiscoveryResult:
    """GET `{gateway_url}/libertai/models` and validate it. Never raises (but CancelledError).

    No Authorization header (the listing is public), no redirects, at most `max_bytes` read, one
    overall timeout covering connect and body. The body is decoded, then validated in steps on the
    loop (outside the timeout: a listing read in time is not thrown away for the time its checks
    take). What was skipped is logged through `listing_warnings` (once per change).
    """
    fetched_at = time.time()
    t0 = time.perf_counter()
    error: str
    try:
        async with (
            asyncio.timeout(timeout),
            session.get(_endpoint(gateway_url, "/libertai/models"), allow_redirects=False) as response,
        ):
            status = response.status
            if status != 200:
                error = f"HTTP {status}" + (": redirect not followed" if 300 <= status < 400 else "")
                return DiscoveryResult(False, None, error, time.perf_counter() - t0, fetched_at)
            body = await read_bounded(response, max_bytes)
        models, warnings = await run_in_slices(_parse_body(body))
        (listing_warnings or LISTING_WARNINGS).note(warnings)
        return DiscoveryResult(True, models, None, time.perf_counter() - t0, fetched_at, tuple(warnings))
    except DiscoveryError as exc:
        error = f"invalid listing: {exc.reason}"
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        error = f"invalid JSON ({type(exc).__name__})"
    except BodyTooLarge:
        error = f"listing exceeds {max_bytes} bytes"
    except TimeoutError:
        error = f"timeout after {timeout:g} s"
    except Exception as exc:  # never raise; CancelledError is a BaseException and propagates
        outcome, detail = classify_exception(exc)
        error = f"{outcome.value}: {detail}"
    return DiscoveryResult(False, None, error, time.perf_counter() - t0, fetched_at)


async def check_gateway_key(
    session: aiohttp.ClientSession,
    gateway_url: str,
    api_key: Secret,
    timeout: float,  # noqa: ASYNC109 - the contract's signature; applied with asyncio.timeout
) -> Outcome:
    """GET `{gateway_url}/libertai/auth/check` with the key: ok, key_rejected, or why it failed.

    404/405 -> unsupported; a 403 with a reason -> key_blocked; other statuses as `classify_status`
    maps them for an auth probe; timeouts and transport errors -> timeout, connect_error, tls_error.
    Never raises (but CancelledError); never follows a redirect.
    """
    return (await gateway_key_status(session, gateway_url, api_key, timeout))[0]


async def gateway_key_status(
    session: aiohttp.ClientSession,
    gateway_url: str,
    api_key: Secret,
    timeout: float,  # noqa: ASYNC109 - applied with asyncio.timeout
) -> tuple[Outcome, str]:
    """`check_gateway_key`'s outcome, and the reason of a `key_blocked` (sanitised; else "")."""
    headers = {"Authorization": "Bearer " + api_key.reveal()}
    try:
        async with (
            asyncio.timeout(timeout),
            session.get(
                _endpoint(gateway_url, "/libertai/auth/check"), headers=headers, allow_redirects=False
            ) as response,
        ):
            outcome = classify_status(response.status, ProbeKind.AUTH)
            if response.status != 403:
                return outcome, ""
            try:
                body: bytes | None = await read_bounded(response, _KEY_BODY_BYTES)
            except BodyTooLarge:
                body = None
            reason = block_reason(response.status, body, api_key.reveal())
            return (outcome, "") if reason is None else (Outcome.KEY_BLOCKED, reason)
    except Exception as exc:
        return classify_exception(exc)[0], ""
