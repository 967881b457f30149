"""The history store's tables (SQLAlchemy Core).

The schema is created and changed only by the Alembic migrations in `migrations/`; these Table
objects describe it for queries and for the test that compares the two (`compare_metadata`).

Size is a design constraint (400 days of 1,000 hosts must fit in < 1 GiB of SQLite), so:
- times are integers (`at` epoch milliseconds, `hour` epoch seconds), names are stored once
  (`models`, `hosts`) and referenced by integer ids, kinds and outcomes are small integer codes
  (`monitor.store.codes`), durations are REAL milliseconds rounded to whole milliseconds (SQLite
  stores an integral REAL in 1-2 bytes instead of 8);
- the two big tables are clustered on their primary key (`WITHOUT ROWID` on SQLite) so that the key
  is the only index: (vantage, model_id, host_id, at, kind) serves restore, history, roll-up and
  retention (all of which walk it per vantage and (model, host)); (vantage, model_id, host_id,
  hour) does the same for roll-ups.

No column can hold an API key: the only text columns are model ids, host URLs, membership event
names, incident kinds and the discovery error summary (written by our own code, secret-free). A
test enforces this.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

MODEL_NAME_MAX = 255
HOST_URL_MAX = 2048
DISCOVERY_ERROR_MAX = 500
VANTAGE_MAX = 64
DEFAULT_VANTAGE = "default"
MAINTENANCE_REASON_MAX = 500
NOTIFICATION_EVENT_MAX = 600  # kind, model, host and since
NOTIFICATION_CHANNEL_MAX = 64
NOTIFICATION_TITLE_MAX = 2500
NOTIFICATION_BODY_MAX = 5000


def _vantage() -> Column[str]:
    """The vantage (the monitor's location or name) a row belongs to; see migration 0002."""
    return Column("vantage", String(VANTAGE_MAX), nullable=False, server_default=DEFAULT_VANTAGE)


models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(MODEL_NAME_MAX), nullable=False, unique=True),
)

hosts = Table(
    "hosts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(HOST_URL_MAX), nullable=False, unique=True),
)

membership_events = Table(
    "membership_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", BigInteger, nullable=False),  # epoch ms
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=False),
    Column("event", String(16), nullable=False),
    _vantage(),
    CheckConstraint("event IN ('joined', 'left', 'retired')", name="event"),
)

probe_results = Table(
    "probe_results",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=False),
    Column("at", BigInteger, nullable=False),  # probe start, epoch ms
    Column("kind", SmallInteger, nullable=False),  # codes.KIND_CODES
    Column("outcome", SmallInteger, nullable=False),  # codes.OUTCOME_CODES
    Column("status", SmallInteger, nullable=True),  # HTTP status
    Column("connect_ms", Float, nullable=True),
    Column("ttft_ms", Float, nullable=True),
    Column("total_ms", Float, nullable=True),
    _vantage(),
    PrimaryKeyConstraint("vantage", "model_id", "host_id", "at", "kind"),
    sqlite_with_rowid=False,
)

rollups_hourly = Table(
    "rollups_hourly",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=False),
    Column("hour", BigInteger, nullable=False),  # start of the hour, epoch seconds
    Column("probes", Integer, nullable=False),  # probes that count for availability (all kinds)
    Column("ok", Integer, nullable=False),
    Column("ttft_ms_p50", Float, nullable=True),
    Column("ttft_ms_p95", Float, nullable=True),
    Column("latency_ms_p50", Float, nullable=True),
    _vantage(),
    # The SLO counts (`monitor.core.slo`; NULL in hours rolled up before they were kept): probes
    # toward availability and the successes among them; successful completions with a TTFT and
    # those within `ttft_threshold_ms`, the `slo_ttft_ms` setting when the hour was rolled up.
    Column("slo_probes", Integer, nullable=True),
    Column("slo_ok", Integer, nullable=True),
    Column("ttft_counted", Integer, nullable=True),
    Column("ttft_within", Integer, nullable=True),
    Column("ttft_threshold_ms", Float, nullable=True),
    PrimaryKeyConstraint("vantage", "model_id", "host_id", "hour"),
    sqlite_with_rowid=False,
)

# Everything before `rolled_until` (epoch seconds, an hour boundary) has been rolled up. One row
# per vantage.
rollup_state = Table(
    "rollup_state",
    metadata,
    Column("rolled_until", BigInteger, nullable=False),
    _vantage(),
    PrimaryKeyConstraint("vantage"),
)

# The vantages that wrote results, with the newest result's time (epoch ms), kept by the writer.
vantages = Table(
    "vantages",
    metadata,
    Column("name", String(VANTAGE_MAX), primary_key=True),
    Column("last_result_at", BigInteger, nullable=True),
)

discovery_runs = Table(
    "discovery_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", BigInteger, nullable=False),  # epoch ms
    Column("ok", Boolean, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("models", Integer, nullable=False),
    Column("hosts", Integer, nullable=False),
    Column("error", String(DISCOVERY_ERROR_MAX), nullable=True),
    _vantage(),
    Index(None, "at"),
)

best_hosts = Table(
    "best_hosts",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=True),
    Column("since", BigInteger, nullable=False),  # epoch ms
    _vantage(),
    PrimaryKeyConstraint("vantage", "model_id"),
)

# The status page's incidents: hosts going down or coming back, best-host changes (written by the
# leader, read back at start and by followers; kept as long as discovery runs).
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", BigInteger, nullable=False),  # epoch ms
    Column("kind", String(8), nullable=False),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=True),  # the host, or the new best
    Column("outcome", SmallInteger, nullable=True),  # why a host went down (codes.OUTCOME_CODES)
    Column("previous_id", Integer, ForeignKey("hosts.id"), nullable=True),  # the previous best
    _vantage(),
    CheckConstraint("kind IN ('down', 'up', 'best', 'cert')", name="kind"),
    Index(None, "vantage", "at"),
)

# Maintenance windows (`monitor.store.windows`): shared by every vantage and replica. Host URL and
# model id as text, as the operator named them (a host may not be known yet when its window is set).
maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host", String(HOST_URL_MAX), nullable=True),
    Column("model", String(MODEL_NAME_MAX), nullable=True),
    Column("starts_at", BigInteger, nullable=False),  # epoch ms
    Column("ends_at", BigInteger, nullable=False),  # epoch ms
    Column("reason", String(MAINTENANCE_REASON_MAX), nullable=False),
    Column("ended_at", BigInteger, nullable=True),  # epoch ms: ended early
    CheckConstraint("host IS NOT NULL OR model IS NOT NULL", name="scope"),
    Index(None, "ends_at"),
)


# Notifications (`monitor.store.notifications`): every message decided by a leader, pending until it
# is delivered or dropped, so that a new leader sends what was pending and nothing that was sent. The
# channel is the URLs' schemes (tgram, json, ...): never a URL, whose tokens stay out of the database.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event", String(NOTIFICATION_EVENT_MAX), nullable=False),
    Column("channel", String(NOTIFICATION_CHANNEL_MAX), nullable=False),
    Column("state", String(16), nullable=False),  # pending, sent, dropped
    Column("attempts", Integer, nullable=False),
    Column("title", String(NOTIFICATION_TITLE_MAX), nullable=False),
    Column("body", String(NOTIFICATION_BODY_MAX), nullable=False),
    Column("created_at", BigInteger, nullable=False),  # epoch ms
    Column("updated_at", BigInteger, nullable=False),  # epoch ms
    UniqueConstraint("event", "channel"),
    Index(None, "state"),
)


# Host certificates (`monitor.store.certs`): the last one each HTTPS host showed and its pin, shared
# by every replica and vantage, so that `certs accept HOST` is seen by all of them.
certificates = Table(
    "certificates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host", String(HOST_URL_MAX), nullable=False, unique=True),
    Column("sha256", String(64), nullable=False),  # lowercase hex
    Column("not_after", BigInteger, nullable=True),  # epoch ms
    Column("seen_at", BigInteger, nullable=False),  # epoch ms
    Column("changed_at", BigInteger, nullable=True),  # epoch ms
    Column("pinned", String(64), nullable=True),  # lowercase hex; NULL: not pinned
)


# What the probing process learnt of each member beside its health (`monitor.store.facts`): the
# latest fact of each (vantage, model, host, kind), as JSON text (`monitor.core.host_facts`), read by
# followers and by other vantages' answers. A few rows per member: no ids for the kind.
host_facts = Table(
    "host_facts",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # a fact's ProbeKind value
    Column("at", BigInteger, nullable=False),  # epoch ms
    Column("value", Text, nullable=False),  # JSON: numbers, paths, the identity prompt's answer
    _vantage(),
    PrimaryKeyConstraint("vantage", "model_id", "host_id", "kind"),
)
