"""Vantage points: every result, roll-up, best host, membership event and discovery run is tagged
with the vantage (the monitor's location or name) that produced it; existing rows get 'default'.

The big tables' keys start with the vantage, so each vantage's reads, roll-ups and retention walk
their own part of the key. `rollup_state` keeps one mark per vantage; `vantages` lists the
vantages with their newest result (epoch ms), kept up to date by the writer.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VANTAGE_MAX = 64

# table -> (primary key after this revision, before it)
_KEYED = {
    "probe_results": (
        ["vantage", "model_id", "host_id", "at", "kind"],
        ["model_id", "host_id", "at", "kind"],
    ),
    "rollups_hourly": (["vantage", "model_id", "host_id", "hour"], ["model_id", "host_id", "hour"]),
    "best_hosts": (["vantage", "model_id"], ["model_id"]),
}
_CLUSTERED = {"probe_results", "rollups_hourly"}


def _vantage() -> sa.Column[str]:
    return sa.Column("vantage", sa.String(length=VANTAGE_MAX), server_default="default", nullable=False)


def _table_kwargs(table: str) -> dict[str, object]:
    return {"sqlite_with_rowid": False} if table in _CLUSTERED else {}


def upgrade() -> None:
    for table, (key, _old) in _KEYED.items():
        with op.batch_alter_table(table, recreate="auto", table_kwargs=_table_kwargs(table)) as batch:
            batch.add_column(_vantage())
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", key)
    for table in ("membership_events", "discovery_runs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(_vantage())
    with op.batch_alter_table("rollup_state") as batch:
        batch.add_column(_vantage())
        batch.drop_constraint("pk_rollup_state", type_="primary")
        batch.drop_column("id")
        batch.create_primary_key("pk_rollup_state", ["vantage"])
    vantages = op.create_table(
        "vantages",
        sa.Column("name", sa.String(length=VANTAGE_MAX), nullable=False),
        sa.Column("last_result_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_vantages")),
    )
    newest = op.get_bind().execute(sa.text("SELECT max(at) FROM probe_results")).scalar()
    if newest is not None:
        op.bulk_insert(vantages, [{"name": "default", "last_result_at": int(newest)}])


def downgrade() -> None:
    op.drop_table("vantages")
    op.execute("DELETE FROM rollup_state WHERE vantage <> 'default'")
    with op.batch_alter_table("rollup_state") as batch:
        batch.add_column(sa.Column("id", sa.SmallInteger(), server_default="1", nullable=False))
        batch.drop_constraint("pk_rollup_state", type_="primary")
        batch.drop_column("vantage")
        batch.create_primary_key("pk_rollup_state", ["id"])
    for table in ("membership_events", "discovery_runs"):
        op.execute(f"DELETE FROM {table} WHERE vantage <> 'default'")
        with op.batch_alter_table(table) as batch:
            batch.drop_column("vantage")
    for table, (_key, old) in _KEYED.items():
        op.execute(f"DELETE FROM {table} WHERE vantage <> 'default'")
        with op.batch_alter_table(table, recreate="auto", table_kwargs=_table_kwargs(table)) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("vantage")
            batch.create_primary_key(f"pk_{table}", old)
