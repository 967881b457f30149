"""Maintenance windows: hosts or models taken out of routing for a while, shared by every replica.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=2048), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "host IS NOT NULL OR model IS NOT NULL", name=op.f("ck_maintenance_windows_scope")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_index(op.f("ix_maintenance_windows_ends_at"), "maintenance_windows", ["ends_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_maintenance_windows_ends_at"), table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
