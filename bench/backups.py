"""Tenant backup and proven restore of a big tenant, against pg_dump / pg_restore of the same schema.

Setup (not timed), in a database of its own (crm_bench_backups): one tenant filled by SQL
(insert ... select from generate_series) with 1,000,000 contacts (names in Latin, Chinese and Thai
script, emails, phones, tags, JSON), 20,000 companies, 300,000 activities, 50,000 tasks and 20
attachments of 512 KB; then VACUUM ANALYZE, so no run pays for hint bits the others do not.
Store: the local folder (a temp instance folder), so the figures are ours, not a network's.

Timed, in the same run:
- backup: saas.backups.services.run_backup, the job's body: dump in one snapshot (COPY, checksums,
  files) into a signed zip, store it, fetch it back, and prove it (check every digest, restore into a
  scratch schema, build its indexes and foreign keys, compare every table's rows and checksum). The
  phases are reported apart.
- restore beside the tenant: services.restore_new_schema (fetch, check, load, index, compare, commit).
- baselines: pg_dump -Fc of the same schema (default compression, and -Z1 like ours), and
  pg_restore of the -Z1 dump into an empty database.

MB/s everywhere is the same numerator: the tenant's table data as COPY text (uncompressed).
`python -m bench backups [--quick]`, or alone: `python -m bench.backups [contacts]`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Context, log, machine, make_tenant, now_iso, row

TITLE = "Tenant backup and proven restore"
DATABASE = "crm_bench_backups"
# A nightly backup of the biggest tenant, proof included, must fit well inside the night.
TARGET_TOTAL_S = 600.0
FIRST = ["Anna", "Ben", "Chloe", "David", "Emma", "伟", "芳", "大文", "美玲", "สมชาย", "สุดา", "Ploy", "Kenji"]
LAST = ["Smith", "Lee", "Garcia", "Tan", "Nguyen", "张", "王", "陳", "林", "ใจดี", "ศรีสุข", "Wong", "Sato"]
CITIES = ["Bangkok", "Chiang Mai", "Singapore", "Taipei", "Shanghai", "London", "Berlin", "Austin"]


def _sql_array(values: list[str]) -> str:
    return "array[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _insert(conn: Any, schema: str, table: str, values: dict[str, str], source: str) -> None:
    """insert into schema.table select <values> from <source>; NOT NULL columns without a default that
    `values` does not name get a plain value of their type (so the benchmark survives new columns)."""
    cols = conn.execute(
        "select column_name, data_type from information_schema.columns where table_schema = %s "
        "and table_name = %s and is_nullable = 'NO' and column_default is null and is_identity = 'NO'",
        (schema, table),
    ).fetchall()
    plain = {"boolean": "false", "jsonb": "'{}'::jsonb", "ARRAY": "'{}'", "date": "current_date"}
    values = dict(values)
    for name, kind in cols:
        if name not in values:
            if kind.startswith("timestamp"):
                values[name] = "now()"
            elif kind in ("integer", "bigint", "smallint", "numeric"):
                values[name] = "0"
            else:
                values[name] = plain.get(kind, "''")
    names = ", ".join(f'"{n}"' for n in values)
    conn.execute(
        f'insert into "{schema}"."{table}" ({names}) select {", ".join(values.values())} from {source}'
    )


def fill(app: Any, tenant: Any, contacts: int) -> dict[str, int]:
    import psycopg

    from saas import tenancy
    from saas.extensions import db
    from tenants.customers import attachments
    from tenants.customers.extra_models import Attachment

    companies, activities, tasks = max(contacts // 50, 10), contacts * 3 // 10, contacts // 20
    s = tenant.schema
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    first, last, cities = _sql_array(FIRST), _sql_array(LAST), _sql_array(CITIES)
    with psycopg.connect(url) as conn:
        _insert(conn, s, "companies", {
            "name": "'Company ' || i || ' ' || (" + last + ")[1 + i % 13]",
            "industry": "(array['Retail','Software','Logistics','Food','Health'])[1 + i % 5]",
            "size": "(array['1-10','11-50','51-200','201-1000'])[1 + i % 4]",
            "website": "'https://company' || i || '.example.com'",
            "domain": "'company' || i || '.example.com'",
            "phones": "array['+66 2 ' || lpad((i % 1000)::text, 3, '0') || ' ' || lpad((i * 37 % 10000)::text, 4, '0')]",
            "tags": "case when i % 4 = 0 then array['key account'] else '{}' end",
            "source": "'import'", "lifecycle_stage": "'customer'",
            "custom": "jsonb_build_object('tier', i % 3)",
            "created_at": "now() - (i % 900) * interval '1 day'", "updated_at": "now() - (i % 90) * interval '1 day'",
            "street": "i || ' Sukhumvit Road'", "city": f"({cities})[1 + i % 8]", "region": "''",
            "postal_code": "lpad((10000 + i % 90000)::text, 5, '0')", "country": "'Thailand'",
        }, f"generate_series(1, {companies}) i")  # fmt: skip
        _insert(conn, s, "contacts", {
            "first_name": f"({first})[1 + i % 13]", "last_name": f"({last})[1 + (i / 13) % 13]",
            "full_name": f"({first})[1 + i % 13] || ' ' || ({last})[1 + (i / 13) % 13]",
            "company_id": f"case when i % 10 = 0 then null else 1 + i % {companies} end",
            "job_title": "(array['Buyer','CEO','Engineer','Manager',''])[1 + i % 5]",
            "email": "'person' || i || '@mail' || (i % 97) || '.example.com'",
            "phones": "array['+66 8' || lpad((i % 100000000)::text, 8, '0')]",
            "phone_keys": "array[lpad((i % 100000000)::text, 8, '0')]",  # duplicate_models.phone_key
            "birthday": "case when i % 3 = 0 then date '1970-01-01' + (i % 12000) end",
            "interests": "case when i % 7 = 0 then 'golf, travel' else '' end", "preferences": "''",
            "consent_email": "i % 2 = 0", "consent_email_how": "case when i % 2 = 0 then 'web form' else '' end",
            "consent_sms": "false", "consent_sms_how": "''",
            "tags": "case when i % 5 = 0 then array['vip', '2026'] else '{}' end",
            "source": "'import'", "lifecycle_stage": "(array['lead','prospect','customer'])[1 + i % 3]",
            "custom": "jsonb_build_object('score', i % 100)",
            "created_at": "now() - (i % 1000) * interval '1 hour'", "updated_at": "now() - (i % 100) * interval '1 hour'",
            "street": "''", "city": f"({cities})[1 + i % 8]", "region": "''", "postal_code": "''", "country": "''",
            "search_text": f"lower(({first})[1 + i % 13] || ' ' || ({last})[1 + (i / 13) % 13] || ' person' || i)",
        }, f"generate_series(1, {contacts}) i")  # fmt: skip
        _insert(conn, s, "activities", {
            "kind": "(array['note','call','meeting','email'])[1 + i % 4]",
            "subject": "'Follow-up ' || i", "body": "'<p>Talked about order ' || i || ' and the next delivery.</p>'",
            "occurred_at": "now() - (i % 500) * interval '1 hour'",
            "contact_id": f"1 + (i * 13) % {contacts}", "company_id": f"1 + i % {companies}",
            "meta": "'{}'::jsonb", "created_at": "now()",
        }, f"generate_series(1, {activities}) i")  # fmt: skip
        _insert(conn, s, "tasks", {
            "title": "'Call back ' || i", "contact_id": f"1 + (i * 7) % {contacts}",
            "due_at": "now() + (i % 30) * interval '1 day'", "created_at": "now()",
        }, f"generate_series(1, {tasks}) i")  # fmt: skip
        conn.commit()
    with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        for i in range(20):
            key = f"{tenant.id}/bench-{i:02d}"
            attachments.storage().put(key, os.urandom(512 * 1024), "application/pdf")
            db.session.add(
                Attachment(record_type="company", record_id=1 + i, file_name=f"file{i}.pdf",
                           content_type="application/pdf", size=512 * 1024, storage_key=key)
            )  # fmt: skip
        db.session.commit()
        db.session.remove()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("companies", "contacts", "activities", "tasks", "attachments"):
            conn.execute(f'vacuum analyze "{s}"."{table}"')
    return {
        "contacts": contacts,
        "companies": companies,
        "activities": activities,
        "tasks": tasks,
        "files": 20,
    }


def _pg_tool(name: str) -> str | None:
    import psycopg  # noqa: F401 - the server's major version picks the tool

    for candidate in (f"/usr/lib/postgresql/15/bin/{name}", f"/usr/bin/{name}", shutil.which(name)):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _dsn(app: Any, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    if database:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def pg_baselines(ctx: Context, app: Any, schema: str, tmp: Path) -> dict[str, Any]:
    """pg_dump -Fc (default compression and -Z1) of the schema, and pg_restore of the -Z1 one."""
    import psycopg

    dump_bin, restore_bin = _pg_tool("pg_dump"), _pg_tool("pg_restore")
    if dump_bin is None:
        log("backups: pg_dump not found; no baseline")
        return {"found": False}
    out: dict[str, Any] = {"found": True, "pg_dump": dump_bin}
    for label, extra in (("default", []), ("z1", ["-Z", "1"])):
        target = tmp / f"pg_dump_{label}.dump"
        start = time.perf_counter()
        subprocess.run(
            [dump_bin, "-Fc", *extra, f"--schema={schema}", "-f", str(target), _dsn(app)], check=True
        )
        out[f"dump_{label}_s"] = time.perf_counter() - start
        out[f"dump_{label}_bytes"] = target.stat().st_size
        log(f"backups: pg_dump ({label}) {out[f'dump_{label}_s']:.1f}s, {target.stat().st_size / 1e6:.0f} MB")
    if restore_bin:
        scratch = f"{DATABASE}_restore"
        with psycopg.connect(ctx.admin_dsn(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{scratch}" with (force)')
            conn.execute(f'create database "{scratch}"')
        try:
            start = time.perf_counter()
            subprocess.run(
                [restore_bin, "--no-owner", "-d", _dsn(app, scratch), str(tmp / "pg_dump_z1.dump")],
                check=True,
            )
            out["restore_s"] = time.perf_counter() - start
            log(f"backups: pg_restore {out['restore_s']:.1f}s")
        finally:
            with psycopg.connect(ctx.admin_dsn(), autocommit=True) as conn:
                conn.execute(f'drop database if exists "{scratch}" with (force)')
    return out


def measure(ctx: Context, contacts: int) -> dict[str, Any]:
    from saas import tenancy
    from saas.backups import services
    from saas.extensions import db

    app = ctx.app()
    with tempfile.TemporaryDirectory(prefix="crm-bench-backups-") as tmp_name:
        tmp = Path(tmp_name)
        app.instance_path = str(tmp / "instance")  # the local store, out of the repository
        tenant, _owner_id = make_tenant(app, "Backup Bench", "backup-bench", "backup-owner@bench.example.com")
        start = time.perf_counter()
        sizes = fill(app, tenant, contacts)
        log(f"backups: filled {sizes} in {time.perf_counter() - start:.0f}s")
        with app.app_context():
            backup_id = services.request_backup(tenant.id, "manual").id
            db.session.remove()
        with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
            start = time.perf_counter()
            backup = services.run_backup(backup_id)
            total = time.perf_counter() - start
            if backup.status != "good":
                raise RuntimeError(f"backup not good: {backup.error}")
            found = {"total_s": total, "size": backup.size_bytes, **backup.manifest}
            db.session.remove()
        log(f"backups: run_backup {total:.1f}s {found['seconds']}, {found['size'] / 1e6:.0f} MB file")
        with app.app_context():
            start = time.perf_counter()
            result = services.restore_new_schema(backup_id)
            found["restore_new_s"] = time.perf_counter() - start
            services.drop_work_schema(result.schema)
            db.session.remove()
        log(f"backups: restore into a new schema {found['restore_new_s']:.1f}s")
        found["pg"] = pg_baselines(ctx, app, tenant.schema, tmp)
    found["sizes"] = sizes
    return found


def run(ctx: Context, contacts: int | None = None) -> dict[str, Any]:
    contacts = contacts or (100_000 if ctx.quick else 1_000_000)
    # A database of its own, so nobody else's benchmark database is disturbed (and it is dropped after).
    previous, ctx.database = ctx.database, DATABASE
    try:
        f = measure(ctx, contacts)
    finally:
        ctx.drop_database()
        ctx.database = previous
    mb = f["table_bytes"] / 1e6
    sec, pg = f["seconds"], f["pg"]
    backup_s = sec["dump"] + sec["store"]
    proof_s = sec["fetch"] + sec["prove"]
    rate = mb / backup_s
    pg_dump_s = pg.get("dump_z1_s")
    tables_mb = (f["size"] - f["file_bytes"]) / 1e6  # the attachments are stored as they are
    rows = [
        row("backup: dump + store", backup_s, "s", None, pg_dump_s, "pg_dump -Fc -Z1"),
        row("backup throughput", round(rate, 1), "MB/s", None, round(mb / pg_dump_s, 1) if pg_dump_s else None,
            "pg_dump -Fc -Z1", higher_is_better=True),
        row("proof: fetch back, check, restore into scratch, compare", proof_s, "s", None, pg.get("restore_s"),
            "pg_restore of the -Z1 dump"),
        row("proof throughput", round(mb / proof_s, 1), "MB/s", None,
            round(mb / pg["restore_s"], 1) if pg.get("restore_s") else None, "pg_restore", higher_is_better=True),
        row("backup + proof (the nightly job, end to end)", f["total_s"], "s", TARGET_TOTAL_S,
            (pg_dump_s or 0) + (pg.get("restore_s") or 0) or None, "pg_dump + pg_restore"),
        row("restore into a new schema (crm restore --new-schema)", f["restore_new_s"], "s", None,
            pg.get("restore_s"), "pg_restore of the -Z1 dump"),
        row("backup file, tables part", round(tables_mb, 1), "MB", None,
            round(pg["dump_z1_bytes"] / 1e6, 1) if pg.get("dump_z1_bytes") else None, "pg_dump -Fc -Z1"),
    ]  # fmt: skip
    notes = [
        f"Tenant: {f['sizes']['contacts']:,} contacts, {f['sizes']['companies']:,} companies, "
        f"{f['sizes']['activities']:,} activities, {f['sizes']['tasks']:,} tasks, 20 attachments of 512 KB; "
        f"{mb:,.0f} MB of table data as COPY text, {f['file_bytes'] / 1e6:.0f} MB of files.",
        f"Phases of the job (s): dump {sec['dump']} (of which {sec.get('checksums', 0)} computing the tables'"
        f" checksums), store {sec['store']}, fetch back {sec['fetch']}, prove {sec['prove']} (check every digest,"
        " restore into a scratch schema with its primary keys, unique indexes and foreign keys, compare each"
        " table's rows and checksum, roll back; the other indexes are built by real restores only, which is"
        " most of the difference between the proof and a restore into a new schema).",
        f"Backup file: {f['size'] / 1e6:.0f} MB in all, {f['file_bytes'] / 1e6:.0f} MB of it attachments (stored"
        " as they are); pg_dump does not hold the attachments.",
        "Store: the local folder (the same code writes to S3 with a multipart upload).",
        "MB/s: table data (COPY text, uncompressed) per second, the same figure for ours and the baselines.",
    ]
    if pg.get("found"):
        notes.append(
            f"pg_dump -Fc with its default compression took {pg['dump_default_s']:.1f} s "
            f"({pg['dump_default_bytes'] / 1e6:.0f} MB); {pg['pg_dump']} (PostgreSQL 15 client). pg_dump proves "
            "nothing about its file; pg_restore rebuilds the schema without comparing anything."
        )
    else:
        notes.append("pg_dump was not found on this machine: no baseline.")
    return {
        "title": TITLE,
        "module": "bench/backups.py",
        "date": now_iso(),
        "quick": ctx.quick,
        "machine": machine(ctx),
        "params": {"contacts": contacts, "database": DATABASE},
        "tables": [
            {
                "title": f"Backup and proven restore of a tenant with {contacts:,} contacts",
                "rows": rows,
                "notes": notes,
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    contacts = int(argv[0]) if argv else 1_000_000
    ctx = Context.start(database=DATABASE)
    section = run(ctx, contacts)
    for table in section["tables"]:
        print(table["title"])
        for r in table["rows"]:
            print(f"  {r['measure']:<60} {r['value']:10.2f} {r['unit']}   (baseline {r['baseline']})")
        for note in table["notes"]:
            print(f"  - {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
