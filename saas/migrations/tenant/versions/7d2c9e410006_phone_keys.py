"""phone keys: the phones' duplicate-match keys become a column computed in Python, indexed as is;
search grams compared byte by byte (collation "C")

Revision ID: 7d2c9e410006
Revises: 7d2c9e410005
Create Date: 2026-12-02 18:00:00

The regular-expression expression indexes cost the database more than a third of an imported row, and
comparing grams through the C library's collation a fifth of the rest. The backfill is a frozen copy of
tenants.customers.duplicate_models.phone_keys as it is at this revision.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from saas.migrate import tenant_schema

revision = "7d2c9e410006"
down_revision = "7d2c9e410005"
branch_labels = None
depends_on = None

_TABLES = ("contacts", "companies")
_NOT_DIGITS = re.compile(r"[^0-9]+")


def _phone_keys(phones: list[str] | None) -> list[str]:
    keys: dict[str, None] = {}
    for phone in phones or []:
        digits = _NOT_DIGITS.sub("", phone.lower().split("x", 1)[0])
        if len(digits) >= 7:
            keys.setdefault(digits[-8:])
    return list(keys)


def _old_phone_key(phone: str) -> str:
    return (
        f"substring(regexp_replace(split_part(lower({phone}), 'x', 1), '[^0-9]+', '', 'g'), '[0-9]{{7,8}}$')"
    )


def _drop_phone_indexes(table: str) -> None:
    for suffix in ("phone_key", "phone_key2", "more_phones", "phone_keys"):
        op.drop_index(f"ix_{table}_{suffix}", table_name=table, schema=tenant_schema())


def _create_phone_indexes(table: str, key: Callable[[int], str], column: str, keys: str) -> None:
    """The phone-key indexes: the `key` of positions 1 and 2, positions counted in `column` (which
    rides along in the B-trees), and `keys`, all of a row's keys, under GIN."""
    schema = tenant_schema()
    include = [column, "owner_id"]
    op.create_index(
        f"ix_{table}_phone_key", table, [sa.literal_column(f"({key(1)})")],
        postgresql_include=include, schema=schema,
    )  # fmt: skip
    op.create_index(
        f"ix_{table}_phone_key2", table, [sa.literal_column(f"({key(2)})")],
        postgresql_include=include, postgresql_where=sa.text(f"cardinality({column}) > 1"), schema=schema,
    )  # fmt: skip
    op.create_index(
        f"ix_{table}_more_phones", table, ["id"],
        postgresql_include=include, postgresql_where=sa.text(f"cardinality({column}) > 2"), schema=schema,
    )  # fmt: skip
    op.create_index(
        f"ix_{table}_phone_keys", table, [sa.literal_column(keys)], postgresql_using="gin", schema=schema
    )


def upgrade() -> None:
    schema = tenant_schema()
    bind = op.get_bind()
    for table in _TABLES:
        op.add_column(
            table,
            sa.Column(
                "phone_keys",
                postgresql.ARRAY(sa.Text()),
                server_default=sa.text("'{}'::text[]"),
                nullable=False,
            ),
            schema=schema,
        )
        last = 0
        while True:
            rows = bind.execute(
                sa.text(
                    f'select id, phones from "{schema}".{table} '
                    "where id > :last and phones <> '{}' order by id limit 5000"
                ),
                {"last": last},
            ).all()
            if not rows:
                break
            bind.execute(
                sa.text(f'update "{schema}".{table} set phone_keys = :k where id = :rid'),
                [{"rid": r.id, "k": _phone_keys(r.phones)} for r in rows],
            )
            last = rows[-1].id
        _drop_phone_indexes(table)
        _create_phone_indexes(table, lambda i: f"phone_keys[{i}]", "phone_keys", "phone_keys")
        # The GIN index over the grams is rebuilt with the column's new collation.
        op.alter_column(
            table,
            "search_grams",
            type_=postgresql.ARRAY(sa.Text(collation="C")),
            existing_type=postgresql.ARRAY(sa.Text()),
            schema=schema,
        )


def downgrade() -> None:
    schema = tenant_schema()
    keys = "(ARRAY[" + ", ".join(_old_phone_key(f"phones[{i}]") for i in range(1, 11)) + "])"
    for table in _TABLES:
        op.alter_column(
            table,
            "search_grams",
            type_=postgresql.ARRAY(sa.Text()),
            existing_type=postgresql.ARRAY(sa.Text(collation="C")),
            schema=schema,
        )
        _drop_phone_indexes(table)
        op.drop_column(table, "phone_keys", schema=schema)
        _create_phone_indexes(table, lambda i: _old_phone_key(f"phones[{i}]"), "phones", keys)
