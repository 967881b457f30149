"""What a 200 answer's body means: the SSE stream of a chat completion, and an embeddings answer.

Streams: one JSON document per `data:` line (as OpenAI-compatible servers send); `event:`, `id:`,
`retry:` and comment lines are ignored. The stream is `ok` at `data: [DONE]` after at least one
choice; an `{"error": ...}` event and a stream that ends without `[DONE]` are `stream_error`; an
unparseable chunk is `bad_response`. A stream read for its throughput also keeps when each chunk
carrying text arrived and the host's count of the tokens it sent (`monitor.core.throughput`).
Pure: the reader in `monitor.probe.prober` feeds it lines and their arrival times.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

from monitor.core.results import Outcome
from monitor.core.throughput import Throughput, measure
from monitor.probe.classify import json_message, sanitise_detail

__all__ = ["SseEvent", "SseStream", "interpret_sse_line", "text_chunk", "usage_tokens", "valid_embedding"]


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
    event, text, _ = _read_line(line)
    return event, text


_NO_CHUNK: dict[str, Any] = {}


def _read_line(line: bytes) -> tuple[SseEvent, str, Mapping[str, Any]]:
    """`interpret_sse_line`, and the chunk itself for CHUNK and TOKEN (else an empty mapping)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line or line.startswith(b":"):
        return SseEvent.IGNORE, "", _NO_CHUNK
    field, _, value = line.partition(b":")
    if field != b"data":
        return SseEvent.IGNORE, "", _NO_CHUNK
    if value.startswith(b" "):
        value = value[1:]
    if value == b"[DONE]":
        return SseEvent.DONE, "", _NO_CHUNK
    try:
        obj = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return SseEvent.MALFORMED, "unparseable stream chunk", _NO_CHUNK
    if not isinstance(obj, dict):
        return SseEvent.MALFORMED, "stream chunk is not a JSON object", _NO_CHUNK
    if obj.get("error"):
        return SseEvent.ERROR, json_message(obj) or "error event", _NO_CHUNK
    choices = obj.get("choices")
    if choices is None or choices == []:
        return SseEvent.CHUNK, "", obj
    if not isinstance(choices, list):
        return SseEvent.MALFORMED, "stream chunk choices is not a list", _NO_CHUNK
    return SseEvent.TOKEN, "", obj


def text_chunk(obj: Mapping[str, Any]) -> bool:
    """Whether a stream chunk carries generated text (chat delta content or reasoning, or a legacy
    completion's text)."""
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(
            isinstance(delta.get(k), str) and delta.get(k)
            for k in ("content", "reasoning_content", "reasoning")
        ):
            return True
        if isinstance(choice.get("text"), str) and choice["text"]:
            return True
    return False


def usage_tokens(obj: Mapping[str, Any]) -> int | None:
    """The host's count of the tokens it generated, if a chunk says it (`usage.completion_tokens`)."""
    usage = obj.get("usage")
    if isinstance(usage, dict):
        n = usage.get("completion_tokens")
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            return n
    return None


class SseStream:
    """Pure interpreter of a chat completion stream, fed one line at a time.

    `feed(line, at)` returns True once the stream is decided (`outcome`, `detail` set); `end()` is
    called at end of stream. `tokens` counts chunks with choices (the first one marks TTFT).
    `secret` is removed from any error message quoted in `detail`. A `timed` stream also keeps
    the arrival times `at` (seconds, any origin) of the chunks that carry text, and the host's
    token count: its `throughput()`.
    """

    __slots__ = ("_arrivals", "_usage", "detail", "outcome", "secret", "tokens", "ttft_ms")

    def __init__(self, secret: str = "", *, timed: bool = False) -> None:
        self.tokens = 0
        self.ttft_ms: float | None = None  # set by the reader when the first token arrives
        self.outcome: Outcome | None = None
        self.detail = ""
        self.secret = secret
        self._arrivals: list[float] | None = [] if timed else None
        self._usage: int | None = None

    def feed(self, line: bytes, at: float = 0.0) -> bool:
        event, text, obj = _read_line(line)
        if event is SseEvent.TOKEN or event is SseEvent.CHUNK:
            if self._arrivals is not None:
                if event is SseEvent.TOKEN and text_chunk(obj):
                    self._arrivals.append(at)
                if self._usage is None:
                    self._usage = usage_tokens(obj)
            if event is SseEvent.TOKEN:
                self.tokens += 1
            return False
        if event is SseEvent.IGNORE:
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

    def throughput(self) -> Throughput | None:
        """What a timed stream that ended `ok` measured; None for any other."""
        if self._arrivals is None or self.outcome is not Outcome.OK:
            return None
        return measure(self._arrivals, self._usage)


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
