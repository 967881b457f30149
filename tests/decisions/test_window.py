"""The packed window of one (model, host): monitor.core.window."""

from __future__ import annotations

import copy
import gc
import pickle
import sys
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.results import Outcome, ProbeKind
from monitor.core.window import Evidence, Sample, Window

H, A, C, E = ProbeKind.HEALTH, ProbeKind.AUTH, ProbeKind.COMPLETION, ProbeKind.EMBEDDING
OK = Outcome.OK


def grown(*samples: Evidence, per_kind: int = 50, start: Window | None = None) -> Window:
    w = Window() if start is None else start
    for sample in samples:
        w = w.appended(sample, per_kind)
    return w


def full(per_kind: int = 50) -> Window:
    """A full window of health, completion and auth samples, as a monitor holds per host."""
    return grown(
        *((float(i), (H, C, A)[i % 3], OK, 100.0 + i, 200.0 + i) for i in range(3 * per_kind)),
        per_kind=per_kind,
    )


# --- holding samples -----------------------------------------------------------------------------


def test_empty_window_has_no_samples() -> None:
    w = Window()
    assert (len(w), bool(w), list(w), w.last()) == (0, False, [], None)


def test_window_gives_its_samples_back_in_arrival_order() -> None:
    samples = [Sample(3.0, C, OK, 120.0, 300.0), Sample(1.0, H, Outcome.TIMEOUT, None, None)]
    assert list(Window(samples)) == samples


def test_appended_sample_keeps_its_timings_and_a_missing_one_stays_missing() -> None:
    w = grown((5.0, C, OK, 120.0, None))
    assert list(w) == [Sample(5.0, C, OK, 120.0, None)]


def test_appending_beyond_the_limit_drops_the_oldest_sample_of_that_kind_only() -> None:
    w = grown((0.0, C, OK, None, None), (1.0, H, OK, None, None), (2.0, H, OK, None, None), per_kind=2)
    w = w.appended((3.0, H, OK, None, None), 2)
    assert [(s.at, s.kind) for s in w] == [(0.0, C), (2.0, H), (3.0, H)]


def test_kind_holding_more_than_the_limit_keeps_its_size() -> None:
    wide = grown(*((float(i), H, OK, None, None) for i in range(5)))
    w = wide.appended((9.0, H, OK, None, None), 2)
    assert [s.at for s in w] == [1.0, 2.0, 3.0, 4.0, 9.0]


def test_appending_leaves_the_window_it_came_from_as_it_was() -> None:
    w = grown((0.0, H, OK, None, None), per_kind=1)
    w.appended((1.0, H, Outcome.TIMEOUT, None, None), 1)
    assert list(w) == [Sample(0.0, H, OK, None, None)]


evidence = st.tuples(
    st.floats(0, 100),
    st.sampled_from(list(ProbeKind)),
    st.sampled_from([OK, Outcome.TIMEOUT, Outcome.NOT_LOADED]),
    st.none() | st.floats(1, 500),
    st.sampled_from([None, 300.0]),
)
limits = st.sampled_from([1, 2, 3, 5, 50])


@given(
    per_kind=limits,
    start_per_kind=limits,
    before=st.lists(evidence, max_size=20),
    samples=st.lists(evidence, max_size=60),
)
def test_extending_equals_appending_each_sample_in_turn(
    per_kind: int, start_per_kind: int, before: list[Evidence], samples: list[Evidence]
) -> None:
    start = grown(*before, per_kind=start_per_kind)
    assert start.extended(samples, per_kind) == grown(*samples, per_kind=per_kind, start=start)


# --- reading without building samples ------------------------------------------------------------


def test_count_counts_the_samples_of_a_kind() -> None:
    w = grown((0.0, H, OK, None, None), (1.0, C, OK, None, None), (2.0, H, Outcome.TIMEOUT, None, None))
    assert (w.count(H), w.count(C), w.count(E)) == (2, 1, 0)


def test_ok_count_counts_the_ok_samples_of_every_kind() -> None:
    w = grown((0.0, H, OK, None, None), (1.0, C, Outcome.TIMEOUT, None, None), (2.0, A, OK, None, None))
    assert w.ok_count() == 2


def test_last_is_the_kind_and_outcome_of_the_newest_sample() -> None:
    w = grown((5.0, C, Outcome.TIMEOUT, None, None), (1.0, H, OK, None, None))
    assert w.last() == (H, OK)


def test_latest_is_the_latest_time_of_a_kind_even_when_it_arrived_earlier() -> None:
    w = grown((5.0, H, OK, None, None), (3.0, H, OK, None, None), (9.0, C, OK, None, None))
    assert (w.latest(H), w.latest(C), w.latest(A)) == (5.0, 9.0, None)


def test_ok_ttfts_are_those_of_ok_samples_of_the_kinds_asked_that_measured_one() -> None:
    w = grown(
        (0.0, C, OK, 30.0, 90.0),
        (1.0, C, Outcome.STREAM_ERROR, 5.0, None),
        (2.0, H, OK, 1.0, 1.0),
        (3.0, C, OK, None, 80.0),
        (4.0, C, OK, 10.0, 70.0),
    )
    assert w.ok_ttfts(C) == [30.0, 10.0]
    assert w.ok_ttfts(E) == []


def test_ok_totals_are_those_of_ok_samples_of_the_kinds_asked_that_measured_one() -> None:
    w = grown(
        (0.0, C, OK, None, 90.0),
        (1.0, E, OK, None, 40.0),
        (2.0, H, OK, None, 1.0),
        (3.0, E, Outcome.TIMEOUT, None, 50.0),
        (4.0, E, OK, None, None),
    )
    assert w.ok_totals(C, E) == [90.0, 40.0]
    assert w.ok_totals(H) == [1.0]


# --- a value ---------------------------------------------------------------------------------------


def test_windows_with_the_same_samples_are_equal_and_hash_alike() -> None:
    a = grown((0.0, C, OK, None, 10.0), (1.0, H, OK, 0.0, None))
    b = Window(list(a))
    assert a == b and hash(a) == hash(b)


def test_windows_differing_in_any_field_are_not_equal() -> None:
    base = Sample(0.0, C, OK, 10.0, 20.0)
    w = Window([base])
    for other in [
        Sample(1.0, C, OK, 10.0, 20.0),
        Sample(0.0, E, OK, 10.0, 20.0),
        Sample(0.0, C, Outcome.TIMEOUT, 10.0, 20.0),
        Sample(0.0, C, OK, 11.0, 20.0),
        Sample(0.0, C, OK, 10.0, None),
    ]:
        assert w != Window([other])
    assert w != Window([base, base])


def test_timings_compare_as_floats_do() -> None:
    assert Window([Sample(0.0, C, OK, 0.0, None)]) == Window([Sample(-0.0, C, OK, -0.0, None)])
    assert Window([Sample(0.0, C, OK, 0.0, None)]) != Window([Sample(0.0, C, OK, None, None)])


def test_window_cannot_be_changed() -> None:
    w = full(1)
    with pytest.raises(FrozenInstanceError):
        w._codes = b""


def test_window_survives_copy_and_pickle() -> None:
    w = full(2)
    assert copy.deepcopy(w) == w
    assert pickle.loads(pickle.dumps(w)) == w


# --- cost ------------------------------------------------------------------------------------------


def test_full_window_is_one_object_for_the_garbage_collector() -> None:
    w = full()
    inside = [o for o in gc.get_referents(w) if not isinstance(o, type)]
    assert gc.is_tracked(w)
    assert inside and not any(gc.is_tracked(o) for o in inside)


def test_full_window_takes_about_25_bytes_per_sample() -> None:
    w = full()
    size = sys.getsizeof(w) + sum(sys.getsizeof(o) for o in gc.get_referents(w) if not isinstance(o, type))
    assert size < 26 * len(w) + 200
