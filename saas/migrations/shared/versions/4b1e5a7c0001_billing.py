"""billing: subscriptions, Stripe events, seat ledger

Revision ID: 4b1e5a7c0001
Revises: 3a9d5c1e7f20
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "4b1e5a7c0001"
down_revision = "3a9d5c1e7f20"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
