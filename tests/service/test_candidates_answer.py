"""The candidates of the best answers, from a monitor on a fake clock fed probe results through its
recorder: who is offered, in what order, with what share, and when clients must fetch again."""

from __future__ import annotations

import json
from typing import Any

from monitor.config_load import load_settings
from monitor.core.answer import AnswerKey
from monitor.core.clock import FakeClock
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.service import Monitor

A, B, COLD = "http://127.0.0.1:1001", "http://127.0.0.1:1002", "http://127.0.0.1:1003"


class _Fed:
    """A monitor of `hermes` on A, B and COLD, whose results the test hands to the recorder."""

    def __init__(self) -> None:
        settings = load_settings(
            environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
        )
        self.clock = FakeClock()
        self.monitor = Monitor(settings, clock=self.clock)
        finish(self.monitor.fleet.apply_listing({"hermes": [A, B, COLD]}, self.monitor.clock.time()))

    def _record(self, result: ProbeResult) -> None:
        self.monitor.recorder.record(result)
        self.clock.spend(1.0)  # a second between results: their order in time is their order here

    def completions(self, host: str, ttft_ms: float, n: int = 1) -> None:
        for _ in range(n):
            at = self.monitor.clock.time()
            self._record(
                ProbeResult(
                    "hermes", host, ProbeKind.COMPLETION, Outcome.OK, at, 200, 1.0, ttft_ms, ttft_ms + 5
                )
            )

    def failures(self, host: str, n: int = 3) -> None:
        for _ in range(n):
            at = self.monitor.clock.time()
            self._record(ProbeResult("hermes", host, ProbeKind.COMPLETION, Outcome.CONNECT_ERROR, at))

    def not_loaded(self, host: str = COLD, n: int = 3) -> None:
        for _ in range(n):
            at = self.monitor.clock.time()
            self._record(
                ProbeResult("hermes", host, ProbeKind.HEALTH, Outcome.NOT_LOADED, at, 202, 1.0, None, 3.0)
            )

    def best(self) -> tuple[dict[str, Any], str]:
        """`/v1/best/hermes` as sent, and its ETag."""
        finish(self.monitor.publisher.publish(force=True))
        sent = finish(self.monitor.snapshot.answer(AnswerKey.best("hermes")))
        assert sent is not None
        return json.loads(sent.body), sent.etag

    def listed(self) -> dict[str, Any]:
        """The `hermes` entry of `/v1/best`."""
        finish(self.monitor.publisher.publish(force=True))
        sent = finish(self.monitor.snapshot.answer(AnswerKey.best()))
        assert sent is not None
        entry: dict[str, Any] = json.loads(sent.body)["models"]["hermes"]
        return entry


def _weights(answer: dict[str, Any]) -> dict[str, float]:
    return {c["url"]: c["weight"] for c in answer["candidates"]}


def test_a_host_whose_health_answers_202_is_offered_last_with_no_share_while_a_warm_host_is_up() -> None:
    fed = _Fed()
    fed.completions(A, 100.0, 3)
    fed.not_loaded()
    answer, _ = fed.best()
    assert [(c["url"], c["warm"], c["weight"]) for c in answer["candidates"]] == [
        (A, True, 1.0),
        (COLD, False, 0.0),
    ]
    assert answer["host"] == A and COLD not in answer["fallbacks"]


def test_with_no_warm_host_up_the_202_host_takes_the_requests() -> None:
    fed = _Fed()
    fed.completions(A, 100.0, 3)
    fed.not_loaded()
    fed.failures(A)
    answer, _ = fed.best()
    assert answer["host"] is None
    assert [(c["url"], c["warm"], c["weight"]) for c in answer["candidates"]] == [(COLD, False, 1.0)]


def test_the_best_host_is_the_first_candidate_in_both_best_answers() -> None:
    fed = _Fed()
    fed.completions(B, 300.0, 3)
    fed.completions(A, 100.0, 3)
    fed.not_loaded()
    answer, _ = fed.best()
    entry = fed.listed()
    assert answer["candidates"][0]["url"] == answer["host"] == entry["candidates"][0]["url"] == entry["host"]
    assert answer["candidates"] == entry["candidates"]


def test_weights_follow_speed_and_free_capacity() -> None:
    fed = _Fed()
    fed.completions(A, 100.0, 10)
    fed.completions(B, 300.0, 10)
    answer, _ = fed.best()
    assert _weights(answer) == {A: 0.75, B: 0.25}  # idle: by speed alone
    fed.completions(A, 200.0, 3)  # A's time to first token doubled: load 1, a quarter of it free
    answer, _ = fed.best()
    a = next(c for c in answer["candidates"] if c["url"] == A)
    assert a["load"] == 1.0 and _weights(answer) == {A: 0.428571, B: 0.571429}


def test_a_host_that_slows_under_load_loses_its_share_and_regains_it_when_the_load_goes() -> None:
    fed = _Fed()
    fed.completions(A, 100.0, 10)
    fed.completions(B, 100.0, 10)
    idle, _ = fed.best()
    fed.completions(A, 200.0, 3)
    busy, _ = fed.best()
    fed.completions(A, 100.0, 3)
    calm, _ = fed.best()
    assert _weights(idle) == {A: 0.5, B: 0.5}
    assert _weights(busy) == {A: 0.2, B: 0.8}
    assert _weights(calm) == _weights(idle)


def test_a_small_drift_keeps_the_etag_and_a_real_shift_changes_it() -> None:
    fed = _Fed()
    fed.completions(A, 100.0, 10)
    fed.completions(B, 100.0, 10)
    before, first = fed.best()
    fed.completions(A, 105.0, 3)  # a little slower: its share moves a little
    answer, drifted = fed.best()
    assert _weights(answer) != _weights(before) and drifted == first
    fed.completions(A, 200.0, 3)
    _, shifted = fed.best()
    assert shifted != first
