"""duplicates: dismissed pairs and merges

Revision ID: 7d2c9e410001
Revises: a7c3e9d41b25
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "7d2c9e410001"
down_revision = "a7c3e9d41b25"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
