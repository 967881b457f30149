"""The status page's incidents (hosts going down or coming back, best-host changes), kept across
restarts: written by the leader, read back at start and by followers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.SmallInteger(), nullable=True),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.Column("vantage", sa.String(length=64), server_default="default", nullable=False),
        sa.CheckConstraint("kind IN ('down', 'up', 'best')", name=op.f("ck_incidents_kind")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_incidents_model_id_models")),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_incidents_host_id_hosts")),
        sa.ForeignKeyConstraint(["previous_id"], ["hosts.id"], name=op.f("fk_incidents_previous_id_hosts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(op.f("ix_incidents_vantage_at"), "incidents", ["vantage", "at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_incidents_vantage_at"), table_name="incidents")
    op.drop_table("incidents")
