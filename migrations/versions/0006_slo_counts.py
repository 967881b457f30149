"""SLO counts in the hourly roll-ups: probes toward availability and their successes, completions
with a TTFT and those within the threshold (kept with it), for the 30-day error budget.

Hours rolled up before this revision keep NULL there: their counts cannot be rebuilt once their raw
results are gone, and they count toward no objective.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("slo_probes", sa.Integer),
    ("slo_ok", sa.Integer),
    ("ttft_counted", sa.Integer),
    ("ttft_within", sa.Integer),
    ("ttft_threshold_ms", sa.Float),
)


def upgrade() -> None:
    for name, kind in _COLUMNS:
        op.add_column("rollups_hourly", sa.Column(name, kind(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by rebuilding the table, which must stay clustered (WITHOUT ROWID).
    with op.batch_alter_table("rollups_hourly", table_kwargs={"sqlite_with_rowid": False}) as batch:
        for name, _kind in reversed(_COLUMNS):
            batch.drop_column(name)
