"""Probes: one coroutine per probe kind, each returning exactly one `ProbeResult` and never raising.

Every probe:

- refuses (outcome `not_probed`, no request made) a host its `AllowList` does not admit;
- runs under one overall `asyncio.timeout` covering connect, request, and reading the body;
- never follows a redirect (`allow_redirects=False`; a 3xx is `bad_response`), so the key can never
  be carried to a `Location`;
- reads a bounded number of bytes (`max_body_bytes`, `max_embedding_bytes` for embeddings);
- sends the API key only in the `Authorization` header of auth, completion and embedding requests
  (health requests carry no key), and never puts it, a header, or a body in `detail`.

Timings (milliseconds, `time.perf_counter()`; `started_at` is `time.time()`):

- `connect_ms`: time to open the connection (DNS + TCP + TLS) from the session's trace config
  (`monitor.http.make_session` installs it); 0.0 when a pooled connection was reused; None when the
  session has no such trace config or no connection was made.
- `ttft_ms` (completions only): from just before the request is sent (so it includes connecting)
  to the arrival of the first SSE `data:` event carrying a non-empty `choices` list. Any choice
  counts, whatever its delta holds (content, reasoning text or only the role): servers such as
  vLLM and llama.cpp send the first such chunk once the first token is computed, and a
  reasoning model asked for one token may never produce visible `content`.
- `total_ms`: from just before the request to the end of the probe (for a completion, `[DONE]`).

Streams: one JSON document per `data:` line (as OpenAI-compatible servers send); `event:`, `id:`,
`retry:` and comment lines are ignored. The stream is `ok` at `data: [DONE]` after at least one
choice; an `{"error": ...}` event, a stream that ends (or is cut) without `[DONE]`, and a stream
that produced a token but did not finish within the timeout are `stream_error`; an unparseable
chunk, a non-SSE 200, or more than `max_body_bytes` of stream are `bad_response`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import re
import time
from typing import Any, Final
from urllib.parse import quote

import aiohttp
from yarl import URL

from monitor.bodies import completion_body, embedding_body, new_nonce
from monitor.http import BodyTooLarge, ConnectTiming, classify_exception, read_bounded
from monitor.results import Outcome, ProbeKind, ProbeResult
from monitor.secret import Secret
from monitor.urls import AllowList

__all__ = [
    "DETAIL_MAX_CHARS",
    "Prober",
    "SseEvent",
    "SseStream",
    "classify_status",
    "completion_body",
    "embedding_body",
    "error_detail",
    "interpret_sse_line",
    "sanitise_detail",
    "valid_embedding",
]

KIB: Final = 1024
DETAIL_MAX_CHARS: Final = 120


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------


def classify_status(status: int, kind: ProbeKind) -> Outcome:
    """Map an HTTP status to an outcome for one probe kind.

    `OK` means only that the status is the expected one; the caller still validates the body.
    """
    if status == 200:
        return Outcome.OK
    if status == 202 and kind is ProbeKind.HEALTH:
        return Outcome.NOT_LOADED
    if status < 100 or status >= 600 or status < 400:
        return Outcome.BAD_RESPONSE  # 1xx, other 2xx, 3xx (redirects are never followed), nonsense
    if status >= 500:
        return Outcome.SERVER_ERROR
    if status in (401, 403):
        # A health request carries no key, so its 401/403 cannot be about the key.
        return Outcome.INVALID_REQUEST if kind is ProbeKind.HEALTH else Outcome.KEY_REJECTED
    if status == 402:
        return Outcome.PAYMENT_REQUIRED
    if status == 404:
        return Outcome.UNSUPPORTED if kind is ProbeKind.AUTH else Outcome.UNKNOWN_MODEL
    if status == 405 and kind is ProbeKind.AUTH:
        return Outcome.UNSUPPORTED
    if status == 408:
        return Outcome.TIMEOUT  # the server gave up waiting: a timeout, whoever noticed it
    if status == 429:
        return Outcome.RATE_LIMITED
    return Outcome.INVALID_REQUEST  # 422 and every other 4xx


_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
_CREDENTIAL_FIELD = re.compile(r"(?i)\b(authorization|api[-_ ]?key|token)(\"?\s*[:=]\s*\"?)[^\s\",}]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MIN_KEY_FRAGMENT: Final = 8


def sanitise_detail(text: str, secret: str = "") -> str:
    """Make server-provided text safe for `detail`: no key, no credential, one line, <= 120 chars.

    Removes the key itself and any fragment of it of 8 or more characters, `Bearer ...` values and
    `authorization=`/`api_key:`-style values; replaces control characters; truncates.
    """
    if secret:
        if len(secret) <= _MIN_KEY_FRAGMENT:
            text = text.replace(secret, "***")
        else:
            spans: list[tuple[int, int]] = []
            for i in range(len(secret) - _MIN_KEY_FRAGMENT + 1):
                fragment = secret[i : i + _MIN_KEY_FRAGMENT]
                start = text.find(fragment)
                while start >= 0:
                    spans.append((start, start + _MIN_KEY_FRAGMENT))
                    start = text.find(fragment, start + 1)
            if spans:
                spans.sort()
                out, pos = [], 0
                for start, end in spans:
                    if end <= pos:
                        continue
                    if start > pos:
                        out.append(text[pos:start])
                        out.append("***")
                    pos = max(pos, end)
                out.append(text[pos:])
                text = "".join(out)
    text = _BEARER.sub("Bearer ***", text)
    text = _CREDENTIAL_FIELD.sub(r"\1\2***", text)
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > DETAIL_MAX_CHARS:
        text = text[: DETAIL_MAX_CHARS - 3] + "..."
    return text


def _message_of(obj: Any) -> str | None:
    """The human message of a JSON error body: FastAPI `detail` (string or list) or OpenAI `error`."""
    if not isinstance(obj, dict):
        return None
    detail = obj.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        msg = detail[0].get("msg")
        if isinstance(msg, str):
            return msg
    error = obj.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return None


def error_detail(status: int, body: bytes | None, secret: str = "") -> str:
    """`HTTP 503`, or `HTTP 401: Invalid API key` when the body is JSON with a message in it.

    Only a message field of a JSON body is ever quoted (sanitised, truncated); HTML or any other
    body contributes nothing.
    """
    head = f"HTTP {status}"
    if 300 <= status < 400:
        return f"{head}: redirect not followed"
    if not body:
        return head
    try:
        message = _message_of(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        return head
    if not message:
        return head
    clean = sanitise_detail(message, secret)
    return f"{head}: {clean}" if clean else head


class SseEvent(enum.Enum):
    """What one line of an OpenAI-style SSE stream is."""

    IGNORE = "ignore"  # blank line, comment, or a non-data field (event:, id:, retry:)
    CHUNK = "chunk"  # a JSON object without choices (a usage-only chunk)
    TOKEN = "token"  # a JSON object with a non-empty choices list
    DONE = "done"  # data: [DONE]
    ERROR = "error"  # a JSON object with an "error" member
    MALFORMED = "malformed"  # data that is not a JSON object, or choices of the wrong type


def interpret_sse_line(line: bytes) -> tuple[SseEvent, str]:
    """Classify one line (without its newline) of a chat completion stream.

    Returns the event and, for ERROR and MALFORMED, a short unsanitised description.
    """
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line or line.startswith(b":"):
        return SseEvent.IGNORE, ""
    field, _, value = line.partition(b":")
    if field != b"data":
        return SseEvent.IGNORE, ""
    if value.startswith(b" "):
        value = value[1:]
    if value == b"[DONE]":
        return SseEvent.DONE, ""
    try:
        obj = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return SseEvent.MALFORMED, "unparseable stream chunk"
    if not isinstance(obj, dict):
        return SseEvent.MALFORMED, "stream chunk is not a JSON object"
    if obj.get("error"):
        return SseEvent.ERROR, _message_of(obj) or "error event"
    choices = obj.get("choices")
    if choices is None or choices == []:
        return SseEvent.CHUNK, ""
    if not isinstance(choices, list):
        return SseEvent.MALFORMED, "stream chunk choices is not a list"
    return SseEvent.TOKEN, ""


class SseStream:
    """Pure interpreter of a chat completion stream, fed one line at a time.

    `feed(line)` returns True once the stream is decided (`outcome`, `detail` set); `end()` is
    called at end of stream. `tokens` counts chunks with choices (the first one marks TTFT).
    `secret` is removed from any error message quoted in `detail`.
    """

    __slots__ = ("detail", "outcome", "secret", "tokens", "ttft_ms")

    def __init__(self, secret: str = "") -> None:
        self.tokens = 0
        self.ttft_ms: float | None = None  # set by the reader when the first token arrives
        self.outcome: Outcome | None = None
        self.detail = ""
        self.secret = secret

    def feed(self, line: bytes) -> bool:
        event, text = interpret_sse_line(line)
        if event is SseEvent.TOKEN:
            self.tokens += 1
            return False
        if event is SseEvent.IGNORE or event is SseEvent.CHUNK:
            return False
        if event is SseEvent.DONE:
            if self.tokens:
                self.outcome = Outcome.OK
            else:
                self.outcome, self.detail = Outcome.BAD_RESPONSE, "stream finished without any choices"
        elif event is SseEvent.ERROR:
            clean = sanitise_detail(text, self.secret)
            self.outcome = Outcome.STREAM_ERROR
            self.detail = f"error event: {clean}" if clean else "error event"
        else:
            self.outcome, self.detail = Outcome.BAD_RESPONSE, text
        return True

    def end(self) -> None:
        """The stream ended before it was decided."""
        if self.outcome is None:
            self.outcome, self.detail = Outcome.STREAM_ERROR, "stream ended without [DONE]"


def valid_embedding(obj: object) -> bool:
    """True if `obj` is an embeddings answer whose `data[0].embedding` is a non-empty number list."""
    if not isinstance(obj, dict):
        return False
    data = obj.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return False
    vector = data[0].get("embedding")
    return (
        isinstance(vector, list)
        and bool(vector)
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector)
    )


# ---------------------------------------------------------------------------------------------
# The prober
# ---------------------------------------------------------------------------------------------


class Prober:
    """Runs probes through a shared session. Each method returns one `ProbeResult`, never raises
    (except `asyncio.CancelledError`, which is always propagated).

    `allow` is defence in depth: a host it does not admit is answered `not_probed` without any
    request, even though the scheduler only asks for admitted hosts.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_key: Secret,
        timeout: float,
        max_body_bytes: int = 64 * KIB,
        *,
        allow: AllowList,
        max_embedding_bytes: int = 1024 * KIB,
    ) -> None:
        if timeout <= 0:
            raise ValueError("probe timeout must be positive")
        if max_body_bytes < 1 or max_embedding_bytes < 1:
            raise ValueError("byte bounds must be positive")
        self._session = session
        self._key = api_key
        self._timeout = timeout
        self._max_body = max_body_bytes
        self._max_embedding = max_embedding_bytes
        self._allow = allow

    def __repr__(self) -> str:
        return f"Prober(timeout={self._timeout}, allow={self._allow!r})"

    # -- public probes ------------------------------------------------------------------------

    async def health(self, host: str, model: str) -> ProbeResult:
        """GET {host}/health/{model}, no key: 200 ok, 202 not_loaded, 404 unknown_model."""
        return await self._run(ProbeKind.HEALTH, host, model)

    async def auth(self, host: str, model: str) -> ProbeResult:
        """GET {host}/libertai/auth/check with the key: 200 ok, 401/403 key_rejected, 404/405 unsupported."""
        return await self._run(ProbeKind.AUTH, host, model)

    async def completion(self, host: str, model: str, *, reasoning: bool = False) -> ProbeResult:
        """A streaming one-token chat completion (billed) of a fresh prompt; measures connect, TTFT
        and total time. `reasoning`: the base id of a reasoning model, asked with thinking off."""
        return await self._run(ProbeKind.COMPLETION, host, model, reasoning)

    async def embedding(self, host: str, model: str) -> ProbeResult:
        """POST {host}/v1/embeddings for "ping" (billed); checks data[0].embedding."""
        return await self._run(ProbeKind.EMBEDDING, host, model)

    async def probe(self, kind: ProbeKind, host: str, model: str, *, reasoning: bool = False) -> ProbeResult:
        """Run the probe of the given kind (`reasoning`: see `completion`)."""
        return await self._run(kind, host, model, reasoning)

    # -- internals ----------------------------------------------------------------------------

    def _request_args(
        self, kind: ProbeKind, host: str, model: str, reasoning: bool = False
    ) -> tuple[str, URL, dict[str, str], bytes | None]:
        quoted = quote(model, safe="")
        if kind is ProbeKind.HEALTH:
            return "GET", URL(f"{host}/health/{quoted}", encoded=True), {}, None
        auth = "Bearer " + self._key.reveal()
        if kind is ProbeKind.AUTH:
            return "GET", URL(f"{host}/libertai/auth/check", encoded=True), {"Authorization": auth}, None
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        if kind is ProbeKind.COMPLETION:
            headers["Accept"] = "text/event-stream"
            body = completion_body(model, new_nonce(), reasoning=reasoning)
            return "POST", URL(f"{host}/v1/chat/completions", encoded=True), headers, body
        return "POST", URL(f"{host}/v1/embeddings", encoded=True), headers, embedding_body(model)

    async def _run(self, kind: ProbeKind, host: str, model: str, reasoning: bool = False) -> ProbeResult:
        started_at = time.time()
        if not self._allow.admits(host):
            return ProbeResult(model, host, kind, Outcome.NOT_PROBED, started_at, detail="host not admitted")
        timing = ConnectTiming()
        status: int | None = None
        stream: SseStream | None = None
        t0 = time.perf_counter()
        try:
            method, url, headers, data = self._request_args(kind, host, model, reasoning)
            async with (
                asyncio.timeout(self._timeout),
                self._session.request(
                    method, url, headers=headers, data=data, allow_redirects=False, trace_request_ctx=timing
                ) as response,
            ):
                status = response.status
                outcome = classify_status(status, kind)
                if outcome is not Outcome.OK:
                    if kind is ProbeKind.HEALTH and outcome is Outcome.NOT_LOADED:
                        await self._drain(response)
                        detail = ""
                    else:
                        detail = await self._error_detail(response)
                elif kind is ProbeKind.COMPLETION:
                    stream = SseStream(self._key.reveal())
                    outcome, detail = await self._read_stream(response, stream, t0)
                elif kind is ProbeKind.EMBEDDING:
                    outcome, detail = await self._read_embedding(response)
                else:
                    await self._drain(response)
                    detail = ""
        except Exception as exc:  # never raise; CancelledError is a BaseException and propagates
            outcome, detail = classify_exception(exc)
            if status is not None:
                outcome, detail = self._failure_after_headers(exc, outcome, detail, kind, status, stream)
        total_ms = (time.perf_counter() - t0) * 1000.0
        ttft_ms = None if stream is None else stream.ttft_ms
        connect_ms = None if timing.connect_s is None else timing.connect_s * 1000.0
        return ProbeResult(
            model, host, kind, outcome, started_at, status, connect_ms, ttft_ms, total_ms, detail
        )

    @staticmethod
    def _failure_after_headers(
        exc: Exception, outcome: Outcome, detail: str, kind: ProbeKind, status: int, stream: SseStream | None
    ) -> tuple[Outcome, str]:
        """Reclassify a failure that happened while reading a body whose headers had arrived.

        When the status alone decides the outcome (an error status, or any answer to a health or
        auth probe, whose body is read only to reuse the connection), a failed read changes nothing.
        """
        by_status = classify_status(status, kind)
        if by_status is not Outcome.OK:
            return by_status, error_detail(status, None)
        if kind is ProbeKind.HEALTH or kind is ProbeKind.AUTH:
            return by_status, ""
        if outcome is Outcome.TIMEOUT:
            if stream is not None and stream.tokens:
                return Outcome.STREAM_ERROR, "stream unfinished at timeout"
            return outcome, detail
        if outcome is Outcome.CONNECT_ERROR or isinstance(exc, aiohttp.ClientPayloadError):
            name = type(exc).__name__
            if stream is not None:
                return Outcome.STREAM_ERROR, f"stream cut: {name}"
            return Outcome.BAD_RESPONSE, f"body cut: {name}"
        return outcome, detail

    async def _drain(self, response: aiohttp.ClientResponse) -> None:
        """Read and discard a small body so the connection can be reused; a big one is abandoned."""
        with contextlib.suppress(BodyTooLarge):
            await read_bounded(response, self._max_body)

    async def _error_detail(self, response: aiohttp.ClientResponse) -> str:
        status = response.status
        if 300 <= status < 400:
            return error_detail(status, None)
        try:
            body: bytes | None = await read_bounded(response, self._max_body)
        except BodyTooLarge:
            body = None
        return error_detail(status, body, self._key.reveal())

    async def _read_embedding(self, response: aiohttp.ClientResponse) -> tuple[Outcome, str]:
        body = await read_bounded(response, self._max_embedding)
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return Outcome.BAD_RESPONSE, "embedding answer is not JSON"
        if not valid_embedding(obj):
            return Outcome.BAD_RESPONSE, "no data[0].embedding list of numbers"
        return Outcome.OK, ""

    async def _read_stream(
        self, response: aiohttp.ClientResponse, stream: SseStream, t0: float
    ) -> tuple[Outcome, str]:
        """Read an SSE body line by line to its decision, within `max_body_bytes`."""
        if response.content_type != "text/event-stream":
            return Outcome.BAD_RESPONSE, "answer is not an SSE stream"
        content = response.content
        limit = self._max_body
        pending = b""
        size = 0
        while True:
            chunk = await content.readany()
            if not chunk:
                if pending:
                    stream.feed(pending)
                stream.end()
                break
            arrived = time.perf_counter()
            size += len(chunk)
            if size > limit:
                return Outcome.BAD_RESPONSE, f"stream exceeds {limit} bytes"
            *lines, pending = (pending + chunk).split(b"\n")
            decided = False
            for line in lines:
                decided = stream.feed(line)
                if stream.ttft_ms is None and stream.tokens:
                    stream.ttft_ms = (arrived - t0) * 1000.0
                if decided:
                    break
            if decided:
                break
        return stream.outcome or Outcome.STREAM_ERROR, stream.detail
