"""A tenant's schema and files -> a backup file (archive.py), from one consistent snapshot.

Every table is read in one REPEATABLE READ, READ ONLY transaction: COPY ... TO STDOUT streamed into
the zip, then its row count and checksum (the same SQL restore.py runs on the restored copy), the
identity sequences' positions, and the keys of the tenant's files. The files are fetched from the
store after the transaction, so no database snapshot is held open over S3 downloads.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from saas.backups.archive import CHUNK, FORMAT, VERSION, Writer
from saas.models import utcnow
from saas.tenancy import PLACEHOLDER

# Session settings that make COPY text and row::text the same whatever the server's defaults.
SESSION_SQL = (
    "select set_config('timezone', 'UTC', true), set_config('datestyle', 'ISO, YMD', true), "
    "set_config('intervalstyle', 'postgres', true), set_config('extra_float_digits', '3', true)"
)
# Tables whose rows name objects in the store: table -> (key column, storage area). A module with
# files of its own adds its table here.
FILE_COLUMNS: dict[str, tuple[str, str]] = {"attachments": ("storage_key", "attachments")}


def quote(name: str) -> str:
    if '"' in name or "\x00" in name:
        raise ValueError(f"odd identifier: {name!r}")
    return f'"{name}"'


def tenant_tables() -> list[str]:
    """The tenant track's tables, parents before children (the order restore.py loads them in)."""
    from saas.extensions import db
    from saas.migrate import import_tenant_models

    import_tenant_models()
    return [t.name for t in db.metadata.sorted_tables if t.schema == PLACEHOLDER]


def columns(conn: Connection, schema: str, table: str) -> list[str]:
    """The table's stored columns in the live schema, in their order (generated columns are left out:
    COPY cannot load them and the database recomputes them)."""
    return list(
        conn.execute(
            text(
                "select a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid "
                "join pg_namespace n on n.oid = c.relnamespace where n.nspname = :s and c.relname = :t "
                "and a.attnum > 0 and not a.attisdropped and a.attgenerated = '' order by a.attnum"
            ),
            {"s": schema, "t": table},
        ).scalars()
    )


def checksum_sql(schema: str, table: str, cols: list[str]) -> str:
    """Row count and an order-independent digest of every row's text (over the named columns).

    The digest is the sum of a 64-bit hash of each row's text, as a number: a changed, lost or extra
    row changes it, and no sort is needed (fast at a million rows).
    """
    row = ", ".join(f"r.{quote(c)}" for c in cols)
    return (
        f"select count(*), coalesce(sum(hashtextextended(row({row})::text, 0)::numeric), 0)::text "
        f"from {quote(schema)}.{quote(table)} r"
    )


def checksums(conn: Connection, schema: str, table: str, cols: list[str]) -> tuple[int, str]:
    count, digest = conn.execute(text(checksum_sql(schema, table, cols))).one()
    return int(count), str(digest)


def identity_sequences(conn: Connection, schema: str, table: str) -> dict[str, list[Any]]:
    """column -> [last_value, is_called] of the table's identity/serial sequences."""
    found: dict[str, list[Any]] = {}
    cols = conn.execute(
        text(
            "select a.attname, pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) "
            "from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = :s and c.relname = :t and a.attnum > 0 and not a.attisdropped"
        ),
        {"s": schema, "t": table},
    ).all()
    for column, seq in cols:
        if seq:
            last, called = conn.execute(text(f"select last_value, is_called from {seq}")).one()
            found[column] = [int(last), bool(called)]
    return found


def dump(
    conn: Connection,
    path: Path,
    *,
    tenant_id: int,
    slug: str,
    schema: str,
    backup_id: int,
    key: bytes,
    fetch: Callable[[str, str, Path], bool],
    seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write the tenant's backup file to `path`; returns its (signed) manifest.

    conn must be a fresh connection with no transaction open; fetch(area, key, target) copies a
    stored file to target and says whether it was there; `seconds` gets the time the checksums took.
    """
    writer = Writer(path)
    try:
        manifest = _dump_tables(
            conn, writer, tenant_id, slug, schema, backup_id, seconds if seconds is not None else {}
        )
        _dump_files(writer, manifest, fetch)
        writer.finish(manifest, key)
    except BaseException:
        writer.abort()
        raise
    return manifest


def _dump_tables(
    conn: Connection, writer: Writer, tenant_id: int, slug: str, schema: str, backup_id: int, seconds: dict
) -> dict[str, Any]:
    raw = conn.connection.driver_connection
    # One snapshot for every table; PostgreSQL refuses this unless it is the transaction's first
    # statement, so a connection that already read something fails here instead of mixing snapshots.
    conn.execute(text("set transaction isolation level repeatable read, read only"))
    conn.execute(text(SESSION_SQL))
    revision = conn.execute(
        text("select revision from public.tenant_schema_versions where tenant_id = :t"), {"t": tenant_id}
    ).scalar()
    stamped = conn.execute(text(f"select version_num from {quote(schema)}.alembic_version")).scalar()
    if revision != stamped:
        raise RuntimeError(
            f"tenant {tenant_id}: registry says revision {revision}, the schema says {stamped} (mid-migration?)"
        )
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "backup_id": backup_id,
        "tenant_id": tenant_id,
        "slug": slug,
        "schema": schema,
        "revision": revision,
        "created_at": utcnow().isoformat(),
        "snapshot_at": conn.execute(text("select now()")).scalar().isoformat(),
        "tables": {},
        "files": [],
        "missing_files": [],
    }
    file_keys: list[tuple[str, str]] = []
    for table in tenant_tables():
        cols = columns(conn, schema, table)
        if not cols:
            raise RuntimeError(f"tenant {tenant_id}: table {table} is missing from {schema}")
        member = f"tables/{table}.copy"
        col_list = ", ".join(quote(c) for c in cols)
        with writer.member(member) as out, raw.cursor() as cur:
            with cur.copy(f"copy {quote(schema)}.{quote(table)} ({col_list}) to stdout") as copy:
                # COPY hands over one row at a time: gathered into 1 MB writes, compressing and
                # hashing cost a few calls per megabyte instead of a few per row.
                buffer = bytearray()
                for block in copy:
                    buffer += block
                    if len(buffer) >= CHUNK:
                        out.write(buffer)
                        buffer.clear()
                out.write(buffer)
        started = time.perf_counter()
        rows, checksum = checksums(conn, schema, table, cols)
        seconds["checksums"] = round(seconds.get("checksums", 0.0) + time.perf_counter() - started, 3)
        manifest["tables"][table] = {
            "member": member,
            "columns": cols,
            "rows": rows,
            "checksum": checksum,
            "sequences": identity_sequences(conn, schema, table),
            **out.digest(),
        }
        if table in FILE_COLUMNS:
            column, area = FILE_COLUMNS[table]
            file_keys += [
                (area, k)
                for k in conn.execute(
                    text(f"select {quote(column)} from {quote(schema)}.{quote(table)} order by 1")
                ).scalars()
            ]
    conn.rollback()  # read only: nothing to keep, and the snapshot is let go before the downloads
    manifest["pending_files"] = file_keys
    return manifest


def _dump_files(writer: Writer, manifest: dict[str, Any], fetch: Callable[[str, str, Path], bool]) -> None:
    with tempfile.TemporaryDirectory(prefix="crm-backup-file-") as tmp:
        target = Path(tmp) / "file"
        for area, key in manifest.pop("pending_files"):
            if not fetch(area, key, target):
                # Gone from the store before this backup: recorded, not fatal (its row is kept).
                manifest["missing_files"].append({"area": area, "key": key})
                continue
            member = f"files/{area}/{key}"
            with writer.member(member) as out, target.open("rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
            manifest["files"].append({"area": area, "key": key, "member": member, **out.digest()})
            target.unlink()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
