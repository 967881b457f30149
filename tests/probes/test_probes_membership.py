"""apply_listing: joins, leaves, grace period, retirement, untrusted hosts."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.membership import (
    CHUNK_HOSTS,
    Membership,
    MembershipChange,
    apply_listing,
)
from monitor.core.steps import finish
from monitor.core.urls import AllowList
from monitor.slices import run_in_slices

ALLOW = AllowList.parse("https://*.libertai.io")
A, B = "https://a.libertai.io", "https://b.libertai.io"
EVIL = "https://evil.example"
GRACE = 300.0


def events(changes: list[MembershipChange]) -> list[tuple[str, str, str]]:
    return [(c.model, c.host, c.event) for c in changes]


def test_new_hosts_join() -> None:
    m, changes = finish(apply_listing(Membership(), {"m": [A, B]}, ALLOW, 100.0, GRACE))
    assert events(changes) == [("m", A, "joined"), ("m", B, "joined")]
    info = m.get("m", A)
    assert info is not None and info.first_seen == info.last_seen == 100.0 and info.trusted
    assert info.missing_since is None and all(c.at == 100.0 for c in changes)


def test_listed_again_updates_last_seen_without_change() -> None:
    m, _ = finish(apply_listing(Membership(), {"m": [A]}, ALLOW, 100.0, GRACE))
    m, changes = finish(apply_listing(m, {"m": [A]}, ALLOW, 160.0, GRACE))
    info = m.get("m", A)
    assert changes == [] and info is not None and (info.first_seen, info.last_seen) == (100.0, 160.0)


def test_missing_host_leaves_but_stays_member_within_grace() -> None:
    m, _ = finish(apply_listing(Membership(), {"m": [A, B]}, ALLOW, 100.0, GRACE))
    m, changes = finish(apply_listing(m, {"m": [A]}, ALLOW, 160.0, GRACE))
    assert events(changes) == [("m", B, "left")]
    info = m.get("m", B)
    assert info is not None and info.missing_since == 160.0


def test_missing_host_left_only_once() -> None:
    m, _ = finish(apply_listing(Membership(), {"m": [A, B]}, ALLOW, 100.0, GRACE))
    m, _ = finish(apply_listing(m, {"m": [A]}, ALLOW, 160.0, GRACE))
    m, changes = finish(apply_listing(m, {"m": [A]}, ALLOW, 220.0, GRACE))
    info = m.get("m", B)
    assert changes == [] and info is not None and info.missing_since == 160.0


def test_host_retired_when_grace_expires() -> None:
    m, _ = finish(apply_listing(Membership(), {"m": [A, B]}, ALLOW, 100.0, GRACE))
    m, _ = finish(apply_listing(m, {"m": [A]}, ALLOW, 160.0, GRACE))
    m, changes = finish(apply_listing(m, {"m": [A]}, ALLOW, 160.0 + GRACE, GRACE))
    assert events(changes) == [("m", B, "retired")]
    assert m.get("m", B) is None and m.get("m", A) is not None


def test_host_reappearing_within_grace_continues() -> None:
    m, _ = finish(apply_listing(Membership(), {"m": [A, B]}, ALLOW, 100.0, GRACE))
    m, _ = finish(apply_listing(m, {"m": [A]}, ALLOW, 160.0, GRACE))
    m, changes = finish(apply_listing(m, {"m": [A, B]}, ALLOW, 200.0, GRACE))
    info = m.get("m", B)
    assert info is not None and info.missing_since is None and info.first_seen == 100.0
    assert events(changes) == [("m", B, "joined")]


def test_missing_model_hosts_follow_grace_then_model_disappears() -> None:
    m, _ = finish(apply_listing(Membership(), {"m": [A], "n": [B]}, ALLOW, 100.0, GRACE))
    m, changes = finish(apply_listing(m, {"n": [B]}, ALLOW, 160.0, GRACE))
    assert events(changes) == [("m", A, "left")] and "m" in m.models
    m, changes = finish(apply_listing(m, {"n": [B]}, ALLOW, 1000.0, GRACE))
    assert events(changes) == [("m", A, "retired")] and "m" not in m.models


def test_zero_grace_leaves_and_retires_at_once() -> None:
    m, _ = finish(apply_listing(Membership(), {"m": [A, B]}, ALLOW, 100.0, 0.0))
    m, changes = finish(apply_listing(m, {"m": [A]}, ALLOW, 101.0, 0.0))
    assert events(changes) == [("m", B, "left"), ("m", B, "retired")] and m.get("m", B) is None


def test_untrusted_host_is_member_not_trusted() -> None:
    m, changes = finish(apply_listing(Membership(), {"m": [A, EVIL]}, ALLOW, 100.0, GRACE))
    info = m.get("m", EVIL)
    assert info is not None and not info.trusted and ("m", EVIL, "joined") in events(changes)
    assert m.trusted_hosts("m") == (A,)


def test_listed_model_with_no_servers_is_kept() -> None:
    m, changes = finish(apply_listing(Membership(), {"m": []}, ALLOW, 100.0, GRACE))
    assert "m" in m.models and changes == [] and len(m) == 0


def test_membership_is_immutable_and_input_unchanged() -> None:
    m0, _ = finish(apply_listing(Membership(), {"m": [A]}, ALLOW, 100.0, GRACE))
    m1, _ = finish(apply_listing(m0, {"m": []}, ALLOW, 160.0, GRACE))
    info = m0.get("m", A)
    assert info is not None and info.missing_since is None
    assert m1 != m0
    try:
        m1.models["m"][A] = info  # type: ignore[index]
    except TypeError:
        pass
    else:
        raise AssertionError("membership mapping is writable")


def _big_listing(models: int, hosts: int) -> dict[str, list[str]]:
    return {f"m{m}": [f"https://h{m}-{i}.libertai.io" for i in range(hosts)] for m in range(models)}


async def test_the_diff_in_slices_on_the_loop_gives_the_same_membership_and_changes_as_at_once() -> None:
    allow = AllowList.parse("https://*.libertai.io")
    first = _big_listing(3, 3000)
    second = {**_big_listing(2, 3000), "m9": ["https://new.libertai.io"]}
    sync_m, sync_c = finish(apply_listing(Membership(), first, allow, 1.0, 600))
    async_m, async_c = await run_in_slices(apply_listing(Membership(), first, allow, 1.0, 600), 0.0)
    assert (async_m, async_c) == (sync_m, sync_c)
    assert await run_in_slices(apply_listing(sync_m, second, allow, 2.0, 600), 0.0) == finish(
        apply_listing(sync_m, second, allow, 2.0, 600)
    )


async def test_a_big_listing_gives_the_event_loop_turns_while_it_is_applied() -> None:
    allow = AllowList.parse("https://*.libertai.io")
    listing = _big_listing(10, CHUNK_HOSTS)  # ten chunks
    turns = 0
    done = False

    async def other_task() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    before = turns
    await run_in_slices(apply_listing(Membership(), listing, allow, 1.0, 600), 0.0)
    done = True
    await task
    assert turns - before >= 9


# --- properties over any history of listings -------------------------------------------------------

HOSTS = [A, B, "https://c.libertai.io", EVIL]
listings = st.dictionaries(
    st.sampled_from(["m", "n"]), st.lists(st.sampled_from(HOSTS), max_size=5), max_size=2
)
# Gaps between listings shorter than, equal to and longer than the grace period.
gaps = st.sampled_from([0.0, 60.0, GRACE / 2, GRACE, 2 * GRACE])
Diff = tuple[Membership, list[MembershipChange]]
histories = st.lists(st.tuples(gaps, listings), min_size=1, max_size=8)


def replayed(history: list[tuple[float, dict[str, list[str]]]], grace: float) -> list[Diff]:
    m, diffs, now = Membership(), [], 100.0
    for gap, listing in history:
        now += gap
        m, changes = finish(apply_listing(m, listing, ALLOW, now, grace))
        diffs.append((m, changes))
    return diffs


@given(history=histories, grace=st.sampled_from([0.0, GRACE]))
def test_members_are_the_listed_hosts_and_those_missing_for_less_than_the_grace(
    history: list[tuple[float, dict[str, list[str]]]], grace: float
) -> None:
    times = list(itertools.accumulate((gap for gap, _ in history), initial=100.0))[1:]
    m, _ = replayed(history, grace)[-1]
    now, last = times[-1], history[-1][1]
    for model, host in {(model, h) for _, listing in history for model, hs in listing.items() for h in hs}:
        last_listed = max(i for i, (_, listing) in enumerate(history) if host in listing.get(model, []))
        absent_since = times[last_listed + 1] if last_listed + 1 < len(times) else None
        info = m.get(model, host)
        if host in last.get(model, []):
            assert info is not None and info.missing_since is None and info.last_seen == now
            assert info.trusted == ALLOW.admits(host)
        elif absent_since is not None and now - absent_since < grace:
            assert info is not None and info.missing_since == absent_since
        else:
            assert info is None


@given(history=histories, grace=st.sampled_from([0.0, GRACE]))
def test_each_host_joins_then_leaves_then_joins_again_or_retires(
    history: list[tuple[float, dict[str, list[str]]]], grace: float
) -> None:
    per_host: dict[tuple[str, str], list[str]] = {}
    for _, changes in replayed(history, grace):
        for c in changes:
            per_host.setdefault((c.model, c.host), []).append(c.event)
    follows = {"joined": {"left"}, "left": {"joined", "retired"}, "retired": {"joined"}}
    for said in per_host.values():
        assert said[0] == "joined"
        assert all(b in follows[a] for a, b in itertools.pairwise(said)), said


@given(history=histories, grace=st.sampled_from([0.0, GRACE]))
def test_the_same_listing_again_at_the_same_time_changes_nothing(
    history: list[tuple[float, dict[str, list[str]]]], grace: float
) -> None:
    m, _ = replayed(history, grace)[-1]
    now = 100.0 + sum(gap for gap, _ in history)
    again, changes = finish(apply_listing(m, history[-1][1], ALLOW, now, grace))
    assert changes == [] and again == m
