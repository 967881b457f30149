"""Host URLs: one canonical spelling, and the allow-list that decides which hosts get the key. The
code lives in the light client package (`libertai_failover.urls`), which the failover client
ships alone; the monitor uses the same functions."""

from libertai_failover.urls import DEFAULT_PORTS, AllowList, HostPattern, normalise_url

__all__ = ["DEFAULT_PORTS", "AllowList", "HostPattern", "normalise_url"]
