"""Certificates: the last one each HTTPS host showed and its pin; certificate changes as incidents.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=2048), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("not_after", sa.BigInteger(), nullable=True),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.BigInteger(), nullable=True),
        sa.Column("pinned", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("host", name=op.f("uq_certificates_host")),
    )
    _incident_kinds("'down', 'up', 'best', 'cert'")


def downgrade() -> None:
    op.execute("DELETE FROM incidents WHERE kind = 'cert'")
    _incident_kinds("'down', 'up', 'best'")
    op.drop_table("certificates")


def _incident_kinds(kinds: str) -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_constraint(op.f("ck_incidents_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_incidents_kind"), f"kind IN ({kinds})")
