"""Ground truth: what every host received, and what a correct monitor should report right now.

`expected` is derived from the configured behaviour only, assuming the monitor trusts the
network's CA (`SimNetwork.ca_pem`) and the allow-list `http://127.0.0.1:*,https://127.0.0.1:*`.
The precedence follows what a probe meets first: the host being down, then a hang or redirect
(in front of everything), the health answer, then the billed probe (key, errors, faults).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from monitor.core.results import HostState, Outcome, error_status_outcome
from monitor.sim.behaviour import is_down, is_listed, is_scheduled
from monitor.sim.capacity import ModelCapacity
from monitor.sim.specs import Behaviour, ModelSpec
from monitor.sim.state import SimHost, SimState

# Best host is "determinable" only when it beats the runner-up by this factor (median TTFT):
# the monitor keeps an incumbent unless a challenger is 20% better, and medians are noisy.
BEST_MARGIN = 1.5
_IDLE = ModelCapacity()  # what a model's server that has had no request reports


def _verdict(up: bool, reason: Outcome, *also: Outcome) -> dict[str, Any]:
    return {
        "state": str(HostState.UP if up else HostState.DOWN),
        "reason": str(reason),
        "acceptable_reasons": [str(reason), *(str(a) for a in also if a is not reason)],
    }


def expected_for(b: Behaviour, model: ModelSpec, t: float) -> dict[str, Any]:
    """The state and reason a correct monitor reports for one (model, host) at time `t`."""
    if is_down(b, t):
        return _verdict(False, Outcome.CONNECT_ERROR if b.down_mode == "refuse" else Outcome.SERVER_ERROR)
    if b.fault == "hang":
        return _verdict(False, Outcome.TIMEOUT)
    if b.fault == "redirect":
        return _verdict(False, Outcome.BAD_RESPONSE)
    if not b.loaded:
        return _verdict(False, Outcome.NOT_LOADED)
    if model.kind == "image":
        # Image models are probed by health only; nothing else about the host is visible.
        return _verdict(True, Outcome.OK)
    if not b.key_distributed or b.key_blocked:
        return _verdict(False, Outcome.KEY_REJECTED)
    if b.error_rate >= 0.5:
        worst = max(b.errors, key=lambda sr: sr[1])[0]
        others = [error_status_outcome(s) for s, _ in b.errors]
        return _verdict(False, error_status_outcome(worst), *others)
    if b.fault == "html":
        reason = Outcome.BAD_RESPONSE if b.html_status < 400 else error_status_outcome(b.html_status)
        return _verdict(False, reason, Outcome.BAD_RESPONSE)
    if b.fault == "bad_json":
        return _verdict(False, Outcome.BAD_RESPONSE, Outcome.STREAM_ERROR)
    if b.fault == "slow_headers":
        return _verdict(False, Outcome.TIMEOUT)
    if model.kind == "text":
        # Streaming faults only touch streamed generations, so embedding hosts are unaffected.
        if b.fault in ("error_event", "cut"):
            return _verdict(False, Outcome.STREAM_ERROR)
        if b.fault == "endless":
            return _verdict(False, Outcome.TIMEOUT, Outcome.STREAM_ERROR, Outcome.BAD_RESPONSE)
    if b.errors:
        return _verdict(True, Outcome.OK, *(error_status_outcome(s) for s, _ in b.errors))
    return _verdict(True, Outcome.OK)


def normalized_url(url: str) -> str:
    """The form a monitor should report a host URL in: lower-case scheme and host, no trailing slash."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path.rstrip('/')}"


def _aliases(model: ModelSpec) -> list[str]:
    return [model.id, model.id + "-thinking"] if model.reasoning else [model.id]


def host_truth(state: SimState, host: SimHost, t: float) -> dict[str, Any]:
    b = host.behaviour
    expected: dict[str, Any] = {}
    for model in host.models.values():
        verdict = expected_for(b, model, t)
        if host.spec.tls and verdict["state"] == "up":
            verdict["without_ca"] = _verdict(False, Outcome.TLS_ERROR)
        for alias in _aliases(model):
            expected[alias] = verdict
    return {
        "name": host.name,
        "url": host.listed_url,
        "normalized_url": normalized_url(host.listed_url),
        "direct_url": host.direct_url,
        "tls": host.spec.tls,
        "listed": is_listed(b, t),
        "down": is_down(b, t),
        "models": list(host.spec.models),
        "behaviour": b.to_json(),
        "summary": b.summary(),
        "requests": host.traffic.to_json(),
        "via_gateway": dict(sorted(host.via_gateway.items())),
        "saw_key": host.traffic.saw_key,
        "models_requested": {m: dict(sorted(p.items())) for m, p in sorted(host.models_requested.items())},
        "ttft_truth_ms": [round(x, 3) for x in host.ttft_truth_ms],
        "itl_truth_ms": [round(x, 3) for x in host.itl_truth_ms],
        "prompt_cache_hits": host.cache_hits,
        # Per model this host serves: slots, requests being served and waiting, prefix cache hits.
        "capacity": {
            m: host.capacity.get(m, _IDLE).to_json(b.slots) for m in host.spec.models if m in host.models
        },
        "expected": expected,
    }


def _best_candidate(host: SimHost, verdict: dict[str, Any], t: float) -> bool:
    b = host.behaviour
    return (
        verdict["state"] == "up"
        and is_listed(b, t)
        and not is_scheduled(b)  # a flapping host is kept out of `best` by a correct monitor
        and not b.errors
        and urlsplit(host.listed_url).hostname == "127.0.0.1"
    )


def expected_best(state: SimState, t: float) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for model in state.scenario.models:
        candidates = sorted(
            (
                (h.behaviour.ttft.median_ms, normalized_url(h.listed_url))
                for h in state.by_model.get(model.id, [])
                if _best_candidate(h, expected_for(h.behaviour, model, t), t)
            ),
        )
        best: str | None = None
        if len(candidates) == 1 or (
            # Image models are probed by health alone: there is no latency to rank several by.
            len(candidates) > 1
            and model.kind != "image"
            and candidates[1][0] >= BEST_MARGIN * max(candidates[0][0], 1.0)
        ):
            best = candidates[0][1]
        for alias in _aliases(model):
            out[alias] = best
    return out


def gateway_truth(state: SimState) -> dict[str, Any]:
    return {
        "url": state.gateway.url,
        "fault": state.gateway.spec.fault,
        "upstream_timeout": state.gateway.spec.upstream_timeout,
        "routing": state.gateway.spec.routing,
        "in_flight": {name: n for name, n in sorted(state.gateway.in_flight.items()) if n},
        "requests": state.gateway.traffic.to_json(),
        "saw_key": state.gateway.traffic.saw_key,
    }


def ground_truth(state: SimState) -> dict[str, Any]:
    t = state.elapsed()
    return {
        "scenario": state.scenario.name,
        "seed": state.seed,
        "elapsed_s": round(t, 3),
        "gateway": gateway_truth(state),
        "hosts": [host_truth(state, h, t) for h in state.hosts.values()],
        "expected_best": expected_best(state, t),
    }
