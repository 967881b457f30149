"""The on-disk codes of kinds and outcomes are fixed: changing one would misread history."""

from __future__ import annotations

from monitor.core.results import Outcome, ProbeKind
from monitor.store.codes import KIND_BY_CODE, KIND_CODES, OUTCOME_BY_CODE, OUTCOME_CODES


def test_every_kind_and_outcome_has_a_distinct_code() -> None:
    # Throughput, identity and paths probes' results are never stored: their kinds have no code.
    assert set(KIND_CODES) == set(ProbeKind) - {ProbeKind.THROUGHPUT, ProbeKind.IDENTITY, ProbeKind.PATHS}
    assert set(OUTCOME_CODES) == set(Outcome)
    assert len(set(KIND_CODES.values())) == len(KIND_CODES)
    assert len(set(OUTCOME_CODES.values())) == len(OUTCOME_CODES)
    assert all(KIND_BY_CODE[c] is k for k, c in KIND_CODES.items())
    assert all(OUTCOME_BY_CODE[c] is o for o, c in OUTCOME_CODES.items())


def test_codes_never_change() -> None:
    # Append new members with new codes; never edit or reuse these.
    assert {k.value: c for k, c in KIND_CODES.items()} == {
        "health": 0,
        "completion": 1,
        "auth": 2,
        "embedding": 3,
    }
    assert {o.value: c for o, c in OUTCOME_CODES.items()} == {
        "ok": 0,
        "timeout": 1,
        "connect_error": 2,
        "tls_error": 3,
        "key_rejected": 4,
        "payment_required": 5,
        "unknown_model": 6,
        "invalid_request": 7,
        "rate_limited": 8,
        "server_error": 9,
        "bad_response": 10,
        "stream_error": 11,
        "not_loaded": 12,
        "unsupported": 13,
        "not_probed": 14,
        "key_blocked": 15,
    }
