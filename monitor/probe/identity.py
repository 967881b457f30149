"""The identity probe's request and what its answer says (`monitor.core.identity`). Pure.

The prompt is fixed (no nonce): every host of a model must get exactly the same tokens, so that
their answers can be compared. It is asked at temperature 0 for a few tokens, not streamed, with
the top 5 log-probabilities of each token (OpenAI's `logprobs` / `top_logprobs`, which vLLM and
llama.cpp's server answer too). A host that does not give log-probabilities still gives its token
count and greedy tokens.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any, Final

from monitor.core.identity import Fingerprint

__all__ = [
    "IDENTITY_MAX_TOKENS",
    "IDENTITY_PROMPT",
    "IDENTITY_TOP_LOGPROBS",
    "identity_body",
    "read_fingerprint",
]

IDENTITY_PROMPT: Final = "Answer with one word. What is the capital of France?"
IDENTITY_MAX_TOKENS: Final = 4
IDENTITY_TOP_LOGPROBS: Final = 5


@functools.lru_cache(maxsize=1024)
def identity_body(model: str, *, reasoning: bool = False) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": IDENTITY_PROMPT}],
        "max_tokens": IDENTITY_MAX_TOKENS,
        "temperature": 0,
        "stream": False,
        "logprobs": True,
        "top_logprobs": IDENTITY_TOP_LOGPROBS,
    }
    if reasoning:
        body["chat_template_kwargs"] = {"enable_thinking": False}
    return json.dumps(body).encode()


# What is kept of an answer, whatever a host sends: the tokens asked for, the top log-probabilities
# asked for, and tokens of a sane length (they are stored, compared and quoted in answers).
_TOKEN_MAX_CHARS: Final = 64
_TEXT_MAX_CHARS: Final = 256


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _logprob_tokens(choice: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, float]] | None:
    """(tokens, first token's top log-probabilities) from `choices[0].logprobs.content`, if given."""
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list) or not content:
        return None
    content = content[:IDENTITY_MAX_TOKENS]
    tokens = [e.get("token") for e in content if isinstance(e, dict)]
    kept = tuple(t[:_TOKEN_MAX_CHARS] for t in tokens if isinstance(t, str))
    if len(kept) != len(content):
        return None
    top: dict[str, float] = {}
    listed = content[0].get("top_logprobs")
    for entry in listed[: IDENTITY_TOP_LOGPROBS * 2] if isinstance(listed, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("token"), str):
            value = _number(entry.get("logprob"))
            if value is not None:
                top.setdefault(entry["token"][:_TOKEN_MAX_CHARS], value)
    return kept, top


def read_fingerprint(body: bytes) -> Fingerprint | str:
    """The fingerprint in a chat completion's JSON answer, or why there is none (a short detail)."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "identity answer is not JSON"
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "no choices[0] in the identity answer"
    usage = obj.get("usage")
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if isinstance(prompt_tokens, bool) or not isinstance(prompt_tokens, int) or prompt_tokens < 1:
        return "no usage.prompt_tokens in the identity answer"
    choice = choices[0]
    read = _logprob_tokens(choice)
    if read is not None:
        return Fingerprint(prompt_tokens, read[0], read[1])
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str) or not text:
        return "no message content in the identity answer"
    return Fingerprint(prompt_tokens, (text[:_TEXT_MAX_CHARS],), {})
