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
from urllib.parse import quote

from yarl import URL

from monitor.core.results import ProbeKind
from monitor.core.secret import Secret
from monitor.probe.identity import identity_body

__all__ = ["completion_body", "embedding_body", "new_nonce", "request_args", "stream_body"]

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


def request_args(
    kind: ProbeKind,
    host: str,
    model: str,
    key: Secret,
    *,
    reasoning: bool = False,
    throughput_tokens: int = 16,
) -> tuple[str, URL, dict[str, str], bytes | None]:
    """(method, URL, headers, body) of a probe of `kind`; only a health check carries no key."""
    quoted = quote(model, safe="")
    if kind is ProbeKind.HEALTH:
        return "GET", URL(f"{host}/health/{quoted}", encoded=True), {}, None
    auth = "Bearer " + key.reveal()
    if kind is ProbeKind.AUTH:
        return "GET", URL(f"{host}/libertai/auth/check", encoded=True), {"Authorization": auth}, None
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    if kind is ProbeKind.COMPLETION or kind is ProbeKind.THROUGHPUT:
        headers["Accept"] = "text/event-stream"
        if kind is ProbeKind.COMPLETION:
            body = completion_body(model, new_nonce(), reasoning=reasoning)
        else:
            body = stream_body(model, throughput_tokens, new_nonce(), reasoning=reasoning)
        return "POST", URL(f"{host}/v1/chat/completions", encoded=True), headers, body
    if kind is ProbeKind.IDENTITY:
        body = identity_body(model, reasoning=reasoning)
        return "POST", URL(f"{host}/v1/chat/completions", encoded=True), headers, body
    return "POST", URL(f"{host}/v1/embeddings", encoded=True), headers, embedding_body(model)
