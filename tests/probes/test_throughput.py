"""Throughput measurement: the pure parts (monitor.core.throughput, the timed SSE stream), and the
prober's throughput probe on simulated hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from monitor.core.percentile import percentile
from monitor.core.results import Outcome, ProbeKind
from monitor.core.secret import Secret
from monitor.core.throughput import Throughput, by_throughput, measure
from monitor.core.urls import AllowList
from monitor.probe.answers import SseStream, text_chunk
from monitor.probe.prober import Prober
from monitor.sim import SimNetwork
from monitor.sim.testing import KEY, scenario_of

ALLOW = AllowList.parse("http://127.0.0.1:*")


def test_rate_and_gap_come_from_the_text_chunks() -> None:
    m = measure([0.0, 0.02, 0.04, 0.06, 0.08], None)
    assert m.tokens == 5
    assert m.tokens_per_s == pytest.approx(50.0)
    assert m.inter_token_ms_p50 == pytest.approx(20.0)


def test_usage_counts_tokens_when_a_chunk_carries_several() -> None:
    # Five chunks 40 ms apart carrying nine tokens: two tokens per gap, 20 ms each.
    m = measure([0.0, 0.04, 0.08, 0.12, 0.16], 9)
    assert m.tokens == 9
    assert m.tokens_per_s == pytest.approx(50.0)
    assert m.inter_token_ms_p50 == pytest.approx(20.0)


def test_the_gap_is_the_median_so_one_stall_does_not_move_it() -> None:
    assert measure([0.0, 0.01, 0.02, 0.5, 0.51, 0.52], None).inter_token_ms_p50 == pytest.approx(10.0)


def test_one_chunk_measures_no_rate() -> None:
    assert measure([0.0], None) == Throughput(1, None, None)
    assert not measure([0.0], None).measured


def test_only_chunks_with_text_count() -> None:
    assert text_chunk({"choices": [{"delta": {"content": "Hi"}}]})
    assert text_chunk({"choices": [{"delta": {"reasoning_content": "hm"}}]})
    assert text_chunk({"choices": [{"text": "Hi"}]})
    assert not text_chunk({"choices": [{"delta": {"role": "assistant"}}]})
    assert not text_chunk({"choices": [{"delta": {}, "finish_reason": "stop"}]})
    assert not text_chunk({"choices": [], "usage": {"completion_tokens": 3}})


def _feed(stream: SseStream, lines: list[tuple[bytes, float]]) -> None:
    for line, at in lines:
        if stream.feed(line, at):
            return
    stream.end()


def test_a_timed_stream_measures_its_text_chunks_and_the_hosts_token_count() -> None:
    stream = SseStream(timed=True)
    _feed(
        stream,
        [
            (b'data: {"choices":[{"delta":{"role":"assistant"}}]}', 0.0),
            (b'data: {"choices":[{"delta":{"content":"a"}}]}', 1.0),
            (b'data: {"choices":[{"delta":{"content":"b"}}]}', 1.1),
            (b'data: {"choices":[{"delta":{"content":"c"}}]}', 1.2),
            (b'data: {"choices":[],"usage":{"completion_tokens":3}}', 1.3),
            (b"data: [DONE]", 1.3),
        ],
    )
    assert stream.outcome is Outcome.OK
    assert stream.throughput() == measure([1.0, 1.1, 1.2], 3)


def test_a_stream_that_fails_measures_nothing() -> None:
    stream = SseStream(timed=True)
    _feed(stream, [(b'data: {"choices":[{"delta":{"content":"a"}}]}', 1.0)])
    assert stream.outcome is Outcome.STREAM_ERROR
    assert stream.throughput() is None


def test_sorting_by_throughput_puts_the_fastest_eligible_host_first() -> None:
    rate = {"a": 20.0, "b": 80.0, "c": None, "e": 500.0}
    best, fallbacks = by_throughput("a", ("b", "c", "e"), ("a", "b", "c"), rate)
    # e is up but not eligible (ejected, or its key unconfirmed): never best, stays behind.
    assert (best, fallbacks) == ("b", ("a", "c", "e"))


def test_sorting_by_throughput_without_a_best_changes_nothing() -> None:
    assert by_throughput(None, ("a",), (), {"a": 9.0}) == (None, ("a",))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _prober(http: aiohttp.ClientSession, tokens: int) -> Prober:
    return Prober(http, Secret(KEY), 10.0, allow=ALLOW, throughput_tokens=tokens)


async def test_the_probe_recovers_the_hosts_time_between_tokens(http: aiohttp.ClientSession) -> None:
    async with SimNetwork(scenario_of({"ttft": 5, "itl": 40, "tokens": 64}), keys=[KEY]) as net:
        r = await _prober(http, 10).throughput(net.host_url("h0"), "m", reasoning=True)
        truth = net.ground_truth()["hosts"][0]["itl_truth_ms"]
    assert r.kind is ProbeKind.THROUGHPUT and r.outcome is Outcome.OK
    m = r.throughput
    assert m is not None and m.tokens == 10
    assert m.inter_token_ms_p50 is not None and m.tokens_per_s is not None
    sent = percentile(truth, 50)
    # The host spaces tokens by its configured 40 ms (to absolute deadlines: one gap may be short).
    assert sent is not None and sum(truth) >= 0.9 * 40 * len(truth)
    # What the host sent, as the client saw it: within a generous bound even on a busy machine.
    assert 0.5 * sent <= m.inter_token_ms_p50 <= 2.0 * sent
    assert 1000.0 / (2.0 * sent) <= m.tokens_per_s <= 1000.0 / (0.5 * sent)


async def test_a_rejected_key_is_a_failed_measurement(http: aiohttp.ClientSession) -> None:
    async with SimNetwork(scenario_of({"key_distributed": False}), keys=[KEY]) as net:
        r = await _prober(http, 4).probe(ProbeKind.THROUGHPUT, net.host_url("h0"), "m")
    assert r.outcome is Outcome.KEY_REJECTED and r.throughput is None
    assert KEY not in r.detail


async def test_a_host_outside_the_allow_list_is_not_probed(http: aiohttp.ClientSession) -> None:
    r = await _prober(http, 4).throughput("https://elsewhere.example", "m")
    assert r.outcome is Outcome.NOT_PROBED and r.throughput is None
