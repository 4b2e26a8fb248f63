"""Contact import at scale: validation + upsert (tenants.customers.imports) against a plain COPY.

Setup: one tenant; a synthetic contact CSV (name, email, phone, company, job title, city, tags; Latin,
Chinese and Thai names; 1 company per 20 contacts). Timed, each on the same file:
- dry run: every row decoded, parsed, validated and looked up, nothing written;
- first run: the real run (services.run, the job's body) creating every contact, its company, stage
  history, undo records and search grams, in batches of services.BATCH rows, one transaction each;
- re-run: the same file again, so every row is an update (previous values kept for undo);
- baseline: PostgreSQL COPY of the same file into an unlogged table of text columns.

`python -m bench imports [--quick]`, or alone: `python -m bench.imports [rows]`.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Context, log, machine, make_tenant, now_iso, row

TITLE = "Contact import (CSV, validation and upsert)"
TARGET_ROWS_S = 20_000.0
HEADER = "Name,Email,Phone,Company,Job title,City,Tags\n"
FIRST = ["Anna", "Ben", "Chloe", "David", "伟", "芳", "大文", "美玲", "สมชาย", "สุดา", "Ploy", "Kenji"]
LAST = ["Smith", "Lee", "Garcia", "Tan", "张", "王", "陳", "林", "ใจดี", "ศรีสุข", "Wong", "Sato"]


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            out.write(
                f"{first} {last},person{i}@bench.example.com,+66 2 {rng.randint(100, 999)} {rng.randint(1000, 9999)},"
                f'Company {i // 20},Buyer,Bangkok,"vip,2026"\n'
            )


def _one_import(app: Any, tenant: Any, user_id: int, path: Path) -> dict[str, float]:
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.imports import services
    from tenants.customers.people import Viewer

    viewer = Viewer(user_id, "all")
    with app.test_request_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        with path.open("rb") as stream:
            imp = services.create_import(viewer, "contact", path.name, stream)
        start = time.perf_counter()
        outcome = services.dry_run(viewer, True, imp)
        dry = time.perf_counter() - start
        assert not outcome.errors, outcome.errors[:3]
        services._set(imp.id, status="queued")
        db.session.commit()
        db.session.refresh(imp)
        start = time.perf_counter()
        outcome = services.run(imp, viewer, True)
        real = time.perf_counter() - start
        db.session.remove()
    return {
        "dry_s": dry,
        "run_s": real,
        "created": outcome.created,
        "updated": outcome.updated,
    }


def _copy_baseline(app: Any, path: Path) -> float:
    from saas.extensions import db

    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(
                "create unlogged table if not exists public.bench_import_copy (name text, email text, phone text,"
                " company text, job_title text, city text, tags text)"
            )
            cur.execute("truncate public.bench_import_copy")
            raw.commit()
            start = time.perf_counter()
            with (
                cur.copy("copy public.bench_import_copy from stdin with (format csv, header true)") as copy,
                path.open("rb") as src,
            ):
                while chunk := src.read(1 << 20):
                    copy.write(chunk)
            raw.commit()
            took = time.perf_counter() - start
            cur.execute("drop table public.bench_import_copy")
            raw.commit()
        finally:
            raw.close()
    return took


def measure(ctx: Context, rows: int) -> dict[str, Any]:
    app = ctx.app()
    tenant, user_id = make_tenant(app, "Import Bench", "import-bench", "import-owner@bench.example.com")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        write_csv(path, rows)
        log(f"imports: {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB")
        copy_s = _copy_baseline(app, path)
        first = _one_import(app, tenant, user_id, path)
        log(f"imports: first run {first}")
        again = _one_import(app, tenant, user_id, path)
        log(f"imports: re-run {again}")
    return {"rows": rows, "copy_s": copy_s, "first": first, "again": again}


def run(ctx: Context, rows: int | None = None) -> dict[str, Any]:
    rows = rows or (20_000 if ctx.quick else 1_000_000)
    f = measure(ctx, rows)
    copy_rate = rows / f["copy_s"]
    table_rows = [
        row("dry run (validate + look up, no writes)", rows / f["first"]["dry_s"], "rows/s", None, copy_rate,
            "COPY of the same file", higher_is_better=True),
        row("import, every row new", rows / f["first"]["run_s"], "rows/s", TARGET_ROWS_S, copy_rate,
            "COPY of the same file", higher_is_better=True),
        row("re-run, every row an update", rows / f["again"]["run_s"], "rows/s", TARGET_ROWS_S, copy_rate,
            "COPY of the same file", higher_is_better=True),
    ]  # fmt: skip
    return {
        "title": TITLE,
        "module": "bench/imports.py",
        "date": now_iso(),
        "quick": ctx.quick,
        "machine": machine(ctx),
        "params": {"rows": rows},
        "tables": [
            {
                "title": f"Import of a {rows:,}-row contact CSV (service time, one worker)",
                "rows": table_rows,
                "notes": [
                    "Figure: rows of the file / seconds of tenants.customers.imports.services.run (the job's body):"
                    " decode, parse, validate, look up by email, insert or update in batches with the companies,"
                    " stage history, undo records and search columns. Baseline: COPY of the same file into an"
                    " unlogged table of text columns (no validation, no indexes).",
                ],
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rows = int(argv[0]) if argv else 1_000_000
    ctx = Context.start(database="crm_bench_imports")
    try:
        section = run(ctx, rows)
    finally:
        ctx.drop_database()
    for table in section["tables"]:
        print(table["title"])
        for r in table["rows"]:
            print(f"  {r['measure']:<45} {r['value']:10.0f} {r['unit']}   (baseline {r['baseline']:10.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
