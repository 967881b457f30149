"""Is a host serving the model it is listed for? Fingerprints and their comparison. Pure.

An identity probe asks every host of a model the same fixed prompt at temperature 0 and keeps a
`Fingerprint`: the prompt's token count after the chat template (`usage.prompt_tokens`: tokenizer
and template), the greedy tokens, and the top log-probabilities of the first token. Honest hosts of
one model give the same token count and first token, and log-probabilities that differ only by batch
and hardware nondeterminism (a few hundredths of a nat), so log-probabilities are compared with a
tolerance, on the tokens both answers list (two near-equal tokens may swap places in a top 5).

`judge` groups the fingerprinted hosts of one model by agreement. Without a reference, a verdict
needs at least `MIN_HOSTS` fingerprints: the largest group (it must be the only largest) is the
reference, a host outside it is `mismatch`, a host inside it `ok`. With fewer, or when no group is
the largest, nobody can say which side is right: every host is `unknown` (its detail says what
differed, if anything did). A host that gave no log-probabilities agrees or not on what it gave,
but is never `ok`: the rest could not be compared. A reference fingerprint for the model (from the
`identity_reference` file) replaces the group: each host is compared with it alone.

Grouping: hosts with the same token count and first token form a class; within a class, hosts whose
log-probabilities are within the tolerance of each other (on their common tokens) are linked, and
the linked components are the groups (order-independent; hosts whose answers are all within the
tolerance of each other always form one group). Hosts of the class that gave no log-probabilities
belong to the class but to no group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "MIN_HOSTS",
    "NOT_FINGERPRINTED",
    "Fingerprint",
    "Identity",
    "IdentityState",
    "judge",
    "out_of_routing",
    "references_from",
]

IdentityState = Literal["ok", "mismatch", "unknown"]
MIN_HOSTS = 3  # fingerprints needed for a majority without a reference


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What one host answered the identity prompt: token count, greedy tokens, first token's top
    log-probabilities (token -> log-probability; empty when the host gave none)."""

    prompt_tokens: int
    tokens: tuple[str, ...]
    top_logprobs: Mapping[str, float] = field(default_factory=dict)

    @property
    def first(self) -> str:
        """The first token (its first non-blank one, stripped); without log-probabilities there are
        no token boundaries, and `tokens` holds the whole text."""
        return next((t.strip() for t in self.tokens if t.strip()), "")

    @property
    def text(self) -> str:
        return "".join(self.tokens).strip()


def _same_start(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether two answers start with the same token; when one has no token boundaries, whether
    either text starts with the other's first token."""
    if a.top_logprobs and b.top_logprobs:
        return a.first == b.first
    return a.text.startswith(b.first) or b.text.startswith(a.first)


@dataclass(frozen=True, slots=True)
class Identity:
    """A host's verdict, and what differed (or why nothing could be said), in words."""

    state: IdentityState = "unknown"
    detail: str | None = None


NOT_FINGERPRINTED = Identity()


def _worst_gap(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[str, float] | None:
    """The common token whose log-probabilities differ most, and by how much (None: none common)."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    return max(((t, abs(a[t] - b[t])) for t in common), key=lambda p: (p[1], p[0]))


def _close(a: Fingerprint, b: Fingerprint, tolerance: float) -> bool:
    gap = _worst_gap(a.top_logprobs, b.top_logprobs)
    return gap is None or gap[1] <= tolerance


def _median_logprobs(group: list[Fingerprint]) -> dict[str, float]:
    """Per token, the median of the group's log-probabilities (what a host is compared with)."""
    out: dict[str, float] = {}
    for token in sorted({t for fp in group for t in fp.top_logprobs}):
        values = sorted(fp.top_logprobs[token] for fp in group if token in fp.top_logprobs)
        mid = len(values) // 2
        out[token] = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    return out


def _components(hosts: list[str], fps: Mapping[str, Fingerprint], tolerance: float) -> list[list[str]]:
    """Hosts linked when their log-probabilities are within `tolerance`: connected components,
    each sorted, largest first (ties by first host)."""
    parent = {h: h for h in hosts}

    def root(h: str) -> str:
        while parent[h] != h:
            parent[h] = parent[parent[h]]
            h = parent[h]
        return h

    for i, a in enumerate(hosts):
        for b in hosts[i + 1 :]:
            if _close(fps[a], fps[b], tolerance):
                parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for h in sorted(hosts):
        groups.setdefault(root(h), []).append(h)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def _others(n: int) -> str:
    return "1 other host" if n == 1 else f"{n} other hosts"


def _difference(fp: Fingerprint, ref: Fingerprint, against: str, tolerance: float) -> str | None:
    """What differs between `fp` and `ref` (`against`: where `ref` comes from), None if nothing."""
    if fp.prompt_tokens != ref.prompt_tokens:
        return f"prompt_tokens {fp.prompt_tokens} vs {ref.prompt_tokens} {against}"
    if not _same_start(fp, ref):
        return f"first token {fp.first!r} vs {ref.first!r} {against}"
    gap = _worst_gap(fp.top_logprobs, ref.top_logprobs)
    if gap is not None and gap[1] > tolerance:
        return f"log-probability of {gap[0]!r} off by {gap[1]:.1f} nats {against}"
    return None


def _against_reference(fp: Fingerprint, ref: Fingerprint, tolerance: float) -> Identity:
    differs = _difference(fp, ref, "in the reference", tolerance)
    if differs is not None:
        return Identity("mismatch", differs)
    if ref.top_logprobs and not fp.top_logprobs:
        return Identity("unknown", "agrees with the reference; no log-probabilities to compare")
    if ref.top_logprobs and _worst_gap(fp.top_logprobs, ref.top_logprobs) is None:
        return Identity("unknown", "agrees with the reference; no log-probability in common")
    return Identity("ok")


def judge(
    fingerprints: Mapping[str, Fingerprint], tolerance: float, reference: Fingerprint | None = None
) -> dict[str, Identity]:
    """host -> its verdict, for the fingerprinted hosts of one model (see the module's docstring)."""
    if reference is not None:
        return {h: _against_reference(fp, reference, tolerance) for h, fp in fingerprints.items()}
    classes = _classes(fingerprints)
    ranked = sorted(classes.values(), key=len, reverse=True)
    main_key = max(classes, key=lambda k: (len(classes[k]), k)) if classes else (0, "")
    n = len(fingerprints)
    if n < MIN_HOSTS or (len(ranked) > 1 and len(ranked[1]) == len(ranked[0])):
        return _undecided(fingerprints, ranked, tolerance)
    main = ranked[0]
    with_lp = [h for h in main if fingerprints[h].top_logprobs]
    groups = _components(with_lp, fingerprints, tolerance)
    sure = bool(groups) and (len(groups) == 1 or len(groups[1]) < len(groups[0]))
    ref_group = [fingerprints[h] for h in groups[0]] if sure else []
    ref = Fingerprint(main_key[0], (main_key[1],), _median_logprobs(ref_group))
    out: dict[str, Identity] = {}
    for h, fp in fingerprints.items():
        if h not in main:
            against = f"on {_others(len(main))}"
            said = _difference(fp, ref, against, tolerance)
            out[h] = Identity("mismatch", said or f"answer {fp.text!r} unlike {ref.first!r} {against}")
        elif not fp.top_logprobs:
            out[h] = Identity("unknown", f"agrees with {_others(len(main) - 1)}; no log-probabilities")
        elif not sure:
            out[h] = Identity("unknown", "log-probabilities split into groups of equal size")
        elif h in groups[0]:
            out[h] = Identity("ok")
        else:
            against = f"on {_others(len(groups[0]))}"
            said = _difference(fp, ref, against, tolerance)
            out[h] = Identity("mismatch", said or f"log-probabilities unlike those {against}")
    return out


def _classes(fingerprints: Mapping[str, Fingerprint]) -> dict[tuple[int, str], list[str]]:
    """Hosts by (prompt token count, first token). A host without log-probabilities joins the class
    of the longest first token its text starts with, or else one of its own text."""
    classes: dict[tuple[int, str], list[str]] = {}
    hosts = sorted(fingerprints)
    for h in hosts:
        if (fp := fingerprints[h]).top_logprobs:
            classes.setdefault((fp.prompt_tokens, fp.first), []).append(h)
    keys = sorted(classes, key=lambda k: (-len(k[1]), k))
    for h in hosts:
        if not (fp := fingerprints[h]).top_logprobs:
            key = next(
                (k for k in keys if k[0] == fp.prompt_tokens and k[1] and fp.text.startswith(k[1])),
                (fp.prompt_tokens, fp.text),
            )
            classes.setdefault(key, []).append(h)
    return classes


def _undecided(
    fingerprints: Mapping[str, Fingerprint], classes: list[list[str]], tolerance: float
) -> dict[str, Identity]:
    """Too few hosts, or no largest group: what differed is said, nobody is called wrong."""
    n = len(fingerprints)
    why = f"{n} host{'s' if n != 1 else ''} fingerprinted, {MIN_HOSTS} needed without a reference"
    if len(classes) > 1 and n >= MIN_HOSTS:
        why = "no largest group of agreeing hosts"
    out: dict[str, Identity] = {}
    for h, fp in fingerprints.items():
        others = [fingerprints[o] for o in sorted(fingerprints) if o != h]
        said = next(
            (d for o in others if (d := _difference(fp, o, "on another host", tolerance)) is not None), None
        )
        out[h] = Identity("unknown", why if said is None else f"{said}; {why}")
    return out


def out_of_routing(mismatched: frozenset[str], up: frozenset[str]) -> frozenset[str]:
    """The `mismatched` hosts to take out of routing, given the `up` hosts (neither drained nor
    untrusted): all of them while another host is up, none when only they are (panic)."""
    return mismatched if up - mismatched else frozenset()


def references_from(data: Mapping[str, Any], where: str = "identity_reference") -> dict[str, Fingerprint]:
    """model -> reference fingerprint, from a parsed JSON/TOML document
    `{"models": {MODEL: {"prompt_tokens": N, "tokens": [...], "top_logprobs": {TOKEN: LOGPROB}}}}`.
    Raises ValueError naming what is wrong."""
    models = data.get("models")
    if not isinstance(models, Mapping) or set(data) - {"models"}:
        raise ValueError(f"{where}: expected one table 'models' (model id -> fingerprint)")
    out: dict[str, Fingerprint] = {}
    for model, raw in models.items():
        w = f"{where}: models.{model}"
        if not isinstance(raw, Mapping) or set(raw) - {"prompt_tokens", "tokens", "top_logprobs"}:
            raise ValueError(f"{w}: expected prompt_tokens, tokens and optionally top_logprobs")
        n = raw.get("prompt_tokens")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{w}.prompt_tokens: expected a positive integer")
        tokens = raw.get("tokens")
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{w}.tokens: expected a non-empty list of strings")
        lps = raw.get("top_logprobs", {})
        if not isinstance(lps, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v <= 0
            for v in lps.values()
        ):
            raise ValueError(f"{w}.top_logprobs: expected token = log-probability (a number <= 0)")
        out[str(model)] = Fingerprint(n, tuple(tokens), {str(t): float(v) for t, v in lps.items()})
    return out
