"""Host certificates (monitor.core.certs): a change is a different fingerprint, a host's first
certificate is none; with pinning the first one is trusted on first use and a changed one is not
trusted until accepted."""

from __future__ import annotations

from monitor.core.certs import PeerCert, accept, observe

H = "https://a.example"
T0 = 1_700_000_000.0
OLD, NEW = PeerCert("a" * 64, T0 + 86400), PeerCert("b" * 64, T0 + 2 * 86400)


def test_a_hosts_first_certificate_is_no_change() -> None:
    record, changed = observe(None, H, OLD, T0, pinning=False)
    assert not changed
    assert (record.sha256, record.not_after, record.changed_at, record.pinned) == (
        OLD.sha256,
        T0 + 86400,
        None,
        None,
    )


def test_another_fingerprint_is_a_change_and_the_same_one_is_not() -> None:
    first, _ = observe(None, H, OLD, T0, pinning=False)
    same, changed = observe(first, H, OLD, T0 + 5, pinning=False)
    assert not changed and same.seen_at == T0 + 5
    other, changed = observe(same, H, NEW, T0 + 10, pinning=False)
    assert changed and other.changed_at == T0 + 10 and other.sha256 == NEW.sha256
    assert other.trusted  # without pinning a change is only recorded


def test_with_pinning_the_first_certificate_is_pinned_and_a_changed_one_is_not_trusted() -> None:
    first, _ = observe(None, H, OLD, T0, pinning=True)
    assert first.pinned == OLD.sha256 and first.trusted
    changed, _ = observe(first, H, NEW, T0 + 10, pinning=True)
    assert changed.pinned == OLD.sha256 and not changed.trusted
    back, _ = observe(changed, H, OLD, T0 + 20, pinning=True)
    assert back.trusted  # the pinned certificate again


def test_accepting_pins_the_certificate_shown_now() -> None:
    first, _ = observe(None, H, OLD, T0, pinning=True)
    changed, _ = observe(first, H, NEW, T0 + 10, pinning=True)
    accepted = accept(changed)
    assert accepted.pinned == NEW.sha256 and accepted.trusted


def test_pinning_turned_on_later_pins_what_the_host_shows_next() -> None:
    unpinned, _ = observe(None, H, OLD, T0, pinning=False)
    pinned, _ = observe(unpinned, H, OLD, T0 + 5, pinning=True)
    assert pinned.pinned == OLD.sha256


def test_tls_as_json_gives_times_in_iso_8601() -> None:
    record, _ = observe(None, H, OLD, T0, pinning=True)
    assert record.as_json() == {
        "sha256": OLD.sha256,
        "not_after": "2023-11-15T22:13:20Z",
        "changed_at": None,
        "pinned": OLD.sha256,
        "trusted": True,
    }
