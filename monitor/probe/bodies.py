"""Request bodies of the billed probes, built from templates encoded once per model.

The completion probe's prompt starts with a short random nonce, so that no server answers it from
a prompt (prefix) cache: every probe sends a prompt the host has not seen, as a new client request
is, and its time to first token includes prompt processing. (Against a llama.cpp server, the same
host answered a repeated prompt's first token in 10 ms and a fresh one's in 86 ms.) It still asks
for one token at temperature 0. A reasoning model's base id is asked with thinking off, as
LibertAI's gateway does, so that a probe neither measures nor pays for thinking.
"""

from __future__ import annotations

import functools
import json
import random
from typing import Final

__all__ = ["completion_body", "embedding_body", "new_nonce", "stream_body"]

_MARK: Final = "\x00nonce\x00"
_PROMPT: Final = "ping"


def new_nonce() -> str:
    """Ten hex digits: enough that two probes of a host never share a prompt."""
    return f"{random.getrandbits(40):010x}"


@functools.lru_cache(maxsize=1024)
def _template(model: str, max_tokens: int, reasoning: bool) -> tuple[bytes, bytes]:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": _MARK}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if reasoning:
        body["chat_template_kwargs"] = {"enable_thinking": False}
    head, tail = json.dumps(body).encode().split(json.dumps(_MARK).encode()[1:-1])
    return head, tail


def stream_body(model: str, max_tokens: int, nonce: str = "", *, reasoning: bool = False) -> bytes:
    """A streamed chat completion of `max_tokens` tokens, with usage; `nonce` starts the prompt."""
    head, tail = _template(model, max_tokens, reasoning)
    prompt = f"{nonce} {_PROMPT}" if nonce else _PROMPT
    return head + json.dumps(prompt).encode()[1:-1] + tail


def completion_body(model: str, nonce: str = "", *, reasoning: bool = False) -> bytes:
    """The billed probe: one token, streamed, with usage. Without a nonce the body is always the
    same (bench/blackbox.py gives the exporter this one)."""
    return stream_body(model, 1, nonce, reasoning=reasoning)


@functools.lru_cache(maxsize=1024)
def embedding_body(model: str) -> bytes:
    return json.dumps({"model": model, "input": "ping"}).encode()
