"""The window of one (model, host): its recent probe samples, packed. Pure, no I/O.

A `Window` is an immutable value holding samples in arrival order, oldest first. It keeps no
object per sample: a monitor holds some 150 samples for each of thousands of hosts, and as
`Sample` objects (plus their floats and a tuple) they took ~139 bytes each, and gave the cyclic
garbage collector ~150 objects per host to walk, whose young collections stalled the event loop
(and so the time-to-first-token readings of probes in flight) for 60-150 ms. Packed, a sample takes
25 bytes and a window is one tracked object.

Layout, two `bytes` (never tracked by the collector; an `array.array` is, in Python 3.11):
* `_codes`: one byte per sample, the index of its (kind, outcome) pair in `_PAIRS`;
* `_rows`: three native doubles per sample, (at, ttft_ms, total_ms), NaN for a missing timing.

Readers select in C rather than in a Python loop over samples: `bytes.translate` turns the codes
into a 0/1 mask of the samples wanted, `itertools.compress` picks their values from a column (a
strided view of `_rows`), and `filterfalse(isnan)` drops the missing ones.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import FrozenInstanceError, dataclass
from itertools import compress, filterfalse, product
from math import isnan, nan
from typing import Final

from monitor.core.results import Evidence, Outcome, ProbeKind

__all__ = ["Evidence", "Sample", "Window"]


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    kind: ProbeKind
    outcome: Outcome
    ttft_ms: float | None
    total_ms: float | None


_PAIRS: Final = tuple(product(ProbeKind, Outcome))
if len(_PAIRS) > 256:
    raise RuntimeError("a (kind, outcome) pair no longer fits in one byte: widen Window._codes")
_CODE: Final = {pair: bytes((i,)) for i, pair in enumerate(_PAIRS)}
_KIND_INDEX: Final = {kind: i for i, kind in enumerate(ProbeKind)}

_ROW: Final = struct.Struct("3d")
_ROW_SIZE: Final = _ROW.size
_AT, _TTFT, _TOTAL = 0, 1, 2


def _table(values: Iterable[int]) -> bytes:
    """A `bytes.translate` table from a sample's code (unused codes give 0)."""
    return bytes(values).ljust(256, b"\0")


# Code -> index of the sample's kind.
_KIND_OF: Final = _table(_KIND_INDEX[kind] for kind, _ in _PAIRS)
# Code -> 1 for the samples wanted, else 0.
_OK: Final = _table(outcome is Outcome.OK for _, outcome in _PAIRS)
_OF_KIND: Final = {k: _table(kind is k for kind, _ in _PAIRS) for k in ProbeKind}
_OK_OF_KINDS: dict[tuple[ProbeKind, ...], bytes] = {}  # filled on first use of each kinds tuple


def _ok_of_kinds(kinds: tuple[ProbeKind, ...]) -> bytes:
    mask = _OK_OF_KINDS.get(kinds)
    if mask is None:
        mask = _OK_OF_KINDS[kinds] = _table(o is Outcome.OK and k in kinds for k, o in _PAIRS)
    return mask


def _row(at: float, ttft_ms: float | None, total_ms: float | None) -> bytes:
    return _ROW.pack(at, nan if ttft_ms is None else ttft_ms, nan if total_ms is None else total_ms)


def _timing(value: float) -> float | None:
    return None if isnan(value) else value


def _same_timing(a: float, b: float) -> bool:
    return a == b or (isnan(a) and isnan(b))


class Window:
    """Samples of one (model, host) in arrival order, oldest first; at most a number per kind.

    The limit is per kind because kinds come at very different rates (health every 30 s, a billed
    completion every 300 s): a shared limit would leave too few completions to rank hosts by.

    `Window(samples)` packs samples (tests, debugging); iterating gives them back as `Sample`s. The
    monitor itself reads it through the methods below, which never build a `Sample`.
    """

    __slots__ = ("_codes", "_rows")
    _codes: bytes
    _rows: bytes

    def __init__(self, samples: Iterable[Sample] = ()) -> None:
        listed = list(samples)
        object.__setattr__(self, "_codes", b"".join(_CODE[s.kind, s.outcome] for s in listed))
        object.__setattr__(self, "_rows", b"".join(_row(s.at, s.ttft_ms, s.total_ms) for s in listed))

    # --- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._codes)

    def __bool__(self) -> bool:
        return bool(self._codes)

    def __iter__(self) -> Iterator[Sample]:
        for code, (at, ttft_ms, total_ms) in zip(self._codes, _ROW.iter_unpack(self._rows), strict=True):
            kind, outcome = _PAIRS[code]
            yield Sample(at, kind, outcome, _timing(ttft_ms), _timing(total_ms))

    def count(self, kind: ProbeKind) -> int:
        """Samples of `kind`."""
        return self._codes.translate(_KIND_OF).count(_KIND_INDEX[kind])

    def ok_count(self) -> int:
        """Samples whose outcome is ok."""
        return self._codes.translate(_OK).count(1)

    def last(self) -> tuple[ProbeKind, Outcome] | None:
        """(kind, outcome) of the newest sample; None when empty."""
        return _PAIRS[self._codes[-1]] if self._codes else None

    def latest(self, kind: ProbeKind) -> float | None:
        """The latest time of a sample of `kind` (not always the newest: results arrive out of
        order); None without one."""
        return max(compress(self._column(_AT), self._codes.translate(_OF_KIND[kind])), default=None)

    def ok_ttfts(self, *kinds: ProbeKind) -> list[float]:
        """Times to first token of the ok samples of `kinds` that measured one, oldest first."""
        return self._ok_values(_TTFT, kinds)

    def ok_totals(self, *kinds: ProbeKind) -> list[float]:
        """Total times of the ok samples of `kinds` that measured one, oldest first."""
        return self._ok_values(_TOTAL, kinds)

    def ok_ttfts_at(self, *kinds: ProbeKind) -> list[tuple[float, float]]:
        """(time, time to first token) of the ok samples of `kinds` that measured one, oldest first."""
        return self._ok_timed(_TTFT, kinds)

    def ok_totals_at(self, *kinds: ProbeKind) -> list[tuple[float, float]]:
        """(time, total time) of the ok samples of `kinds` that measured one, oldest first."""
        return self._ok_timed(_TOTAL, kinds)

    def outcomes_at(self) -> list[tuple[float, bool]]:
        """(time, whether it was ok) of every sample, oldest first."""
        oks = self._codes.translate(_OK)
        return [(at, ok == 1) for at, ok in zip(self._column(_AT), oks, strict=True)]

    def _ok_timed(self, column: int, kinds: tuple[ProbeKind, ...]) -> list[tuple[float, float]]:
        wanted = self._codes.translate(_ok_of_kinds(kinds))
        if 1 not in wanted:
            return []
        pairs = zip(compress(self._column(_AT), wanted), compress(self._column(column), wanted), strict=True)
        return [(at, value) for at, value in pairs if not isnan(value)]

    def _ok_values(self, column: int, kinds: tuple[ProbeKind, ...]) -> list[float]:
        wanted = self._codes.translate(_ok_of_kinds(kinds))
        # Reading a column makes a float of every row: skip it when no row is wanted (a ranking
        # asks every host of a health-only model for completions first).
        if 1 not in wanted:
            return []
        return list(filterfalse(isnan, compress(self._column(column), wanted)))

    def _column(self, column: int) -> memoryview[float]:
        return memoryview(self._rows).cast("d")[column::3]

    # --- growing: each returns a new window ------------------------------------------------------

    def appended(self, sample: Evidence, per_kind: int) -> Window:
        """This window with `sample` added, dropping the oldest of its kind beyond `per_kind`.

        A kind that already holds more than `per_kind` (a window made under a larger setting) keeps
        its size: one sample leaves for each that comes.
        """
        at, kind, outcome, ttft_ms, total_ms = sample
        code, row = _CODE[kind, outcome], _row(at, ttft_ms, total_ms)
        codes, rows = self._codes, self._rows
        kinds = codes.translate(_KIND_OF)
        k = _KIND_INDEX[kind]
        if kinds.count(k) < per_kind:
            return _window(codes + code, rows + row)
        i = kinds.index(k)
        j = i * _ROW_SIZE
        return _window(
            b"".join((codes[:i], codes[i + 1 :], code)), b"".join((rows[:j], rows[j + _ROW_SIZE :], row))
        )

    def extended(self, samples: Sequence[Evidence], per_kind: int) -> Window:
        """What `appended` leaves after adding each of `samples` in turn, built at once: the newest
        samples of each kind, in arrival order."""
        kinds = self._codes.translate(_KIND_OF)
        held = [kinds.count(k) for k in range(len(_KIND_INDEX))]
        room = [max(n, per_kind) for n in held]
        codes: list[bytes] = []
        rows: list[bytes] = []
        for at, kind, outcome, ttft_ms, total_ms in reversed(samples):
            k = _KIND_INDEX[kind]
            if room[k]:
                room[k] -= 1
                codes.append(_CODE[kind, outcome])
                rows.append(_row(at, ttft_ms, total_ms))
        codes.reverse()
        rows.reverse()
        # Of the samples held, the newest `room[k]` of each kind stay.
        drop = [max(n - r, 0) for n, r in zip(held, room, strict=True)]
        if not any(drop):
            return _window(b"".join((self._codes, *codes)), b"".join((self._rows, *rows)))
        kept: list[int] = []
        for i, k in enumerate(kinds):
            if drop[k]:
                drop[k] -= 1
            else:
                kept.append(i)
        old_rows = self._rows
        return _window(
            b"".join((bytes(self._codes[i] for i in kept), *codes)),
            b"".join((*(old_rows[i * _ROW_SIZE : (i + 1) * _ROW_SIZE] for i in kept), *rows)),
        )

    # --- a value -------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Window):
            return NotImplemented
        if self._codes != other._codes:
            return False
        # Equal bytes are the usual case; otherwise compare as floats do (0.0 == -0.0), with a
        # missing timing (NaN) equal to a missing one.
        return self._rows == other._rows or all(
            _same_timing(a, b)
            for a, b in zip(memoryview(self._rows).cast("d"), memoryview(other._rows).cast("d"), strict=True)
        )

    def __hash__(self) -> int:
        return hash(self._codes)

    def __repr__(self) -> str:
        return f"Window({list(self)!r})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[object, tuple[bytes, bytes]]:
        return _window, (self._codes, self._rows)


def _window(codes: bytes, rows: bytes) -> Window:
    w: Window = object.__new__(Window)
    object.__setattr__(w, "_codes", codes)
    object.__setattr__(w, "_rows", rows)
    return w
