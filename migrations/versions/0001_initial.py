"""History store: models, hosts, membership, raw probe results, hourly roll-ups, discovery, best.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
    )
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
        sa.UniqueConstraint("url", name=op.f("uq_hosts_url")),
    )
    op.create_table(
        "membership_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.CheckConstraint("event IN ('joined', 'left', 'retired')", name=op.f("ck_membership_events_event")),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_membership_events_host_id_hosts")),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_membership_events_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership_events")),
    )
    # Clustered on its key (WITHOUT ROWID on SQLite): the key is the table's only index.
    op.create_table(
        "probe_results",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("outcome", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("connect_ms", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("total_ms", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_probe_results_host_id_hosts")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_probe_results_model_id_models")),
        sa.PrimaryKeyConstraint("model_id", "host_id", "at", "kind", name=op.f("pk_probe_results")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rollups_hourly",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("probes", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Integer(), nullable=False),
        sa.Column("ttft_ms_p50", sa.Float(), nullable=True),
        sa.Column("ttft_ms_p95", sa.Float(), nullable=True),
        sa.Column("latency_ms_p50", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_rollups_hourly_host_id_hosts")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_rollups_hourly_model_id_models")),
        sa.PrimaryKeyConstraint("model_id", "host_id", "hour", name=op.f("pk_rollups_hourly")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rollup_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("rolled_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_state")),
    )
    op.create_table(
        "discovery_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("models", sa.Integer(), nullable=False),
        sa.Column("hosts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discovery_runs")),
    )
    op.create_index(op.f("ix_discovery_runs_at"), "discovery_runs", ["at"], unique=False)
    op.create_table(
        "best_hosts",
        sa.Column("model_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_best_hosts_host_id_hosts")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_best_hosts_model_id_models")),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_best_hosts")),
    )


def downgrade() -> None:
    op.drop_table("best_hosts")
    op.drop_index(op.f("ix_discovery_runs_at"), table_name="discovery_runs")
    op.drop_table("discovery_runs")
    op.drop_table("rollup_state")
    op.drop_table("rollups_hourly")
    op.drop_table("probe_results")
    op.drop_table("membership_events")
    op.drop_table("hosts")
    op.drop_table("models")
