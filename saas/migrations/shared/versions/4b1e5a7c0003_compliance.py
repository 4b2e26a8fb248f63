"""compliance exports, tenant deletion

Revision ID: 4b1e5a7c0003
Revises: 4b1e5a7c0002
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "4b1e5a7c0003"
down_revision = "4b1e5a7c0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
