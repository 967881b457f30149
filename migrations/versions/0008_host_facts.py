"""Host facts: the latest identity fingerprint, paths and throughput of each member, per vantage.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_facts",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("vantage", sa.String(length=64), server_default="default", nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_host_facts_host_id_hosts")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_host_facts_model_id_models")),
        sa.PrimaryKeyConstraint("vantage", "model_id", "host_id", "kind", name=op.f("pk_host_facts")),
    )


def downgrade() -> None:
    op.drop_table("host_facts")
