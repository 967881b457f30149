"""The monitor's own key blocked: the reason read from a 403, said once in the log, in /readyz."""

from __future__ import annotations

import json

from structlog.testing import capture_logs

from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.parts.fleet import Fleet
from monitor.parts.readiness import readiness
from monitor.parts.recorder import Recorder, health_policy
from monitor.parts.targets import Targets
from monitor.probe.classify import DETAIL_MAX_CHARS, block_reason

SECRET = "sk-libertai-0123456789abcdef"
HOSTS = [f"http://127.0.0.1:{1000 + i}" for i in range(3)]


def _body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_a_403_with_libertais_error_object_is_a_block_with_its_message() -> None:
    body = _body({"error": {"message": "No credits.", "type": "invalid_request_error", "code": "no_credits"}})
    assert block_reason(403, body) == "No credits."
    assert block_reason(403, _body({"detail": "API key blocked"})) is None
    assert block_reason(401, body) is None


def test_a_block_reason_is_printable_bounded_and_never_holds_the_key() -> None:
    hostile = "Limit\x1b[31m reached\u202e for " + SECRET + " " + "x" * 500
    reason = block_reason(403, _body({"error": {"message": hostile}}), SECRET)
    assert reason is not None and reason.isprintable() and len(reason) <= DETAIL_MAX_CHARS
    assert SECRET[:12] not in reason and reason.startswith("Limit")


def test_readyz_says_why_the_key_is_blocked() -> None:
    r = readiness(
        has_host_list=True, key_set=True, key_outcome=Outcome.OK, store=None, key_blocked="No credits."
    )
    assert not r.ready and r.checks["api_key"] == "blocked: No credits."


def test_a_blocked_key_is_logged_once_however_many_probes_say_so() -> None:
    settings = load_settings(
        environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    )
    fleet = Fleet(settings, Targets(settings, FakeClock()))
    finish(fleet.apply_listing({"m": HOSTS}, 1.0))
    recorder = Recorder(fleet, health_policy(settings), None)
    with capture_logs() as logs:
        for t in range(10):
            for host in HOSTS:
                recorder.record(ProbeResult("m", host, ProbeKind.HEALTH, Outcome.OK, 2.0 + t, 200))
                recorder.record(
                    ProbeResult(
                        "m",
                        host,
                        ProbeKind.COMPLETION,
                        Outcome.KEY_BLOCKED,
                        2.0 + t,
                        403,
                        detail="No credits.",
                    )
                )
    said = [e for e in logs if e["event"].startswith("the API key is blocked")]
    assert [e["reason"] for e in said] == ["No credits."]
    assert recorder.key_watch.blocked == "No credits."
    assert {h.state for h in fleet.health.values()} == {HostState.UP}
