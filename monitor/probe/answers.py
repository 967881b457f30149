"""What a 200 answer's body means: the SSE stream of a chat completion, and an embeddings answer.

Streams: one JSON document per `data:` line (as OpenAI-compatible servers send); `event:`, `id:`,
`retry:` and comment lines are ignored. The stream is `ok` at `data: [DONE]` after at least one
choice; an `{"error": ...}` event and a stream that ends without `[DONE]` are `stream_error`; an
unparseable chunk is `bad_response`. Pure: the reader in `monitor.probe.prober` feeds it lines.
"""

from __future__ import annotations

import enum
import json

from monitor.core.results import Outcome
from monitor.probe.classify import json_message, sanitise_detail

__all__ = ["SseEvent", "SseStream", "interpret_sse_line", "valid_embedding"]


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
        return SseEvent.ERROR, json_message(obj) or "error event"
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
