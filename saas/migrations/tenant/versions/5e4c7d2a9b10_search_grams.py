"""search grams

Revision ID: 5e4c7d2a9b10
Revises: 0b3be3b083ac
Create Date: 2026-11-23 15:50:00.000000

The global search's index (tenants/customers/search.py), filled here for the records already there.
The backfill SQL is a frozen copy of search._GRAMS / search.HAYSTACK as they were at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from saas.migrate import tenant_schema

revision = "5e4c7d2a9b10"
down_revision = "0b3be3b083ac"
branch_labels = None
depends_on = None

_PHONE_DIGITS = (
    "translate(regexp_replace(normalize(array_to_string(r.phones, '|'), NFKC), '[^0-9|]', '', 'g'), '|', ' ')"
)
_HAYSTACK = {
    "companies": f"concat_ws(' ', lower(normalize(concat_ws(' ', r.name, r.domain), NFKC)), {_PHONE_DIGITS})",
    "contacts": (
        "concat_ws(' ', lower(normalize(concat_ws(' ', r.full_name, r.email, "
        f"array_to_string(r.emails, ' ')), NFKC)), {_PHONE_DIGITS})"
    ),
}
_KIND = {"companies": 1, "contacts": 2}
_BACKFILL = """
insert into "{schema}".search_grams (gram, kind, record_id)
select distinct g.gram, {kind}, r.id
from "{schema}".{table} r
cross join lateral regexp_split_to_table({haystack}, '\\s+') as t(word)
cross join lateral (
    select substr(t.word, i, 2) from generate_series(1, char_length(t.word) - 1) as i
    union all
    select ch from regexp_split_to_table(t.word, '') as ch where ascii(ch) > 127
) as g(gram)
"""


def upgrade() -> None:
    schema = tenant_schema()
    op.create_table(
        "search_grams",
        sa.Column("gram", sa.Text(collation="C"), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gram", "kind", "record_id", name=op.f("pk_search_grams")),
        schema=schema,
    )
    for table, kind in _KIND.items():
        op.execute(_BACKFILL.format(schema=schema, kind=kind, table=table, haystack=_HAYSTACK[table]))


def downgrade() -> None:
    op.drop_table("search_grams", schema=tenant_schema())
