"""Fixed small-integer codes for the enums stored in `probe_results`.

The database keeps a probe's kind and outcome as small integers (one byte or less on disk). This
mapping is declared here once and is part of the on-disk format: a code, once given, never changes
meaning and is never reused, even if its enum member is removed. Add new members with new codes
only. `tests/store/test_codes.py` pins the mapping.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from monitor.core.results import Outcome, ProbeKind

# SQLite stores the integers 0 and 1 in zero bytes, so the most frequent values get them.
KIND_CODES: Final = MappingProxyType(
    {
        ProbeKind.HEALTH: 0,
        ProbeKind.COMPLETION: 1,
        ProbeKind.AUTH: 2,
        ProbeKind.EMBEDDING: 3,
    }
)

OUTCOME_CODES: Final = MappingProxyType(
    {
        Outcome.OK: 0,
        Outcome.TIMEOUT: 1,
        Outcome.CONNECT_ERROR: 2,
        Outcome.TLS_ERROR: 3,
        Outcome.KEY_REJECTED: 4,
        Outcome.PAYMENT_REQUIRED: 5,
        Outcome.UNKNOWN_MODEL: 6,
        Outcome.INVALID_REQUEST: 7,
        Outcome.RATE_LIMITED: 8,
        Outcome.SERVER_ERROR: 9,
        Outcome.BAD_RESPONSE: 10,
        Outcome.STREAM_ERROR: 11,
        Outcome.NOT_LOADED: 12,
        Outcome.UNSUPPORTED: 13,
        Outcome.NOT_PROBED: 14,
        Outcome.KEY_BLOCKED: 15,
    }
)

KIND_BY_CODE: Final = MappingProxyType({code: kind for kind, code in KIND_CODES.items()})
OUTCOME_BY_CODE: Final = MappingProxyType({code: outcome for outcome, code in OUTCOME_CODES.items()})

# Kinds whose latency is what a client of the host sees. Roll-ups and history report latency from
# these probes when a (model, host) had any in the bucket, else from the free probes (health, auth).
SERVING_KIND_CODES: Final = frozenset({KIND_CODES[ProbeKind.COMPLETION], KIND_CODES[ProbeKind.EMBEDDING]})

# Outcomes that say nothing about a host's availability: not counted as probes in roll-ups/history.
NEUTRAL_OUTCOME_CODES: Final = frozenset(
    {
        OUTCOME_CODES[Outcome.UNSUPPORTED],
        OUTCOME_CODES[Outcome.NOT_PROBED],
        OUTCOME_CODES[Outcome.KEY_BLOCKED],
    }
)
OK_CODE: Final = OUTCOME_CODES[Outcome.OK]
