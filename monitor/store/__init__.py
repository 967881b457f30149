"""History store: probe results, discovery runs, membership, best hosts, hourly roll-ups.

The schema exists only through the Alembic migrations (`monitor.store.migrate`).
"""

from monitor.store.store import Store, StoreError
from monitor.store.types import DiscoveryRecord, HistoryPoint, MembershipEvent, StoreStats

__all__ = ["DiscoveryRecord", "HistoryPoint", "MembershipEvent", "Store", "StoreError", "StoreStats"]
