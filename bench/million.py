"""Customer pages at a million contacts: lists, the 360 page and global search, server time beside SQL time.

Setup (timed and reported, not a target): one tenant with 1,000,000 contacts (Faker name pools:
en_US, zh_CN, zh_TW, th_TH), 200,000 companies and 2,000,000 timeline entries, a "tier" select
custom field on every contact, and 100 small tenants beside it (20 contacts each). Rows are
written with COPY, their search columns derived in Python by tenants.customers.search.derived (the
rule the app uses); then VACUUM ANALYZE, as autovacuum would after a bulk load.

Measured through the app (Flask test client, signed in as the owner; every request goes through
routing, the tenant and membership checks, the services and the templates):
- the contact list: first page, filtered on the custom field, and a deep page (keyset cursor at row 500,000);
- the 360 page of the busiest company (the most contacts and timeline entries);
- global search as the top bar asks for it (htmx partial): Chinese, Thai, Latin, email part, phone.
For each: p50/p95 of the server time, and the p95 of the SQL time inside the same requests (the sum
of every statement's execute-to-fetch time, measured by SQLAlchemy cursor events). Target: p95 <= 50 ms,
and the server time at most 2x its SQL time.

`python -m bench million [--quick]` (quick: 100,000 contacts), or alone: `python -m bench.million [contacts]`.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, text

from bench import Context, log, machine, make_tenant, now_iso, percentile, row
from bench.dataset import LOCALES, _pools, _required_columns, queries

TITLE = "Customer pages at 1,000,000 contacts (lists, 360, search)"
TARGET_P95_MS = 50.0
SMALL_TENANTS = 100
TIERS = ("bronze", "silver", "gold", "platinum")
PASSWORD = "bench-password-1"


def _copy(cur: Any, schema: str, table: str, columns: list[str], rows: Any) -> None:
    """COPY rows into a tenant table, filling NOT NULL columns the generator leaves out."""
    extra = _required_columns(cur, schema, table, set(columns))
    tail = tuple(extra.values())
    with cur.copy(f'copy "{schema}".{table} ({", ".join([*columns, *extra])}) from stdin') as copy:
        for values in rows:
            copy.write_row((*values, *tail))


def make_tenants(app: Any) -> tuple[Any, int, list]:
    """The big tenant (its owner signs in) and the small ones: (big tenant, owner id, [(schema, owner id)])."""
    big, owner_id = make_tenant(
        app, "Million Bench", "million-bench", "million-owner@bench.example.com", PASSWORD
    )
    small = []
    for i in range(SMALL_TENANTS):
        t, other = make_tenant(
            app, f"Small {i}", f"small-bench-{i}", f"small-{i}@bench.example.com", PASSWORD
        )
        small.append((t.schema, other))
    return big, owner_id, small


def load(app: Any, tenant: Any, owner_id: int, small: list, contacts: int, seed: int = 11) -> dict[str, Any]:
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.models import CustomField
    from tenants.customers.search import DERIVED
    from tenants.customers.search import derived_for_copy as derive
    from tenants.customers.services import full_name

    rng = random.Random(seed)
    pools = _pools(rng, 3000 if contacts >= 100_000 else 800)
    companies = contacts // 5
    schema = tenant.schema
    now = datetime.now(UTC)
    owners = [owner_id] * 7 + [owner_id + 100_000 + k for k in range(3)]  # most owned by the owner
    sample: list[tuple] = []
    # The busiest company: contacts 1..busy all belong to company 1.
    busy = max(contacts // 500, 50)

    def company_rows() -> Any:
        for cid in range(1, companies + 1):
            loc = LOCALES[cid % 4]
            name = f"{rng.choice(pools[loc]['company'])} {cid}"
            phones = [f"+66 2{rng.randint(1000000, 9999999)}"]
            derived = derive("company", {"name": name, "domain": None, "phones": phones})
            yield (cid, name, phones, rng.choice(owners), "lead", "{}", now, now, *derived)

    def contact_rows() -> Any:
        for i in range(1, contacts + 1):
            loc = LOCALES[i % 4]
            first, last = rng.choice(pools[loc]["first"]), rng.choice(pools[loc]["last"])
            user = rng.choice(pools["latin_user"]["user"])
            email = f"{user}{i}@example{i % 97}.com"
            phone = (
                f"+{rng.choice(['1', '86', '886', '66'])} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
            )
            name = full_name(first, last)
            company = 1 if i <= busy else rng.randint(2, companies)
            tier = TIERS[min(int(rng.random() ** 2 * 4), 3)]  # platinum the rarest
            derived = derive("contact", {"full_name": name, "email": email, "emails": [], "phones": [phone]})
            if i % 997 == 0:
                sample.append((loc, first, last, name, email, phone))
            created = now - timedelta(minutes=i)
            yield (i, first, last, name, email, [phone], rng.choice(owners), company, "customer",
                   json.dumps({"tier": tier}), created, created, *derived)  # fmt: skip

    started = time.perf_counter()
    with app.app_context(), tenancy.bound(tenant.id, schema, tenant.slug):
        db.session.add(
            CustomField(
                record_type="contact", key="tier", label="Tier", field_type="select", options=list(TIERS)
            )
        )
        db.session.commit()
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            _copy(cur, schema, "companies",
                  ["id", "name", "phones", "owner_id", "lifecycle_stage", "custom", "created_at", "updated_at",
                   *DERIVED], company_rows())  # fmt: skip
            raw.commit()
            log(f"million: {companies:,} companies in {time.perf_counter() - started:.0f}s")
            _copy(cur, schema, "contacts",
                  ["id", "first_name", "last_name", "full_name", "email", "phones", "owner_id", "company_id",
                   "lifecycle_stage", "custom", "created_at", "updated_at", *DERIVED],
                  contact_rows())  # fmt: skip
            raw.commit()
            log(f"million: {contacts:,} contacts in {time.perf_counter() - started:.0f}s")
            # Two timeline entries per contact on average, on the contact and its company; the busy
            # company gets its contacts' entries and as many again of its own.
            cur.execute(
                f"""insert into "{schema}".activities
                    (kind, subject, body, occurred_at, company_id, contact_id, user_id, created_at)
                select (array['call','note','meeting','email'])[1 + g %% 4], 'Follow-up ' || g,
                       '<p>Talked about the order ' || g || '.</p>',
                       now() - make_interval(mins => g), c.company_id, c.id, %s, now()
                from generate_series(1, %s) g
                join "{schema}".contacts c on c.id = 1 + (g::bigint * 7919) %% %s""",
                (owner_id, contacts * 2 - busy * 10, contacts),
            )
            cur.execute(
                f"""insert into "{schema}".activities
                    (kind, subject, body, occurred_at, company_id, contact_id, user_id, created_at)
                select 'note', 'Account review ' || g, '<p>Quarterly review.</p>',
                       now() - make_interval(hours => g), 1, null, %s, now()
                from generate_series(1, %s) g""",
                (owner_id, busy * 10),
            )
            for sequence_table in ("companies", "contacts"):
                cur.execute(
                    f"select setval(pg_get_serial_sequence('\"{schema}\".{sequence_table}', 'id'), "
                    f'(select max(id) from "{schema}".{sequence_table}))'
                )
            raw.commit()
            log(f"million: timeline entries in {time.perf_counter() - started:.0f}s")
            for small_schema, small_owner in small:
                rows = []
                for i in range(1, 21):
                    name = f"Small Contact {i}"
                    derived = derive(
                        "contact", {"full_name": name, "email": None, "emails": [], "phones": []}
                    )
                    rows.append((name, small_owner, now, now, *derived))
                _copy(cur, small_schema, "contacts",
                      ["full_name", "owner_id", "created_at", "updated_at", *DERIVED], rows)  # fmt: skip
            raw.commit()
        finally:
            raw.close()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("contacts", "companies", "activities"):
                conn.execute(text(f'vacuum analyze "{schema}".{table}'))
        counts = db.session.execute(
            text(
                f'select (select count(*) from "{schema}".contacts), (select count(*) from "{schema}".companies), '
                f'(select count(*) from "{schema}".activities), '
                f"pg_total_relation_size('\"{schema}\".contacts')"
            )
        ).one()
    load_s = time.perf_counter() - started
    log(f"million: loaded {counts} in {load_s:.0f}s")
    return {"load_s": load_s, "contacts": counts[0], "companies": counts[1], "activities": counts[2],
            "contacts_bytes": counts[3], "busy_company": 1, "busy_contacts": busy, "sample": sample}  # fmt: skip


class SqlTimer:
    """Sum of the SQL time of the statements run between reset() and read()."""

    def __init__(self, engine: Any) -> None:
        self.total = 0.0
        self._start: dict[int, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        self._start[id(cursor)] = time.perf_counter()

    def _after(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        self.total += time.perf_counter() - self._start.pop(id(cursor), time.perf_counter())


def _deep_cursor(app: Any, tenant: Any, position: int) -> str:
    from saas import tenancy
    from saas.extensions import db
    from tenants.listing import _encode

    with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        name, rid = db.session.execute(
            text(
                f'select lower(full_name), id from "{tenant.schema}".contacts '
                "order by lower(full_name), id offset :n limit 1"
            ),
            {"n": position},
        ).one()
        db.session.remove()
    return _encode(name, rid)


def measure_pages(app: Any, tenant: Any, contacts: int, sample: list, n: int) -> dict[str, dict[str, float]]:
    from saas.extensions import db
    from tests.factories import CsrfClient

    app.test_client_class = CsrfClient
    client = app.test_client()
    resp = client.sign_in("million-owner@bench.example.com", PASSWORD)
    assert resp.status_code in (200, 302), resp.status_code
    with app.app_context():
        timer = SqlTimer(db.engine)
    slug = tenant.slug
    deep = _deep_cursor(app, tenant, contacts // 2)
    rng = random.Random(5)
    qs = queries(sample, rng, n)
    pages: dict[str, list[tuple[str, dict]]] = {
        "Contact list, first page": [(f"/{slug}/customers/contacts", {})] * n,
        "Contact list, filtered on a custom field (tier = platinum)": [
            (f"/{slug}/customers/contacts?cf_tier=platinum", {})
        ]
        * n,
        "Contact list, deep page (row 500,000 by name)": [(f"/{slug}/customers/contacts?after={deep}", {})]
        * n,
        "360 page of the busiest company": [(f"/{slug}/customers/companies/1", {})] * n,
    }
    for label, items in qs.items():
        pages[f"Search: {label}"] = [
            (f"/{slug}/customers/search?q={q}", {"HX-Request": "true"}) for q in items
        ]
    out: dict[str, dict[str, float]] = {}
    for label, reqs in pages.items():
        for url, headers in reqs[:3]:  # warm-up
            client.get(url, headers=headers)
        server, sql = [], []
        for url, headers in reqs:
            timer.total = 0.0
            start = time.perf_counter()
            resp = client.get(url, headers=headers)
            server.append(time.perf_counter() - start)
            sql.append(timer.total)
            assert resp.status_code == 200, (url, resp.status_code)
        ms = [s * 1000 for s in server]
        sq = [s * 1000 for s in sql]
        out[label] = {
            "p50": percentile(ms, 50),
            "p95": percentile(ms, 95),
            "sql_p50": percentile(sq, 50),
            "sql_p95": percentile(sq, 95),
            "ratio_p50": percentile(ms, 50) / max(percentile(sq, 50), 1e-6),
        }
        log(f"million: {label}: p95 {out[label]['p95']:.1f} ms (SQL p95 {out[label]['sql_p95']:.1f} ms)")
    return out


def page_rows(label: str, v: dict[str, float]) -> list[dict[str, Any]]:
    """A page's two targets: p95 server time, and server time at most twice its SQL time (at p95)."""
    return [
        row(f"{label}: p95 server time", v["p95"], "ms", TARGET_P95_MS, v["sql_p95"], "SQL time p95",
            note=f"p50 {v['p50']:.1f} ms; SQL p50 {v['sql_p50']:.1f} ms"),
        row(f"{label}: server / SQL time at p95", v["p95"] / max(v["sql_p95"], 1e-6), "×", 2.0,
            note=f"at p50: {v['ratio_p50']:.1f}×"),
    ]  # fmt: skip


def run(ctx: Context, contacts: int | None = None) -> dict[str, Any]:
    contacts = contacts or (100_000 if ctx.quick else 1_000_000)
    n = 20 if ctx.quick else 60
    app = ctx.app(SERVER_NAME="crm.localhost", WTF_CSRF_ENABLED=True)
    tenant, owner_id, small = make_tenants(app)
    loaded = load(app, tenant, owner_id, small, contacts)
    f = measure_pages(app, tenant, contacts, loaded["sample"], n)
    rows = []
    for label, v in f.items():
        rows.extend(page_rows(label, v))
    return {
        "title": TITLE,
        "module": "bench/million.py",
        "date": now_iso(),
        "quick": ctx.quick,
        "machine": machine(ctx),
        "params": {"contacts": contacts, "requests_per_page": n},
        "tables": [
            {
                "title": f"Pages of a tenant with {loaded['contacts']:,} contacts, {loaded['companies']:,} companies, "
                f"{loaded['activities']:,} timeline entries (+{SMALL_TENANTS} small tenants)",
                "rows": rows,
                "notes": [
                    "Server time: the whole request through the Flask test client (routing, tenant and membership "
                    "checks, services, templates), signed in as the owner (visibility: all). Baseline: the SQL time "
                    "inside the same requests (sum of every statement's execute-to-fetch time).",
                    f"The busiest company has {loaded['busy_contacts']:,} contacts and "
                    f"{loaded['busy_contacts'] * 12:,} timeline entries or so.",
                    f"Load (not a target): {loaded['load_s']:.0f} s with COPY, search columns derived in Python; "
                    f"contacts table {loaded['contacts_bytes'] / 1e6:.0f} MB with its indexes.",
                ],
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    keep = "--keep" in argv  # leave the database for a closer look (profiling)
    numbers = [a for a in argv if a.isdigit()]
    contacts = int(numbers[0]) if numbers else 1_000_000
    ctx = Context.start(database="crm_bench_million")
    try:
        section = run(ctx, contacts)
    finally:
        if not keep:
            ctx.drop_database()
    for table in section["tables"]:
        print(table["title"])
        for r in table["rows"]:
            print(f"  {r['measure']:<90} {r['value']:8.1f} {r['unit']}  {r['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
