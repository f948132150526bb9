"""per-app scaling settings and team limits

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def app_columns() -> list[sa.Column[int] | sa.Column[float]]:
    # Constant server defaults, so existing rows get them and SQLite adds each column with a
    # plain ALTER TABLE ADD COLUMN (batch mode would rebuild the table, and with foreign keys on,
    # dropping the old `apps` would cascade to every deployment).
    return [
        sa.Column("min_instances", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_instances", sa.Integer(), server_default="4", nullable=False),
        sa.Column("target_concurrency", sa.Integer(), server_default="100", nullable=False),
        sa.Column("scale_to_zero_after_s", sa.Integer(), server_default="300", nullable=False),
        sa.Column("capacity_share", sa.Float(), server_default="1.0", nullable=False),
    ]


def team_columns() -> list[sa.Column[int]]:
    return [
        sa.Column("max_instances", sa.Integer(), nullable=True),
        sa.Column("max_memory_mb", sa.Integer(), nullable=True),
    ]


def upgrade() -> None:
    for column in app_columns():
        op.add_column("apps", column)
    for team_column in team_columns():
        op.add_column("teams", team_column)


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35 has it), for the same reason as above.
    for team_column in team_columns():
        op.drop_column("teams", team_column.name)
    for column in app_columns():
        op.drop_column("apps", column.name)
