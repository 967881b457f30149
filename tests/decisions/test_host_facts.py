"""Host facts as JSON (monitor.core.host_facts): what is written reads back the same, and a value
that is not a fact of its kind is refused with ValueError, never anything else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.host_facts import FACT_KINDS, Fact, decode, encode, fact_of
from monitor.core.identity import Fingerprint
from monitor.core.paths import Paths
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.throughput import Throughput

FACTS: list[tuple[ProbeKind, Fact]] = [
    (ProbeKind.IDENTITY, Fingerprint(17, ("Paris", "."), {"Paris": -0.01, " Paris": -4.5})),
    (ProbeKind.IDENTITY, Fingerprint(17, ("Paris.",))),
    (ProbeKind.PATHS, Paths(("/v1/chat/completions",), ("/v1/messages",))),
    (ProbeKind.THROUGHPUT, Throughput(16, 41.5, 24.0)),
    (ProbeKind.THROUGHPUT, Throughput(1, None, None)),
]


@pytest.mark.parametrize(("kind", "fact"), FACTS)
def test_a_fact_reads_back_as_written(kind: ProbeKind, fact: Fact) -> None:
    assert decode(kind, encode(kind, fact)) == fact


def test_a_fact_of_another_kind_is_not_written() -> None:
    with pytest.raises(ValueError, match="not a paths fact"):
        encode(ProbeKind.PATHS, Throughput(16, 41.5, 24.0))


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (ProbeKind.IDENTITY, "{"),
        (ProbeKind.IDENTITY, "[]"),
        (ProbeKind.IDENTITY, '{"prompt_tokens": -1, "tokens": [], "top_logprobs": {}}'),
        (ProbeKind.IDENTITY, '{"prompt_tokens": 3, "tokens": [1], "top_logprobs": {}}'),
        (ProbeKind.IDENTITY, '{"prompt_tokens": 3, "tokens": [], "top_logprobs": {"a": "x"}}'),
        (ProbeKind.PATHS, '{"accepted": "/v1/messages", "refused": []}'),
        (ProbeKind.THROUGHPUT, '{"tokens": 16, "tokens_per_s": "fast", "inter_token_ms_p50": null}'),
        (ProbeKind.THROUGHPUT, '{"tokens": true, "tokens_per_s": null, "inter_token_ms_p50": null}'),
        (ProbeKind.THROUGHPUT, '{"tokens": 16, "tokens_per_s": Infinity, "inter_token_ms_p50": null}'),
        (ProbeKind.HEALTH, "{}"),
    ],
)
def test_a_value_that_is_not_a_fact_of_its_kind_is_refused(kind: ProbeKind, text: str) -> None:
    with pytest.raises(ValueError):
        decode(kind, text)


@given(st.sampled_from(FACT_KINDS), st.text(max_size=200))
def test_decoding_any_text_returns_a_fact_or_raises_value_error(kind: ProbeKind, text: str) -> None:
    with contextlib.suppress(ValueError):
        decode(kind, text)


def test_paths_decided_by_a_probe_that_left_one_unknown_are_a_fact() -> None:
    partial = Paths(("/v1/chat/completions",), ())
    result = ProbeResult("m", "https://a", ProbeKind.PATHS, Outcome.TIMEOUT, 0.0, paths=partial)
    assert fact_of(result) == partial


def test_a_failed_throughput_probe_is_no_fact() -> None:
    measured = Throughput(16, 41.5, 24.0)
    result = ProbeResult("m", "https://a", ProbeKind.THROUGHPUT, Outcome.TIMEOUT, 0.0, throughput=measured)
    assert fact_of(result) is None
