"""Spreading requests over the monitor's candidates, as pure functions: randomness comes in as a
`random.Random`, counts and times as arguments.

- Power of two choices: two candidates drawn by weight, the one with fewer requests in flight from
  this client wins: every client follows the monitor's shares without all landing on one host.
- Conversation affinity: a conversation's requests go to the host that served it (its prompt
  cache is warm there) while that host stays a candidate; the opening turn of a conversation whose
  key is bound moves on when the host is over its share, later turns never do.
- First-token deadline: a streamed try without a first body byte by then is given up.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any

from libertai_failover.answers import Answer, Candidate

__all__ = [
    "OVER_SHARE",
    "SESSION_HEADER",
    "choose_hosts",
    "conversation_key",
    "draw_two",
    "first_token_deadline",
    "over_share",
    "pick",
]

SESSION_HEADER = "X-LibertAI-Session"
OVER_SHARE = 1.5  # in flight above this many times its weighted share: a host takes no new conversation
MIN_FIRST_TOKEN_S = 2.0
_KEY_FIELDS = 4096  # characters of each message that make the key: enough to tell prompts apart


def _text(content: object) -> str:
    """A message's content as one string, whatever its shape (text, or a list of parts)."""
    if isinstance(content, str):
        return content[:_KEY_FIELDS]
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)[:_KEY_FIELDS]


def conversation_key(session: str | None, data: Mapping[str, Any]) -> tuple[str, bool] | None:
    """(key, opening) for a request body: the key is a hash (never the prompt itself) of the
    `X-LibertAI-Session` header, else of the body's `user`, else of the system prompt and the first
    user message (`messages`, and `system` for /v1/messages); `opening` is True when no assistant
    turn is in the messages yet. None: nothing to key on."""
    messages = data.get("messages")
    turns = messages if isinstance(messages, list) else []
    opening = not any(isinstance(m, Mapping) and m.get("role") == "assistant" for m in turns)
    user = data.get("user")
    if session:
        raw = "s\0" + session[:256]
    elif isinstance(user, str) and user:
        raw = "u\0" + user[:256]
    else:
        system = [_text(data["system"])] if "system" in data else []
        first_user = None
        for m in turns:
            if not isinstance(m, Mapping):
                continue
            if m.get("role") in ("system", "developer") and first_user is None:
                system.append(_text(m.get("content")))
            elif m.get("role") == "user":
                first_user = _text(m.get("content"))
                break
        if first_user is None:
            return None
        raw = "p\0" + "\0".join([*system, "\1", first_user])
    return hashlib.blake2b(raw.encode("utf-8", "replace"), digest_size=16).hexdigest(), opening


def draw_two(candidates: Sequence[Candidate], rng: random.Random) -> tuple[Candidate, Candidate]:
    """Two different candidates drawn by weight (the same one twice when there is only one)."""
    first = rng.choices(candidates, weights=[c.weight for c in candidates])[0]
    rest = [c for c in candidates if c is not first]
    if not rest:
        return first, first
    weights = [c.weight for c in rest]
    second = rng.choices(rest, weights=weights if sum(weights) > 0 else None)[0]
    return first, second


def pick(candidates: Sequence[Candidate], in_flight: Mapping[str, int], rng: random.Random) -> Candidate:
    """Power of two choices: of two drawn by weight, the one with fewer requests in flight (the
    first drawn on a tie)."""
    a, b = draw_two(candidates, rng)
    return b if in_flight.get(b.url, 0) < in_flight.get(a.url, 0) else a


def over_share(candidate: Candidate, in_flight: Mapping[str, int]) -> bool:
    """True when this client has more in flight on the host than `OVER_SHARE` times its weight's
    share of everything it has in flight."""
    total = sum(in_flight.values())
    return in_flight.get(candidate.url, 0) > OVER_SHARE * candidate.weight * total


def choose_hosts(
    answer: Answer,
    bound: str | None,
    opening: bool,
    in_flight: Mapping[str, int],
    penalised: Container[str],
    admits: Callable[[str], bool],
    rng: random.Random,
) -> tuple[str, ...]:
    """Hosts to try, in order, for an answer with candidates: the conversation's host (`bound`)
    while it is a candidate (and, for an opening turn, not over its share), else one picked by
    power of two choices among the warm candidates that did not fail here lately; then the other
    candidates and the answer's remaining hosts, as `order_hosts` orders them."""
    admitted = [c for c in answer.candidates if admits(c.url)]
    fresh = [c for c in admitted if c.url not in penalised] or admitted
    if not fresh:
        return ()
    warm = [c for c in fresh if c.warm] or fresh
    chosen = next((c for c in fresh if c.url == bound), None)
    if chosen is None or (opening and over_share(chosen, in_flight)):
        chosen = pick(warm, in_flight, rng)
    rest = [c.url for c in admitted if c is not chosen] + [
        h for h in answer.order if admits(h) and all(h != c.url for c in admitted)
    ]
    return (chosen.url, *(h for h in rest if h not in penalised), *(h for h in rest if h in penalised))


def first_token_deadline(setting: float | None, candidate: Candidate | None) -> float:
    """Seconds a try may take to its first body byte: the setting, else the larger of 2 s and four
    times the host's p95 time to first token."""
    if setting is not None:
        return setting
    p95 = None if candidate is None else candidate.ttft_ms_p95
    return MIN_FIRST_TOKEN_S if p95 is None else max(MIN_FIRST_TOKEN_S, 4 * p95 / 1000)
