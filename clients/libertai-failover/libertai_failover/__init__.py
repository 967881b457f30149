"""A client that fails over: the monitor's answer inside the official openai and anthropic SDKs.

    t = FailoverTransport("http://127.0.0.1:8787", gateway_url="https://api.libertai.io")
    client = openai.OpenAI(base_url="https://api.libertai.io/v1", api_key=KEY,
                           http_client=httpx2.Client(transport=t))

Each request that names a model (JSON body `model`) goes to a host the monitor offers for it (one
of its `candidates` by power of two choices, a conversation kept on its host; else its best host),
with the id and extra fields the monitor gives (`upstream_model`, `request_fields`), and fails over
in order: the other hosts, then the gateway. Other requests go to the gateway unchanged.
Keyword arguments of both transports:

- `gateway_url`: where requests go when no host takes them (default: where the SDK sent them);
- `allowed_hosts`: URL patterns of hosts that may get the key, as the service's setting
  (default `https://*.libertai.io`); a host the monitor names outside it is never called;
- `ca_bundle`: PEM file of extra CAs or pinned host certificates, as the service's setting;
- `refresh` (5 s): at most one read of the monitor per model per `refresh` seconds;
- `monitor_timeout` (2 s), `connect_timeout` (3 s, per host before the next is tried),
  `penalty` (30 s: a host that just failed here is tried after the others for this long);
- `on_attempt`: called with an `Attempt` (host, reason, status, elapsed) after every try;
- `transport`: the inner httpx2 transport that sends to hosts (default: a pooled one);
- `spread` (True): follow the answer's candidates; False keeps its single best host;
- `first_token_timeout` (the larger of 2 s and 4x the host's p95 TTFT): a streamed try without a
  first body byte by then is left for the next host;
- `hedge_after` (off), `hedge_budget` (0.1): a second try on the next host after that long without
  a first byte, at most that share of the last minute's requests (a hedged request may be billed
  twice);
- `affinity_size` (10,000), `affinity_ttl` (1800 s): conversations remembered, and for how long idle;
- `clock`, `rng`: a `libertai_failover.clock.Clock` and a `random.Random` (tests).

Every response carries the host that answered in its `X-LibertAI-Host` header, and every try in
`response.extensions["libertai_attempts"]`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libertai_failover.aio import AsyncFailoverTransport
    from libertai_failover.core import HOST_HEADER, Attempt
    from libertai_failover.options import DEFAULT_ALLOWED_HOSTS
    from libertai_failover.sync import FailoverTransport

__version__ = "0.1.0"

__all__ = ["DEFAULT_ALLOWED_HOSTS", "HOST_HEADER", "AsyncFailoverTransport", "Attempt", "FailoverTransport"]

# Imported on first use: `libertai_failover.answers` (the monitor's `best` command) must not need httpx2, the
# optional `client` extra.
_HOMES = {
    "AsyncFailoverTransport": "libertai_failover.aio",
    "FailoverTransport": "libertai_failover.sync",
    "Attempt": "libertai_failover.core",
    "HOST_HEADER": "libertai_failover.core",
    "DEFAULT_ALLOWED_HOSTS": "libertai_failover.options",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'libertai_failover' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
