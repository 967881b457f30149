"""The spreading decisions as pure functions: the weighted draw, power of two choices, conversation
keys and affinity, the over-share rule, the hedge budget and the first-token deadline."""

from __future__ import annotations

import random
from collections import Counter

from libertai_failover.answers import Answer, Candidate, parse_answer
from libertai_failover.clock import FakeClock
from libertai_failover.memory import Affinity, HedgeBudget
from libertai_failover.spread import choose_hosts, conversation_key, first_token_deadline, pick

A, B, C = "https://a.libertai.io", "https://b.libertai.io", "https://c.libertai.io"
SYSTEM = {"role": "system", "content": "You are terse."}


def _answer(*cands: Candidate) -> Answer:
    urls = tuple(c.url for c in cands)
    return Answer("m", urls, frozenset(urls), "m", "{}", cands)


def _any(_: str) -> bool:
    return True


def _msgs(first: str, *later: str) -> dict[str, object]:
    turns: list[dict[str, str]] = [SYSTEM, {"role": "user", "content": first}]
    for text in later:
        turns += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": text}]
    return {"model": "m", "messages": turns}


def test_weights_drive_the_draw() -> None:
    rng = random.Random(7)
    cands = [Candidate(A, 0.7), Candidate(B, 0.2), Candidate(C, 0.1)]
    picks = Counter(pick(cands, {}, rng).url for _ in range(20_000))
    assert 0.67 < picks[A] / 20_000 < 0.73
    assert 0.08 < picks[C] / 20_000 < 0.12


def test_of_the_two_drawn_the_host_with_fewer_requests_in_flight_wins() -> None:
    rng = random.Random(1)
    cands = [Candidate(A, 0.9), Candidate(B, 0.1)]
    assert {pick(cands, {A: 3, B: 1}, rng).url for _ in range(200)} == {B}


def test_a_conversation_stays_on_its_host_across_turns_even_when_it_is_busy() -> None:
    answer = _answer(Candidate(A, 0.5), Candidate(B, 0.5))
    order = choose_hosts(answer, B, False, {B: 10}, set(), _any, random.Random(3))
    assert order[0] == B


def test_an_over_share_host_gets_no_new_conversation_but_keeps_the_old_ones() -> None:
    answer = _answer(Candidate(A, 0.5), Candidate(B, 0.5))
    busy = {A: 4, B: 0}  # A has all 4 in flight: above 1.5 x its half share
    assert choose_hosts(answer, A, True, busy, set(), _any, random.Random(3))[0] == B
    assert choose_hosts(answer, A, False, busy, set(), _any, random.Random(3))[0] == A


def test_a_host_no_longer_a_candidate_loses_its_conversations() -> None:
    answer = _answer(Candidate(B, 1.0))
    assert choose_hosts(answer, A, False, {}, set(), _any, random.Random(3)) == (B,)


def test_a_cold_host_is_never_picked_while_a_warm_one_is_offered() -> None:
    answer = _answer(Candidate(A, 0.9, warm=False), Candidate(B, 0.1))
    assert {choose_hosts(answer, None, True, {}, set(), _any, random.Random(s))[0] for s in range(50)} == {B}


def test_turns_of_one_conversation_share_a_key_and_other_openings_do_not() -> None:
    first = conversation_key(None, _msgs("Tell me about owls"))
    later = conversation_key(None, _msgs("Tell me about owls", "And bats?"))
    other = conversation_key(None, _msgs("Tell me about cats"))
    assert first is not None and later is not None and other is not None
    assert first == (later[0], True) and later[1] is False
    assert other[0] != first[0]


def test_the_anthropic_system_field_is_part_of_the_key() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    one = conversation_key(None, {**body, "system": "Be brief."})
    two = conversation_key(None, {**body, "system": "Be verbose."})
    assert one is not None and two is not None and one[0] != two[0]


def test_a_session_header_or_user_field_beats_the_message_prefix() -> None:
    owls, cats = _msgs("Tell me about owls"), _msgs("Tell me about cats")
    assert conversation_key("s1", owls) == conversation_key("s1", cats)
    assert conversation_key(None, {**owls, "user": "u1"}) == conversation_key(None, {**cats, "user": "u1"})
    assert conversation_key("s1", {**owls, "user": "u1"}) != conversation_key(None, {**owls, "user": "u1"})


def test_a_key_keeps_no_prompt_text() -> None:
    key = conversation_key(None, _msgs("my secret plan"))
    assert key is not None and "secret" not in key[0] and len(key[0]) == 32


def test_affinity_forgets_the_least_recently_used_beyond_its_size() -> None:
    clock = FakeClock()
    memory = Affinity(clock, size=2)
    memory.bind("k1", A)
    memory.bind("k2", B)
    memory.bind("k3", C)
    assert (memory.get("k1"), memory.get("k3"), len(memory)) == (None, C, 2)


def test_affinity_forgets_a_conversation_idle_past_its_ttl() -> None:
    clock = FakeClock()
    memory = Affinity(clock, ttl=1800)
    memory.bind("k", A)
    clock.spend(1799)
    assert memory.get("k") == A
    clock.spend(2)
    assert memory.get("k") is None


def test_hedges_never_exceed_their_share_of_the_last_minute() -> None:
    clock = FakeClock()
    budget = HedgeBudget(clock, 0.1)
    taken = 0
    for _ in range(100):
        budget.request()
        taken += budget.take()
    assert taken == 10
    clock.spend(61)
    budget.request()
    assert not budget.take()  # 1 request in the window: a tenth of one is not a whole hedge


def test_the_first_token_deadline_is_at_least_2_s_else_four_times_the_p95() -> None:
    assert first_token_deadline(None, None) == 2.0
    assert first_token_deadline(None, Candidate(A, 1.0, 100.0, 300.0)) == 2.0
    assert first_token_deadline(None, Candidate(A, 1.0, 400.0, 1500.0)) == 6.0
    assert first_token_deadline(0.5, Candidate(A, 1.0, 400.0, 1500.0)) == 0.5


def test_candidates_are_read_from_the_answer_with_weights_summing_to_one() -> None:
    body = (
        b'{"model": "m", "host": "https://a.libertai.io", "fallbacks": [], "candidates": ['
        b'{"url": "https://a.libertai.io", "weight": 3, "ttft_ms_p95": 250, "load": 0.1, "warm": true},'
        b'{"url": "javascript:x", "weight": 1},'
        b'{"url": "https://b.libertai.io", "weight": 1, "warm": false}]}'
    )
    cands = parse_answer("m", body).candidates
    assert [(c.url, c.weight, c.warm) for c in cands] == [(A, 0.75, True), (B, 0.25, False)]
    assert cands[0].ttft_ms_p95 == 250.0
