"""Model identity: which hosts of a model agree, and what a host that does not is told."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.identity import Fingerprint, Identity, judge, out_of_routing, references_from

TOL = 0.5
PARIS = {"Paris": -0.05, "The": -3.2, "It": -4.1, "France": -4.8, "paris": -5.5}


def fp(prompt_tokens: int = 18, first: str = "Paris", shift: float = 0.0, lps: bool = True) -> Fingerprint:
    top = {t: v - (shift if t == "Paris" else 0.0) for t, v in PARIS.items()} if lps else {}
    return Fingerprint(prompt_tokens, (first, "."), top)


def states(verdicts: dict[str, Identity]) -> dict[str, str]:
    return {h: v.state for h, v in verdicts.items()}


def test_three_agreeing_hosts_are_ok() -> None:
    assert states(judge({"a": fp(), "b": fp(), "c": fp()}, TOL)) == {"a": "ok", "b": "ok", "c": "ok"}


def test_another_tokenizer_is_a_mismatch_saying_the_counts() -> None:
    v = judge({"a": fp(), "b": fp(), "c": fp(), "d": fp(prompt_tokens=31)}, TOL)
    assert v["d"] == Identity("mismatch", "prompt_tokens 31 vs 18 on 3 other hosts")
    assert {v[h].state for h in "abc"} == {"ok"}


def test_another_first_token_is_a_mismatch_saying_both() -> None:
    v = judge({"a": fp(), "b": fp(), "c": fp(first="The")}, TOL)
    assert v["c"] == Identity("mismatch", "first token 'The' vs 'Paris' on 2 other hosts")


def test_log_probabilities_off_by_more_than_the_tolerance_are_a_mismatch() -> None:
    v = judge({"a": fp(), "b": fp(), "c": fp(shift=1.3)}, TOL)
    assert v["c"] == Identity("mismatch", "log-probability of 'Paris' off by 1.3 nats on 2 other hosts")


def test_two_hosts_that_disagree_are_both_unknown() -> None:
    v = judge({"a": fp(), "b": fp(prompt_tokens=31)}, TOL)
    assert states(v) == {"a": "unknown", "b": "unknown"}
    assert v["b"].detail is not None and "prompt_tokens 31 vs 18" in v["b"].detail


def test_two_hosts_that_agree_are_unknown_without_a_reference() -> None:
    assert states(judge({"a": fp(), "b": fp()}, TOL)) == {"a": "unknown", "b": "unknown"}


def test_a_reference_makes_one_host_enough() -> None:
    assert judge({"a": fp()}, TOL, reference=fp())["a"] == Identity("ok")
    assert judge({"a": fp(first="The")}, TOL, reference=fp())["a"].state == "mismatch"


def test_a_host_without_log_probabilities_is_never_ok_but_may_mismatch() -> None:
    v = judge({"a": fp(), "b": fp(), "c": fp(lps=False), "d": fp(prompt_tokens=30, lps=False)}, TOL)
    assert v["c"].state == "unknown"
    assert v["d"].state == "mismatch"


def test_no_largest_group_leaves_everyone_unknown() -> None:
    v = judge({"a": fp(), "b": fp(), "c": fp(first="The"), "d": fp(first="The")}, TOL)
    assert {x.state for x in v.values()} == {"unknown"}


def test_a_mismatch_is_out_of_routing_only_while_another_host_is_up() -> None:
    assert out_of_routing(frozenset({"x"}), frozenset({"x", "y"})) == {"x"}
    assert out_of_routing(frozenset({"x"}), frozenset({"x"})) == frozenset()


def test_a_reference_file_is_read_and_checked() -> None:
    refs = references_from(
        {"models": {"m": {"prompt_tokens": 18, "tokens": ["Paris"], "top_logprobs": PARIS}}}
    )
    assert refs["m"].prompt_tokens == 18
    with pytest.raises(ValueError, match="prompt_tokens"):
        references_from({"models": {"m": {"prompt_tokens": 0, "tokens": ["Paris"]}}})
    with pytest.raises(ValueError, match="top_logprobs"):
        references_from({"models": {"m": {"prompt_tokens": 3, "tokens": ["a"], "top_logprobs": {"a": 1}}}})


_noise = st.floats(min_value=-TOL / 2, max_value=TOL / 2, allow_nan=False)


@given(st.lists(st.lists(_noise, min_size=5, max_size=5), min_size=1, max_size=8))
def test_noise_within_the_tolerance_never_gives_a_mismatch(noises: list[list[float]]) -> None:
    fps = {
        f"h{i}": Fingerprint(18, ("Paris",), {t: v + d for (t, v), d in zip(PARIS.items(), n, strict=True)})
        for i, n in enumerate(noises)
    }
    assert "mismatch" not in {v.state for v in judge(fps, TOL).values()}


_host = st.tuples(
    st.sampled_from([17, 18]), st.sampled_from(["Paris", "The"]), st.sampled_from([0.0, 0.1, 1.3, 2.0])
)


@given(st.lists(_host, min_size=1, max_size=7), st.randoms(use_true_random=False))
def test_the_order_of_hosts_does_not_change_the_verdict(
    hosts: list[tuple[int, str, float]], rnd: object
) -> None:
    fps = {f"h{i}": fp(n, first, shift) for i, (n, first, shift) in enumerate(hosts)}
    items = list(fps.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert judge(dict(items), TOL) == judge(fps, TOL)
