"""duplicates: dismissed pairs, and the match-key indexes of duplicate detection

Revision ID: 7d2c9e410001
Revises: a7c3e9d41b25
Create Date: 2026-12-02 10:40:00

The key expressions are a frozen copy of tenants.customers.duplicate_models at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from saas.migrate import tenant_schema

revision = "7d2c9e410001"
down_revision = "a7c3e9d41b25"
branch_labels = None
depends_on = None


def _phone_key(phone: str) -> str:
    return (
        f"substring(regexp_replace(split_part(lower({phone}), 'x', 1), '[^0-9]+', '', 'g'), '[0-9]{{7,8}}$')"
    )


_PHONE_KEYS = "(ARRAY[" + ", ".join(_phone_key(f"phones[{i}]") for i in range(1, 11)) + "])"
_CONTACT_NAME_KEY = (
    "((company_id)::text || '|' || "
    "regexp_replace(lower(normalize(full_name, NFKC)), '[[:space:][:punct:]]+', '', 'g'))"
)
_LEGAL = (
    "^บริษัท"
    "|[[:space:][:punct:]]+(inc|incorporated|ltd|limited|llc|gmbh|corp|corporation|co|company|plc|ag|sa|bv|pte)"
    "[[:punct:]]*$"
    "|(股份)?有限公司$|公司$"
    "|จํากัด([[:space:]]*[(]มหาชน[)])?$"
)
_COMPANY_NAME_KEY = (
    f"regexp_replace(regexp_replace(lower(normalize(name, NFKC)), '{_LEGAL}', '', 'g'), "
    "'[[:space:][:punct:]]+', '', 'g')"
)

# name, table, key expression (None: the id), included columns, predicate
_BTREES = [
    ("ix_contacts_phone_key", "contacts", _phone_key("phones[1]"), ["phones"], None),
    ("ix_contacts_phone_key2", "contacts", _phone_key("phones[2]"), ["phones"], "cardinality(phones) > 1"),
    ("ix_contacts_more_phones", "contacts", None, ["phones"], "cardinality(phones) > 2"),
    ("ix_companies_phone_key", "companies", _phone_key("phones[1]"), ["phones"], None),
    ("ix_companies_phone_key2", "companies", _phone_key("phones[2]"), ["phones"], "cardinality(phones) > 1"),
    ("ix_companies_more_phones", "companies", None, ["phones"], "cardinality(phones) > 2"),
    ("ix_contacts_email2", "contacts", "emails[1]", ["emails"], "emails <> '{}'::text[]"),
    ("ix_contacts_more_emails", "contacts", None, ["emails"], "cardinality(emails) > 1"),
    (
        "ix_contacts_name_key",
        "contacts",
        _CONTACT_NAME_KEY,
        ["company_id", "full_name"],
        "company_id IS NOT NULL",
    ),
    ("ix_companies_name_key", "companies", _COMPANY_NAME_KEY, ["name"], None),
]
_GINS = [
    ("ix_contacts_phone_keys", "contacts", _PHONE_KEYS),
    ("ix_companies_phone_keys", "companies", _PHONE_KEYS),
    ("ix_contacts_emails", "contacts", "emails"),
]


def upgrade() -> None:
    schema = tenant_schema()
    op.create_table(
        "duplicate_dismissals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("low_id", sa.BigInteger(), nullable=False),
        sa.Column("high_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_dismissals")),
        schema=schema,
    )
    op.create_index(
        "ix_duplicate_dismissals_pair",
        "duplicate_dismissals",
        ["record_type", "low_id", "high_id"],
        unique=True,
        schema=schema,
    )
    op.create_index(
        "ix_duplicate_dismissals_high", "duplicate_dismissals", ["record_type", "high_id"], schema=schema
    )
    for name, table, key, include, where in _BTREES:
        op.create_index(
            name,
            table,
            [sa.literal_column(f"({key})") if key else "id"],
            postgresql_include=[*include, "owner_id"],
            postgresql_where=sa.text(where) if where else None,
            schema=schema,
        )
    for name, table, key in _GINS:
        column = sa.literal_column(key) if key.startswith("(") else key
        op.create_index(name, table, [column], postgresql_using="gin", schema=schema)


def downgrade() -> None:
    schema = tenant_schema()
    for name, table, *_rest in [*_GINS, *_BTREES][::-1]:
        op.drop_index(name, table_name=table, schema=schema)
    op.drop_index("ix_duplicate_dismissals_high", table_name="duplicate_dismissals", schema=schema)
    op.drop_index("ix_duplicate_dismissals_pair", table_name="duplicate_dismissals", schema=schema)
    op.drop_table("duplicate_dismissals", schema=schema)
