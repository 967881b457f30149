"""An answer of the API as the snapshot serves it: which one (`AnswerKey`), its bytes and its ETag
(`Answer`), and how its JSON is written and compressed in steps (`monitor.core.steps`).

The key names an answer within one snapshot; the vantage a client asks for (`?vantage=`) chooses
the snapshot, each vantage's snapshot holding its own answers.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from monitor.core.steps import Steps

__all__ = [
    "DUMP_SLICE",
    "HOSTS",
    "MODELS",
    "Answer",
    "AnswerKey",
    "Kind",
    "Sort",
    "dump",
    "packed",
    "weak_etag",
]


class Kind(Enum):
    BEST = "best"  # /v1/best, or /v1/best/{model} with a model
    HOSTS = "hosts"  # /v1/hosts
    MODELS = "models"  # /libertai/models


class Sort(StrEnum):
    """How `best` answers order the hosts (`?sort=`)."""

    TTFT = "ttft"
    THROUGHPUT = "throughput"


@dataclass(frozen=True, slots=True)
class AnswerKey:
    """One answer of a snapshot. Only `best` answers take a model or a sort other than ttft."""

    kind: Kind
    model: str | None = None
    sort: Sort = Sort.TTFT

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Kind) or not isinstance(self.sort, Sort):
            raise TypeError(f"not an answer: {self!r}")
        if self.model is not None and not isinstance(self.model, str):
            raise TypeError(f"a model id is a string: {self.model!r}")
        if self.kind is not Kind.BEST and (self.model is not None or self.sort is not Sort.TTFT):
            raise ValueError(f"only best answers take a model or a sort: {self!r}")

    @classmethod
    def best(cls, model: str | None = None, sort: Sort = Sort.TTFT) -> AnswerKey:
        return cls(Kind.BEST, model, sort)

    @property
    def weak(self) -> bool:
        """A best answer is validated by what a client acts on, the others by their bytes."""
        return self.kind is Kind.BEST


HOSTS = AnswerKey(Kind.HOSTS)
MODELS = AnswerKey(Kind.MODELS)


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer's body as sent (plain or gzipped) and its ETag."""

    body: bytes
    etag: str


# Elements of a list (or items of a dict) encoded per call of the C encoder, which holds the GIL
# for a whole call: a step of the encoding.
DUMP_SLICE = 500
# Characters encoded (and compressed, or hashed) per step of packing an answer.
_PACK_CHARS = 256 * 1024
_DIGEST_BYTES = 12


def dump(data: Any, out: list[str]) -> Steps[None]:
    """Append the pieces of `json.dumps(data, separators=(",", ":"))` to `out`: long lists encoded
    a slice at a time and long dicts an item at a time, a step per slice or `DUMP_SLICE` items.
    Nothing is concatenated (a piece is at most a slice's text), so that no step copies the whole
    text."""
    if isinstance(data, dict) and all(isinstance(k, str) for k in data):
        out.append("{")
        for i, (k, v) in enumerate(data.items()):
            out.append(("," if i else "") + json.dumps(k) + ":")
            yield from dump(v, out)
            if (i + 1) % DUMP_SLICE == 0:
                yield None
        out.append("}")
    elif isinstance(data, list) and len(data) > DUMP_SLICE:
        out.append("[")
        for i in range(0, len(data), DUMP_SLICE):
            text = json.dumps(data[i : i + DUMP_SLICE], separators=(",", ":"))
            out.append(("," if i else "") + text[1:-1])
            yield None
        out.append("]")
    else:
        out.append(json.dumps(data, separators=(",", ":")))


def packed(pieces: Iterable[str], gzipped: bool) -> Steps[Answer]:
    """The pieces as UTF-8, gzipped if asked (level 6, no name, time 0: the same bytes for the
    same body), with a strong ETag over those bytes; a step every `_PACK_CHARS` characters or so.
    The pieces are compressed one by one: a long answer is never copied whole into one string."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31) if gzipped else None
    digest = hashlib.blake2b(digest_size=_DIGEST_BYTES)
    out: list[bytes] = []
    pending = 0
    for piece in pieces:
        data = piece.encode()
        out.append(data if packer is None else packer.compress(data))
        digest.update(out[-1])
        pending += len(piece)
        if pending >= _PACK_CHARS:
            pending = 0
            yield None
    if packer is not None:
        out.append(packer.flush())
        digest.update(out[-1])
    return Answer(b"".join(out), '"' + digest.hexdigest() + '"')


def weak_etag(decision: Any) -> Steps[str]:
    """A weak ETag over `decision` (what a client acts on in an answer, as JSON-able data built
    from the views): equal data, equal ETag, in this process or another."""
    pieces: list[str] = []
    yield from dump(decision, pieces)
    digest = hashlib.blake2b(digest_size=_DIGEST_BYTES)
    pending = 0
    for piece in pieces:
        digest.update(piece.encode())
        pending += len(piece)
        if pending >= _PACK_CHARS:
            pending = 0
            yield None
    return 'W/"' + digest.hexdigest() + '"'
