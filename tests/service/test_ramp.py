"""The first probes of a new host list: spread evenly over a ramp sized by the list."""

from __future__ import annotations

from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.results import ProbeKind
from monitor.core.steps import finish
from monitor.parts.dispatcher import Dispatcher
from monitor.service import Monitor, Target

HOSTS = 4000  # a ramp of HOSTS / 200 = 20 s


async def _run(target: Target) -> None:
    return None


async def test_first_probes_of_a_large_list_are_spread_evenly_over_the_ramp() -> None:
    settings = load_settings(
        environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    )
    clock = FakeClock()
    m = Monitor(settings, clock=clock)
    dispatcher: Dispatcher[Target] = Dispatcher(_run, lambda t: 30.0, limit=8, jitter=0.0, clock=clock)
    m.fleet.start_probing(dispatcher)
    start = clock.monotonic()
    listing = {
        f"model-{j}": [f"http://127.0.0.1:{20000 + j * 1000 + i}" for i in range(1000)] for j in range(4)
    }
    finish(m.fleet.apply_listing(listing, clock.time()))

    dues = [
        dispatcher.next_due((model, host, ProbeKind.HEALTH))
        for model, hosts in listing.items()
        for host in hosts
    ]
    offsets = sorted(d - start for d in dues if d is not None)
    assert len(offsets) == HOSTS
    assert offsets[-1] <= HOSTS / 200
    # Even: each quarter of the ramp holds about a quarter of the first probes.
    quarters = [sum(1 for o in offsets if q * 5.0 <= o < (q + 1) * 5.0) for q in range(4)]
    assert all(800 <= n <= 1200 for n in quarters), quarters
