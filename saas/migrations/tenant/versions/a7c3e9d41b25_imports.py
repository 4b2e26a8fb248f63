"""imports

Revision ID: a7c3e9d41b25
Revises: f6e47da0bac0
Create Date: 2026-11-23 16:10:00.000000

Contact and company imports (tenants/customers/imports/models.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from saas.migrate import tenant_schema

revision = "a7c3e9d41b25"
down_revision = "f6e47da0bac0"
branch_labels = None
depends_on = None


def _jsonb(name: str, default: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name,
        postgresql.JSONB(astext_type=sa.Text()),
        server_default=sa.text(default) if default else None,
        nullable=nullable,
    )


def upgrade() -> None:
    schema = tenant_schema()
    op.create_table(
        "imports",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_format", sa.String(length=10), nullable=False),
        sa.Column("encoding", sa.String(length=30), nullable=True),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        _jsonb("headers", "'[]'::jsonb"),
        _jsonb("mapping", "'{}'::jsonb"),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("processed_rows", sa.Integer(), nullable=False),
        sa.Column("created_count", sa.Integer(), nullable=False),
        sa.Column("updated_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        _jsonb("errors", "'[]'::jsonb"),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_imports_storage_key")),
        schema=schema,
    )
    op.create_index("ix_imports_created_at", "imports", ["created_at", "id"], unique=False, schema=schema)
    op.create_table(
        "import_records",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("import_id", sa.BigInteger(), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        _jsonb("previous", "", nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"],
            [f"{schema}.imports.id"],
            name=op.f("fk_import_records_import_id_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_records")),
        schema=schema,
    )
    op.create_index(
        "ix_import_records_import",
        "import_records",
        ["import_id", "record_type"],
        unique=False,
        schema=schema,
    )


def downgrade() -> None:
    schema = tenant_schema()
    op.drop_index("ix_import_records_import", table_name="import_records", schema=schema)
    op.drop_table("import_records", schema=schema)
    op.drop_index("ix_imports_created_at", table_name="imports", schema=schema)
    op.drop_table("imports", schema=schema)
