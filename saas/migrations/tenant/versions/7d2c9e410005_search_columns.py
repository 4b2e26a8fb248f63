"""search columns: the global search's grams move onto the records (GIN), search_grams goes;
a company's contacts indexed by name

Revision ID: 7d2c9e410005
Revises: 7d2c9e410004
Create Date: 2026-12-02 11:20:00

The backfill is a frozen copy of tenants.customers.search.derive as it is at this revision.
"""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from saas.migrate import tenant_schema

revision = "7d2c9e410005"
down_revision = "7d2c9e410004"
branch_labels = None
depends_on = None

_FIELDS = {"companies": ("name", "domain", "phones"), "contacts": ("full_name", "email", "emails", "phones")}


def _derive(table: str, row: dict) -> tuple[str, list[str]]:
    if table == "companies":
        parts = [row["name"] or "", row["domain"] or ""]
    else:
        parts = [row["full_name"] or "", row["email"] or "", *(row["emails"] or [])]
    phones = [re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", p)) for p in row["phones"] or []]
    words = [w for w in unicodedata.normalize("NFKC", " ".join(parts)).lower().split() + phones if w]
    grams: set[str] = set()
    for word in words:
        grams.update(word[i : i + 2] for i in range(len(word) - 1))
        grams.update(ch for ch in word if ord(ch) > 127)
    return " ".join(words), sorted(grams)


def upgrade() -> None:
    schema = tenant_schema()
    bind = op.get_bind()
    for table in _FIELDS:
        op.add_column(
            table, sa.Column("search_text", sa.Text(), server_default="", nullable=False), schema=schema
        )
        op.add_column(
            table,
            sa.Column(
                "search_grams",
                postgresql.ARRAY(sa.Text()),
                server_default=sa.text("'{}'::text[]"),
                nullable=False,
            ),
            schema=schema,
        )
        cols = ", ".join(_FIELDS[table])
        last = 0
        while True:
            rows = (
                bind.execute(
                    sa.text(
                        f'select id, {cols} from "{schema}".{table} where id > :last order by id limit 5000'
                    ),
                    {"last": last},
                )
                .mappings()
                .all()
            )
            if not rows:
                break
            params = [dict(zip(("t", "g"), _derive(table, dict(r)), strict=True), rid=r["id"]) for r in rows]
            bind.execute(
                sa.text(f'update "{schema}".{table} set search_text = :t, search_grams = :g where id = :rid'),
                params,
            )
            last = rows[-1]["id"]
        op.create_index(
            f"ix_{table}_search_grams", table, ["search_grams"], postgresql_using="gin", schema=schema
        )
    op.drop_table("search_grams", schema=schema)
    op.create_index(
        "ix_contacts_company_id_name",
        "contacts",
        ["company_id", sa.literal_column("lower(full_name)"), "id"],
        schema=schema,
    )
    op.drop_index("ix_contacts_company_id", table_name="contacts", schema=schema)


def downgrade() -> None:
    schema = tenant_schema()
    op.create_index("ix_contacts_company_id", "contacts", ["company_id"], schema=schema)
    op.drop_index("ix_contacts_company_id_name", table_name="contacts", schema=schema)
    op.create_table(
        "search_grams",
        sa.Column("gram", sa.Text(collation="C"), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gram", "kind", "record_id", name=op.f("pk_search_grams")),
        schema=schema,
    )
    for table in _FIELDS:
        op.drop_index(f"ix_{table}_search_grams", table_name=table, schema=schema)
        op.drop_column(table, "search_grams", schema=schema)
        op.drop_column(table, "search_text", schema=schema)
