"""A checked backup file -> a schema, inside the caller's transaction, compared with the manifest.

The schema is made exactly as sign-up makes a tenant's (the tenant track's DDL at head, stamped),
then loaded the way pg_restore does it: foreign keys and secondary indexes are set aside, each
table is filled with COPY ... FROM STDIN, the indexes are built and the foreign keys added back
(each checked in one pass), and the identity sequences put where they were. Last, every table's
row count and checksum are computed by the same SQL the dump used and compared with the manifest.
Nothing is committed here: the caller commits (a restore) or rolls back (the proof of a backup).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from saas.backups.archive import CHUNK, BackupRefused
from saas.backups.dump import SESSION_SQL, checksums, quote, tenant_tables

# Schemas a restore may create: never a name from user input, never a tenant's t_<id> directly.
WORK_SCHEMA_RE = re.compile(r"^(scratch|restored|incoming)_[0-9]+\Z")


@dataclass
class Loaded:
    schema: str
    rows: dict[str, int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)


def check_revision(manifest: dict[str, Any]) -> None:
    from saas.migrate import tenant_head

    head = tenant_head()
    if manifest.get("revision") != head:
        raise BackupRefused(
            f"This backup was taken at schema revision {manifest.get('revision')}, and this release's tenant "
            f"schema is at {head}: it cannot be restored as it is. Restore it with the release that made it, "
            "then upgrade (crm db upgrade)."
        )
    unknown = set(manifest.get("tables", {})) - set(tenant_tables())
    if unknown:
        raise BackupRefused(
            f"This backup holds tables this release does not have ({', '.join(sorted(unknown))})."
        )


def create_schema(conn: Connection, schema: str) -> None:
    """A tenant schema at head under a work name: saas.migrate's DDL and stamp, as sign-up runs them."""
    from saas.migrate import _SENTINEL, tenant_ddl, tenant_head

    if not WORK_SCHEMA_RE.match(schema):
        raise ValueError(f"not a restore schema name: {schema!r}")
    head = tenant_head()
    script = tenant_ddl(conn.dialect).replace(f'"{_SENTINEL}"', f'"{schema}"')
    conn.exec_driver_sql(
        f'create schema "{schema}";\n{script};\n'
        f'create table "{schema}".alembic_version (version_num varchar(32) not null, '
        "constraint alembic_version_pkc primary key (version_num));\n"
        f"insert into \"{schema}\".alembic_version (version_num) values ('{head}')"
    )


def load(
    conn: Connection,
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    schema: str,
    all_indexes: bool = True,
) -> Loaded:
    """Create `schema` and restore the manifest's tables into it (caller's transaction); returns the
    counts and any table whose count or checksum differs from the manifest's.

    all_indexes=False (the proof of a backup, rolled back) builds the unique indexes and foreign
    keys, which check the rows, but not the other indexes: they are derived from rows the original
    already indexed and cannot refuse any, and on a big tenant they are most of the time.
    """
    conn.execute(text(SESSION_SQL))
    conn.execute(text("select set_config('maintenance_work_mem', '256MB', true)"))
    create_schema(conn, schema)
    held = _set_aside(conn, schema, all_indexes)
    raw = conn.connection.driver_connection
    tables = manifest["tables"]
    for table in tenant_tables():
        if table not in tables:
            continue
        cols = ", ".join(quote(c) for c in tables[table]["columns"])
        with (
            raw.cursor() as cur,
            # FREEZE: the table is new in this transaction, so its rows can be written frozen (no
            # hint-bit writes when they are next read, no anti-wraparound vacuum of them later).
            cur.copy(f"copy {quote(schema)}.{quote(table)} ({cols}) from stdin with (freeze)") as copy,
            archive.open(tables[table]["member"]) as src,
        ):
            while chunk := src.read(CHUNK):
                copy.write(chunk)
    for statement in held:
        conn.exec_driver_sql(statement)
    _put_sequences(conn, schema, tables)
    loaded = Loaded(schema)
    for table, want in tables.items():
        rows, checksum = checksums(conn, schema, table, want["columns"])
        loaded.rows[table] = rows
        if rows != want["rows"] or checksum != want["checksum"]:
            loaded.mismatches.append(f"{table}: {rows} rows (backup: {want['rows']})")
    return loaded


def _set_aside(conn: Connection, schema: str, all_indexes: bool) -> list[str]:
    """Drop the new schema's foreign keys and secondary indexes; return the statements that put them
    back (indexes first). Loading into bare tables and building each index once is several times
    faster than keeping them up to date row by row."""
    fks = conn.execute(
        text(
            "select format('%I.%I', n.nspname, cl.relname), c.conname, pg_get_constraintdef(c.oid) "
            "from pg_constraint c join pg_class cl on cl.oid = c.conrelid "
            "join pg_namespace n on n.oid = cl.relnamespace where n.nspname = :s and c.contype = 'f' order by 2"
        ),
        {"s": schema},
    ).all()
    indexes = conn.execute(
        text(
            "select format('%I.%I', n.nspname, ic.relname), pg_get_indexdef(i.indexrelid), i.indisunique "
            "from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = ic.relnamespace "
            "where n.nspname = :s and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid "
            "and c.contype in ('p', 'u', 'x')) order by 1"
        ),
        {"s": schema},
    ).all()
    for table, name, _definition in fks:
        conn.exec_driver_sql(f"alter table {table} drop constraint {quote(name)}")
    for name, _definition, _unique in indexes:
        conn.exec_driver_sql(f"drop index {name}")
    return [d.replace("%", "%%") for _n, d, unique in indexes if unique or all_indexes] + [
        f"alter table {table} add constraint {quote(name)} {d}".replace("%", "%%") for table, name, d in fks
    ]


def _put_sequences(conn: Connection, schema: str, tables: dict[str, Any]) -> None:
    """Each identity sequence where the backup had it, and never behind the restored ids."""
    for table, info in tables.items():
        for column, (last, called) in info.get("sequences", {}).items():
            qualified = f"{quote(schema)}.{quote(table)}"
            conn.execute(
                text(
                    f"select setval(pg_get_serial_sequence(:t, :c), greatest(:last, m), :called or m >= :last) "
                    f"from (select coalesce(max({quote(column)}), 0) as m from {qualified}) x"
                ),
                {"t": qualified, "c": column, "last": last, "called": called},
            )
