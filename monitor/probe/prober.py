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
  (`monitor.probe.http.make_session` installs it); 0.0 when a pooled connection was reused; None when the
  session has no such trace config or no connection was made.
- `ttft_ms` (completions only): from just before the request is sent (so it includes connecting)
  to the arrival of the first SSE `data:` event carrying a non-empty `choices` list. Any choice
  counts, whatever its delta holds (content, reasoning text or only the role): servers such as
  vLLM and llama.cpp send the first such chunk once the first token is computed, and a
  reasoning model asked for one token may never produce visible `content`.
- `total_ms`: from just before the request to the end of the probe (for a completion, `[DONE]`).

An identity probe is a fixed prompt, not streamed, read as a `Fingerprint` (`monitor.probe.identity`).

A throughput probe is a completion of `throughput_tokens` tokens read by the same stream reader,
which also times the chunks that carry text; its result's `throughput` is what they measure
(`monitor.core.throughput`). Its stream may be up to `max_stream_bytes` long.

Streams: one JSON document per `data:` line (as OpenAI-compatible servers send); `event:`, `id:`,
`retry:` and comment lines are ignored. The stream is `ok` at `data: [DONE]` after at least one
choice; an `{"error": ...}` event, a stream that ends (or is cut) without `[DONE]`, and a stream
that produced a token but did not finish within the timeout are `stream_error`; an unparseable
chunk, a non-SSE 200, or more than `max_body_bytes` of stream are `bad_response`.
(The pure interpretation of statuses and bodies is in `monitor.probe.classify` and
`monitor.probe.answers`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Final

import aiohttp
from yarl import URL

from monitor.core.identity import Fingerprint
from monitor.core.paths import OPTIONAL_PATHS, PathAnswer, Paths, path_answer
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.secret import Secret
from monitor.core.urls import AllowList
from monitor.probe.answers import SseStream, valid_embedding
from monitor.probe.bodies import request_args
from monitor.probe.certs import CertWatch, peer_cert
from monitor.probe.classify import (
    block_reason,
    body_message,
    classify_status,
    error_detail,
)
from monitor.probe.http import BodyTooLarge, ConnectTiming, classify_exception, read_bounded
from monitor.probe.identity import read_fingerprint

KIB: Final = 1024
_NOT_ACCEPTED: Final = "certificate changed: not accepted (certs accept), the key was not sent"


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
        throughput_tokens: int = 16,
        max_stream_bytes: int = 256 * KIB,
        certs: CertWatch | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("probe timeout must be positive")
        if max_body_bytes < 1 or max_embedding_bytes < 1 or max_stream_bytes < 1:
            raise ValueError("byte bounds must be positive")
        if throughput_tokens < 1:
            raise ValueError("a throughput probe asks for at least one token")
        self._session = session
        self._key = api_key
        self._timeout = timeout
        self._max_body = max_body_bytes
        self._max_embedding = max_embedding_bytes
        self._max_stream = max_stream_bytes
        self._throughput_tokens = throughput_tokens
        self._allow = allow
        # Certificates seen are reported to it; a keyed request to a pinned host carries the pin.
        self._certs = certs

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

    async def throughput(self, host: str, model: str, *, reasoning: bool = False) -> ProbeResult:
        """A streaming chat completion of `throughput_tokens` tokens (billed) of a fresh prompt; its
        `throughput` when it ends `ok`. `reasoning`: as for `completion`."""
        return await self._run(ProbeKind.THROUGHPUT, host, model, reasoning)

    async def embedding(self, host: str, model: str) -> ProbeResult:
        """POST {host}/v1/embeddings for "ping" (billed); checks data[0].embedding."""
        return await self._run(ProbeKind.EMBEDDING, host, model)

    async def paths(self, host: str, model: str) -> ProbeResult:
        """Which of `OPTIONAL_PATHS` the host accepts for `model` (free: `monitor.core.paths`).

        One request per path, in turn, each under the probe timeout. The result is `ok` when every
        path was decided; else the outcome of the first that was not (the paths decided are kept).
        """
        started_at = time.time()
        if not self._allow.admits(host):
            return ProbeResult(
                model, host, ProbeKind.PATHS, Outcome.NOT_PROBED, started_at, detail="host not admitted"
            )
        t0 = time.perf_counter()
        answers: list[tuple[str, PathAnswer]] = []
        outcome, detail, status = Outcome.OK, "", None
        for path in OPTIONAL_PATHS:
            answer, why, said, code = await self._path(host, path, model)
            answers.append((path, answer))
            if answer is PathAnswer.UNKNOWN and outcome is Outcome.OK:
                outcome, detail, status = why, said, code
        total_ms = (time.perf_counter() - t0) * 1000.0
        return ProbeResult(
            model,
            host,
            ProbeKind.PATHS,
            outcome,
            started_at,
            status,
            None,
            None,
            total_ms,
            detail,
            paths=Paths.of(answers),
        )

    async def probe(self, kind: ProbeKind, host: str, model: str, *, reasoning: bool = False) -> ProbeResult:
        """Run the probe of the given kind (`reasoning`: see `completion`)."""
        if kind is ProbeKind.PATHS:
            return await self.paths(host, model)
        return await self._run(kind, host, model, reasoning)

    # -- internals ----------------------------------------------------------------------------

    async def _path(self, host: str, path: str, model: str) -> tuple[PathAnswer, Outcome, str, int | None]:
        """(what the answer says of `path`, the outcome of the request, its detail, its status)."""
        headers = {"Authorization": "Bearer " + self._key.reveal(), "Content-Type": "application/json"}
        # Only the model: every server that accepts the path rejects this body before inference.
        data = json.dumps({"model": model}).encode()
        url = URL(f"{host}{path}", encoded=True)
        pin = self._pin(ProbeKind.PATHS, host)
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session.post(
                    url, headers=headers, data=data, allow_redirects=False, ssl=True if pin is None else pin
                ) as response,
            ):
                status = response.status
                try:
                    body: bytes | None = await read_bounded(response, self._max_body)
                except BodyTooLarge:
                    body = None
        except Exception as exc:  # never raise; CancelledError is a BaseException and propagates
            outcome, detail = classify_exception(exc)
            if isinstance(exc, aiohttp.ServerFingerprintMismatch):
                detail = _NOT_ACCEPTED
            return PathAnswer.UNKNOWN, outcome, detail, None
        answer = path_answer(status, body_message(body))
        if answer is not PathAnswer.UNKNOWN:
            return answer, Outcome.OK, "", status
        reason = block_reason(status, body, self._key.reveal())
        if reason is not None:
            return answer, Outcome.KEY_BLOCKED, reason, status
        return (
            answer,
            classify_status(status, ProbeKind.COMPLETION),
            error_detail(status, body, self._key.reveal()),
            status,
        )

    async def _run(self, kind: ProbeKind, host: str, model: str, reasoning: bool = False) -> ProbeResult:
        started_at = time.time()
        if not self._allow.admits(host):
            return ProbeResult(model, host, kind, Outcome.NOT_PROBED, started_at, detail="host not admitted")
        timing = ConnectTiming()
        status: int | None = None
        stream: SseStream | None = None
        fingerprint: Fingerprint | None = None
        t0 = time.perf_counter()
        pin = self._pin(kind, host)
        try:
            method, url, headers, data = request_args(
                kind, host, model, self._key, reasoning=reasoning, throughput_tokens=self._throughput_tokens
            )
            async with (
                asyncio.timeout(self._timeout),
                self._session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    trace_request_ctx=timing,
                    ssl=True if pin is None else pin,
                ) as response,
            ):
                status = response.status
                if self._certs is not None and pin is None and timing.connect_s != 0.0:
                    self._note_cert(response, host, model, started_at)
                outcome = classify_status(status, kind)
                if outcome is not Outcome.OK:
                    if kind is ProbeKind.HEALTH and outcome is Outcome.NOT_LOADED:
                        await self._drain(response)
                        detail = ""
                    else:
                        outcome, detail = await self._error_detail(response, outcome)
                elif kind is ProbeKind.COMPLETION or kind is ProbeKind.THROUGHPUT:
                    timed = kind is ProbeKind.THROUGHPUT
                    stream = SseStream(self._key.reveal(), timed=timed)
                    limit = self._max_stream if timed else self._max_body
                    outcome, detail = await self._read_stream(response, stream, t0, limit)
                elif kind is ProbeKind.EMBEDDING:
                    outcome, detail = await self._read_embedding(response)
                elif kind is ProbeKind.IDENTITY:
                    read = read_fingerprint(await read_bounded(response, self._max_body))
                    outcome, detail = (
                        (Outcome.BAD_RESPONSE, read) if isinstance(read, str) else (Outcome.OK, "")
                    )
                    fingerprint = None if isinstance(read, str) else read
                else:
                    await self._drain(response)
                    detail = ""
        except Exception as exc:  # never raise; CancelledError is a BaseException and propagates
            outcome, detail = classify_exception(exc)
            if isinstance(exc, aiohttp.ServerFingerprintMismatch):
                detail = _NOT_ACCEPTED
            if status is not None:
                outcome, detail = self._failure_after_headers(exc, outcome, detail, kind, status, stream)
        total_ms = (time.perf_counter() - t0) * 1000.0
        ttft_ms = None if stream is None else stream.ttft_ms
        connect_ms = None if timing.connect_s is None else timing.connect_s * 1000.0
        measured = None if stream is None or outcome is not Outcome.OK else stream.throughput()
        return ProbeResult(
            model,
            host,
            kind,
            outcome,
            started_at,
            status,
            connect_ms,
            ttft_ms,
            total_ms,
            detail,
            measured,
            fingerprint if outcome is Outcome.OK else None,
        )

    def _note_cert(self, response: aiohttp.ClientResponse, host: str, model: str, at: float) -> None:
        """Report the certificate of a new connection (a pooled one was reported when opened)."""
        cert = peer_cert(response)
        if cert is not None and self._certs is not None:
            self._certs.seen(host, model, cert, at)

    def _pin(self, kind: ProbeKind, host: str) -> aiohttp.Fingerprint | None:
        """The pinned certificate a keyed request to `host` must find before the key is sent:
        aiohttp compares it right after the handshake, before writing the request."""
        if self._certs is None or kind is ProbeKind.HEALTH or not host.startswith("https://"):
            return None
        pinned = self._certs.pin(host)
        return None if pinned is None else aiohttp.Fingerprint(bytes.fromhex(pinned))

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

    async def _error_detail(self, response: aiohttp.ClientResponse, outcome: Outcome) -> tuple[Outcome, str]:
        """(outcome, detail) of an error answer: a 403 with a reason is `key_blocked`, its detail
        the reason alone."""
        status = response.status
        if 300 <= status < 400:
            return outcome, error_detail(status, None)
        try:
            body: bytes | None = await read_bounded(response, self._max_body)
        except BodyTooLarge:
            body = None
        reason = block_reason(status, body, self._key.reveal())
        if reason is not None:
            return Outcome.KEY_BLOCKED, reason
        return outcome, error_detail(status, body, self._key.reveal())

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
        self, response: aiohttp.ClientResponse, stream: SseStream, t0: float, limit: int
    ) -> tuple[Outcome, str]:
        """Read an SSE body line by line to its decision, within `limit` bytes."""
        if response.content_type != "text/event-stream":
            return Outcome.BAD_RESPONSE, "answer is not an SSE stream"
        content = response.content
        pending = b""
        size = 0
        while True:
            chunk = await content.readany()
            if not chunk:
                if pending:
                    stream.feed(pending, time.perf_counter())
                stream.end()
                break
            arrived = time.perf_counter()
            size += len(chunk)
            if size > limit:
                return Outcome.BAD_RESPONSE, f"stream exceeds {limit} bytes"
            *lines, pending = (pending + chunk).split(b"\n")
            decided = False
            for line in lines:
                decided = stream.feed(line, arrived)
                if stream.ttft_ms is None and stream.tokens:
                    stream.ttft_ms = (arrived - t0) * 1000.0
                if decided:
                    break
            if decided:
                break
        return stream.outcome or Outcome.STREAM_ERROR, stream.detail
