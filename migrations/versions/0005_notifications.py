"""Notifications: every message a leader decided, pending until delivered or dropped.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=600), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=2500), nullable=False),
        sa.Column("body", sa.String(length=5000), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("event", "channel", name=op.f("uq_notifications_event_channel")),
    )
    op.create_index(op.f("ix_notifications_state"), "notifications", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_notifications_state"), table_name="notifications")
    op.drop_table("notifications")
