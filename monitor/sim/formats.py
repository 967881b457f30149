"""Wire formats a CRN host answers in: OpenAI chat/completions (JSON and SSE), Anthropic messages
(JSON and SSE events), embeddings. Bytes are built from precomputed pieces: the simulator must add
almost no delay of its own.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import struct
import time
from typing import Any, Protocol

_WORDS = (
    "Hello",
    " from",
    " a",
    " simulated",
    " LibertAI",
    " host",
    ".",
    " The",
    " network",
    " is",
    " private",
    " and",
    " decentralised",
    ",",
    " like",
    " the",
    " real",
    " one",
)
_WORDS_JSON = tuple(json.dumps(w) for w in _WORDS)
_ids = itertools.count(1)


def word(i: int) -> str:
    return _WORDS[i % len(_WORDS)]


def _word_json(i: int) -> str:
    return _WORDS_JSON[i % len(_WORDS_JSON)]


def text_of(n_tokens: int) -> str:
    return "".join(word(i) for i in range(n_tokens))


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class StreamFormat(Protocol):
    """One streamed answer: the first token, each further token, the normal end, a mid-stream error."""

    def first(self) -> bytes: ...
    def token(self, i: int) -> bytes: ...
    def end(self, n_tokens: int, finish_reason: str) -> bytes: ...
    def error(self) -> bytes: ...
    def bad(self) -> bytes: ...
    def complete(self, n_tokens: int, finish_reason: str) -> bytes: ...


class ChatFormat:
    """OpenAI `chat.completion` / `chat.completion.chunk`."""

    __slots__ = ("_created", "_head", "_id", "_include_usage", "_model", "_prompt_tokens")

    def __init__(self, model: str, prompt_tokens: int, include_usage: bool) -> None:
        self._id = f"chatcmpl-sim{next(_ids)}"
        self._created = int(time.time())
        self._model = model
        self._prompt_tokens = prompt_tokens
        self._include_usage = include_usage
        self._head = (
            f'data: {{"id":"{self._id}","object":"chat.completion.chunk","created":{self._created},'
            f'"model":{json.dumps(model)},"system_fingerprint":null,"choices":[{{"index":0,'
        )

    def first(self) -> bytes:
        return (
            f'{self._head}"delta":{{"role":"assistant","content":{_word_json(0)}}},'
            '"logprobs":null,"finish_reason":null}]}\n\n'
        ).encode()

    def token(self, i: int) -> bytes:
        return (
            f'{self._head}"delta":{{"content":{_word_json(i)}}},"logprobs":null,"finish_reason":null}}]}}\n\n'
        ).encode()

    def _usage(self, n: int) -> dict[str, int]:
        return {
            "prompt_tokens": self._prompt_tokens,
            "completion_tokens": n,
            "total_tokens": self._prompt_tokens + n,
        }

    def end(self, n_tokens: int, finish_reason: str) -> bytes:
        out = f'{self._head}"delta":{{}},"logprobs":null,"finish_reason":"{finish_reason}"}}]}}\n\n'
        if self._include_usage:
            usage = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": self._usage(n_tokens),
            }
            out += f"data: {json.dumps(usage, separators=(',', ':'))}\n\n"
        return (out + "data: [DONE]\n\n").encode()

    def error(self) -> bytes:
        err = {
            "error": {"message": "upstream model crashed mid-generation", "type": "server_error", "code": 500}
        }
        return b"data: " + dumps(err) + b"\n\n"

    def bad(self) -> bytes:
        return b'data: {"id": "chatcmpl-broken", "choices": [\n\n'

    def complete(self, n_tokens: int, finish_reason: str) -> bytes:
        return dumps(
            {
                "id": self._id,
                "object": "chat.completion",
                "created": self._created,
                "model": self._model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text_of(n_tokens)},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": self._usage(n_tokens),
            }
        )


class CompletionFormat:
    """OpenAI legacy `text_completion`."""

    __slots__ = ("_chat", "_created", "_head", "_id", "_model")

    def __init__(self, model: str, prompt_tokens: int, include_usage: bool) -> None:
        self._chat = ChatFormat(model, prompt_tokens, include_usage)
        self._id = f"cmpl-sim{next(_ids)}"
        self._created = int(time.time())
        self._model = model
        self._head = (
            f'data: {{"id":"{self._id}","object":"text_completion","created":{self._created},'
            f'"model":{json.dumps(model)},"choices":[{{"index":0,"logprobs":null,'
        )

    def first(self) -> bytes:
        return self.token(0)

    def token(self, i: int) -> bytes:
        return f'{self._head}"text":{_word_json(i)},"finish_reason":null}}]}}\n\n'.encode()

    def end(self, n_tokens: int, finish_reason: str) -> bytes:
        return f'{self._head}"text":"","finish_reason":"{finish_reason}"}}]}}\n\ndata: [DONE]\n\n'.encode()

    def error(self) -> bytes:
        return self._chat.error()

    def bad(self) -> bytes:
        return self._chat.bad()

    def complete(self, n_tokens: int, finish_reason: str) -> bytes:
        return dumps(
            {
                "id": self._id,
                "object": "text_completion",
                "created": self._created,
                "model": self._model,
                "choices": [
                    {"index": 0, "text": text_of(n_tokens), "logprobs": None, "finish_reason": finish_reason}
                ],
                "usage": self._chat._usage(n_tokens),
            }
        )


class MessagesFormat:
    """Anthropic Messages API: `message` objects and the named SSE events of a stream."""

    __slots__ = ("_id", "_model", "_prompt_tokens")

    def __init__(self, model: str, prompt_tokens: int, include_usage: bool = True) -> None:
        self._id = f"msg_sim{next(_ids)}"
        self._model = model
        self._prompt_tokens = prompt_tokens

    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"

    def _message(self, content: list[dict[str, Any]], stop: str | None, output_tokens: int) -> dict[str, Any]:
        return {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": self._prompt_tokens, "output_tokens": output_tokens},
        }

    def first(self) -> bytes:
        return (
            self._event("message_start", {"type": "message_start", "message": self._message([], None, 1)})
            + self._event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
            + self._event("ping", {"type": "ping"})
            + self.token(0)
        )

    def token(self, i: int) -> bytes:
        return (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":' + _word_json(i).encode() + b"}}\n\n"
        )

    def end(self, n_tokens: int, finish_reason: str) -> bytes:
        stop = "max_tokens" if finish_reason == "length" else "end_turn"
        return (
            self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + self._event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": n_tokens},
                },
            )
            + self._event("message_stop", {"type": "message_stop"})
        )

    def error(self) -> bytes:
        return self._event(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "upstream model crashed"}},
        )

    def bad(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": \n\n'

    def complete(self, n_tokens: int, finish_reason: str) -> bytes:
        stop = "max_tokens" if finish_reason == "length" else "end_turn"
        return dumps(self._message([{"type": "text", "text": text_of(n_tokens)}], stop, n_tokens))


def embeddings_body(model: str, inputs: list[str], dim: int, encoding: str) -> bytes:
    """A deterministic unit-ish vector per input (derived from its hash), as floats or base64."""
    data = []
    for i, text in enumerate(inputs):
        digest = hashlib.sha256(text.encode()).digest()
        vec = [(digest[j % 32] - 127.5) / 127.5 for j in range(dim)]
        # The OpenAI SDK asks for base64 (little-endian float32) unless told otherwise.
        emb: list[float] | str = (
            base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if encoding == "base64" else vec
        )
        data.append({"object": "embedding", "index": i, "embedding": emb})
    tokens = sum(max(1, len(t) // 4) for t in inputs)
    return dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


# A 1x1 transparent PNG: image models answer with something of the right shape.
_PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


def image_body() -> bytes:
    return dumps({"created": int(time.time()), "data": [{"b64_json": _PNG_1X1}]})


HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)
