"""the analyzer's report per deployment

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: a plain ALTER TABLE ADD COLUMN on SQLite too (see 0002).
    op.add_column("deployments", sa.Column("analysis", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("deployments", "analysis")
