"""Pure parts: reasons in words, percentages, and how a model's period is read from its hosts'."""

from __future__ import annotations

from monitor.core.keys import HostKey
from monitor.core.results import HostState, Outcome
from monitor.web.status.history import Bucket, model_bucket, model_series
from monitor.web.status.incidents import IncidentLog
from monitor.web.status.words import pct, reason_words


def test_a_rejected_key_reads_as_key_not_distributed() -> None:
    assert "key not distributed to this host" in reason_words(HostState.DOWN, Outcome.KEY_REJECTED)


def test_a_202_health_answer_reads_as_model_not_loaded() -> None:
    assert reason_words(HostState.DOWN, Outcome.NOT_LOADED) == "health answered 202: model not loaded"


def test_every_outcome_has_words_of_its_own() -> None:
    words = [reason_words(HostState.DOWN, o) for o in Outcome]
    assert len(set(words)) == len(words)
    assert all(w and "_" not in w for w in words)


def test_an_untrusted_host_says_it_is_never_probed() -> None:
    assert "never probed" in reason_words(HostState.UNTRUSTED, Outcome.NOT_PROBED)


def test_availability_below_one_never_reads_100_percent() -> None:
    assert pct(0.99999) == "99.99%"
    assert pct(1.0) == "100%"
    assert pct(0.975) == "97.5%"
    assert pct(None) == "no data"


def test_a_models_period_is_its_most_available_host() -> None:
    bad = Bucket(0, 100, 50, 50.0, 60.0)
    good = Bucket(0, 100, 99, 300.0, 400.0)
    b = model_bucket(0, [bad, good])
    assert b is not None
    assert b.availability == 0.99 and b.ttft_ms_p50 == 300.0
    assert b.probes == 200 and b.hosts == 2


def test_on_equal_availability_the_faster_host_speaks_for_the_model() -> None:
    slow = Bucket(0, 10, 10, 300.0, 400.0)
    fast = Bucket(0, 10, 10, 90.0, 120.0)
    b = model_bucket(0, [slow, fast])
    assert b is not None and b.ttft_ms_p50 == 90.0


def test_a_host_going_down_and_back_are_incidents_but_a_new_host_coming_up_is_not() -> None:
    log = IncidentLog()
    log.state_changed(10, "m", "h", HostState.UNKNOWN, HostState.UP, Outcome.OK)
    log.state_changed(20, "m", "h", HostState.UP, HostState.DOWN, Outcome.TIMEOUT)
    log.state_changed(30, "m", "h", HostState.DOWN, HostState.UP, Outcome.OK)
    assert [(i.kind, i.at) for i in log.recent(40)] == [("up", 30), ("down", 20)]
    assert log.recent(40)[1].reason is Outcome.TIMEOUT


def test_best_host_changes_are_incidents_newest_first() -> None:
    log = IncidentLog()
    log.best_changed(10, "m", "a", "b")
    log.best_changed(20, "m", "b", None)
    log.best_changed(25, "m", None, None)  # no change
    assert [(i.host, i.previous) for i in log.recent(30)] == [(None, "b"), ("b", "a")]


def test_a_models_first_best_host_is_no_incident_but_a_recovery_is() -> None:
    log = IncidentLog()
    log.best_changed(10, "m", None, "a")
    log.best_changed(20, "m", "a", None)
    log.best_changed(30, "m", None, "b")
    assert [(i.host, i.previous) for i in log.recent(40)] == [("b", None), (None, "a")]


def test_incidents_older_than_seven_days_are_dropped() -> None:
    log = IncidentLog()
    log.best_changed(0, "m", "a", "b")
    log.best_changed(7 * 86400 + 10, "m", "b", "a")
    assert [i.at for i in log.recent(7 * 86400 + 20)] == [7 * 86400 + 10]


def test_incidents_of_one_model_only() -> None:
    log = IncidentLog()
    log.best_changed(1, "m", "a", "b")
    log.best_changed(2, "n", "a", "b")
    assert [i.model for i in log.recent(3, "n")] == ["n"]


def test_a_models_series_reads_each_period_as_model_bucket_does() -> None:
    a = {0.0: Bucket(0, 100, 50, 50.0, 60.0), 1.0: Bucket(1, 10, 10, 300.0, 400.0)}
    b = {0.0: Bucket(0, 100, 99, 300.0, 400.0), 1.0: Bucket(1, 10, 10, 90.0, 120.0)}
    history = {HostKey("m", "a"): a, HostKey("m", "b"): b}
    got = model_series(history, "m", ["a", "b", "c"], [0.0, 1.0, 2.0])
    assert got == [model_bucket(0.0, [a[0.0], b[0.0]]), model_bucket(1.0, [a[1.0], b[1.0]]), None]
