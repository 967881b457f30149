"""What model a simulated host really serves: its tokenizer, its greedy tokens, its log-probabilities.

By default every host of a model serves the same model: the same prompt token count, the same
answer and the same log-probabilities. A behaviour can make a host differ as a host that loaded
another model, another quantisation or another chat template does:

- `tokenizer_offset`: added to the prompt token count (`usage.prompt_tokens`);
- `greedy`: the tokens it answers (empty: the model's usual answer);
- `logprob_noise`: each log-probability moves by up to this many nats at random, from the host's
  seeded generator (honest hosts differ by batch and hardware nondeterminism);
- `logprob_shift`: the first token's log-probability is this many nats lower (a harsher
  quantisation is less sure of it);
- `logprobs`: false for a host that does not give log-probabilities (it omits them).

These shape a non-streamed chat completion's answer: its text, and, when asked with `logprobs:
true` and `top_logprobs: N`, `choices[0].logprobs.content[i].top_logprobs` as OpenAI's API answers.
Streamed answers keep the usual words.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any, Final

from monitor.sim.formats import StreamFormat, dumps, word
from monitor.sim.specs import Behaviour

__all__ = ["MODEL_KEYS", "as_model", "model_tokens", "parse_model_value", "top_logprobs"]

MODEL_KEYS: Final = frozenset({"tokenizer_offset", "greedy", "logprobs", "logprob_noise", "logprob_shift"})
# The other candidates of a position, and the log-probabilities of the top 5 at every position.
_ALTERNATIVES: Final = ("Hi", "The", "Sure", "Bonjour", "Paris", "Hello")
_BASE: Final = (-0.05, -3.2, -4.1, -4.8, -5.5)
_MAX_TOP = 20  # OpenAI's bound on top_logprobs


def model_tokens(b: Behaviour, n: int) -> list[str]:
    """The first `n` greedy tokens the host answers."""
    return [b.greedy[i] if i < len(b.greedy) else word(i) for i in range(n)]


def top_logprobs(b: Behaviour, token: str, first: bool, top: int, rng: random.Random) -> list[dict[str, Any]]:
    """The `top` most likely tokens at one position (the chosen `token` first), with log-probabilities."""
    others = [t for t in _ALTERNATIVES if t != token]
    out: list[dict[str, Any]] = []
    for i, candidate in enumerate([token, *others][: min(top, len(_BASE))]):
        lp = _BASE[i] - (b.logprob_shift if first and i == 0 else 0.0)
        if b.logprob_noise > 0:
            lp += rng.uniform(-b.logprob_noise, b.logprob_noise)
        out.append({"token": candidate, "logprob": min(0.0, lp), "bytes": list(candidate.encode())})
    return out


class _ModelFormat:
    """A chat format whose whole answer is the host's model's (streamed parts are the inner's)."""

    __slots__ = ("_b", "_inner", "_rng", "_top")

    def __init__(self, inner: StreamFormat, b: Behaviour, rng: random.Random, top: int | None) -> None:
        self._inner, self._b, self._rng, self._top = inner, b, rng, top

    def first(self) -> bytes:
        return self._inner.first()

    def token(self, i: int) -> bytes:
        return self._inner.token(i)

    def end(self, n_tokens: int, finish_reason: str) -> bytes:
        return self._inner.end(n_tokens, finish_reason)

    def error(self) -> bytes:
        return self._inner.error()

    def bad(self) -> bytes:
        return self._inner.bad()

    def complete(self, n_tokens: int, finish_reason: str) -> bytes:
        obj = json.loads(self._inner.complete(n_tokens, finish_reason))
        choice = obj["choices"][0]
        tokens = model_tokens(self._b, n_tokens)
        choice["message"]["content"] = "".join(tokens)
        if self._top is not None:
            choice["logprobs"] = {
                "content": [
                    {
                        "token": t,
                        "logprob": (top := top_logprobs(self._b, t, i == 0, max(1, self._top), self._rng))[0][
                            "logprob"
                        ],
                        "bytes": list(t.encode()),
                        "top_logprobs": top[: self._top],
                    }
                    for i, t in enumerate(tokens)
                ]
            }
        return dumps(obj)


def as_model(fmt: StreamFormat, body: dict[str, Any], b: Behaviour, rng: random.Random) -> StreamFormat:
    """`fmt` answering as the host's model does (itself when it answers as usual)."""
    asked = body.get("logprobs") is True and b.logprobs
    raw_top = body.get("top_logprobs", 0)
    top = min(_MAX_TOP, raw_top) if isinstance(raw_top, int) and not isinstance(raw_top, bool) else 0
    if not asked and not b.greedy:
        return fmt
    return _ModelFormat(fmt, b, rng, max(0, top) if asked else None)


def parse_model_value(key: str, value: Any, where: str) -> Any:
    """A TOML value of one of `MODEL_KEYS`, checked (ValueError naming `where`)."""
    if key == "logprobs":
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if key == "greedy":
        if not isinstance(value, list | tuple) or not all(isinstance(t, str) and t for t in value):
            raise ValueError(f"{where}: expected a list of non-empty strings (tokens), got {value!r}")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if key == "tokenizer_offset":
        if not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if value < 0:
        raise ValueError(f"{where}: expected a number of nats >= 0, got {value!r}")
    return float(value)
