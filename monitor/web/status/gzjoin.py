"""A gzip body assembled from pieces compressed once each (as pigz joins its blocks).

Each piece is raw deflate ending in a sync flush (byte-aligned, not final), so pieces can be laid
end to end; one final empty block, a gzip header and the trailer (CRC-32 and length of the whole)
make the body. A page is mostly model cards that did not change since the last snapshot: their
compressed bytes are kept with them, and a new page costs the compression of what changed only.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, OS unknown
_LEVEL: Final = 6


def _deflate(data: bytes, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


_FINAL: Final = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)


@dataclass(frozen=True, slots=True, eq=False)
class Piece:
    plain: bytes
    deflated: bytes


def piece(data: bytes, level: int = _LEVEL) -> Piece:
    return Piece(data, _deflate(data, level))


def assemble(pieces: Sequence[Piece]) -> tuple[bytes, bytes]:
    """The body plain and gzipped."""
    plain = b"".join(p.plain for p in pieces)
    trailer = struct.pack("<II", zlib.crc32(plain) & 0xFFFFFFFF, len(plain) & 0xFFFFFFFF)
    return plain, b"".join([_HEADER, *(p.deflated for p in pieces), _FINAL, trailer])
