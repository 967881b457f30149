"""History store: probe results, discovery runs, membership, best hosts, hourly roll-ups.

The schema exists only through the Alembic migrations (`monitor.store.migrate`).
"""

from monitor.store.core import check_vantage
from monitor.store.errors import MissingDriverError, SchemaTooNewError, StoreError, UnsupportedDatabaseError
from monitor.store.facts import FactRows, read_facts
from monitor.store.schema import DEFAULT_VANTAGE
from monitor.store.store import Store
from monitor.store.tail import MembershipTail, ResultTail, TailCursor, load_best
from monitor.store.types import DiscoveryRecord, HistoryPoint, StoreStats, VantageInfo

__all__ = [
    "DEFAULT_VANTAGE",
    "DiscoveryRecord",
    "FactRows",
    "HistoryPoint",
    "MembershipTail",
    "MissingDriverError",
    "ResultTail",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "StoreStats",
    "TailCursor",
    "UnsupportedDatabaseError",
    "VantageInfo",
    "check_vantage",
    "load_best",
    "read_facts",
]
