"""Global search at scale: the bigram index (tenants.customers.search) against a plain ILIKE scan.

Setup (not timed, but the index build is reported): one tenant; N contacts and N/5 companies made
from Faker name pools (en_US, zh_CN, zh_TW, th_TH), loaded with COPY; then search.reindex_all().
Queries are taken from the loaded data, so each finds something: a Chinese given name (one and two
characters), a Chinese full name, a Thai name fragment, a Latin last name, an email fragment and a
phone number's digits. Each is run through search.search() (the service: every SQL round trip the
page makes, ranking, visibility) for an "all" viewer and an "own" viewer, and as one plain ILIKE
'%q%' query over names, emails and phones with the same ranking and limit (a sequential scan).

`python -m bench search [--quick]`, or alone: `python -m bench.search [contacts]`.
"""

from __future__ import annotations

import io
import random
import sys
import time
from typing import Any

from sqlalchemy import text

from bench import Context, log, machine, now_iso, row, summary_ms

TITLE = "Global search (Chinese, Thai, Latin)"
TARGET_P95_MS = 50.0
LOCALES = ("en_US", "zh_CN", "zh_TW", "th_TH")
OWNERS = 10  # owner ids 1..10; the "own" viewer is owner 1 (a tenth of the records)

ILIKE_SQL = """
select r.id, r.full_name from {contacts} r
where (r.full_name ilike :p or r.email ilike :p or array_to_string(r.phones, ' ') ilike :p)
{own}
order by (case when lower(r.full_name) like :prefix then 0 else 1 end), char_length(r.full_name), r.id
limit 9
"""


def _pools(rng: random.Random, size: int) -> dict[str, dict[str, list[str]]]:
    from faker import Faker

    pools = {}
    for loc in LOCALES:
        fake = Faker(loc)
        fake.seed_instance(rng.randint(0, 10**6))
        pools[loc] = {
            "first": list({fake.first_name() for _ in range(size)}),
            "last": list({fake.last_name() for _ in range(size)}),
            "company": list({fake.company() for _ in range(size)}),
        }
    latin = Faker("en_US")
    latin.seed_instance(1)
    pools["latin_user"] = {"user": list({latin.user_name() for _ in range(size)})}
    return pools


def _copy(cur: Any, table: str, columns: list[str], rows: list[tuple]) -> None:
    with cur.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
        for values in rows:
            copy.write_row(values)


def _required_columns(cur: Any, schema: str, table: str, given: set[str]) -> dict[str, Any]:
    """NOT NULL columns without a server default that the generator leaves out, with a neutral value."""
    cur.execute(
        "select column_name, data_type from information_schema.columns where table_schema = %s "
        "and table_name = %s and is_nullable = 'NO' and column_default is null and is_identity = 'NO'",
        (schema, table),
    )
    neutral = {"boolean": False, "jsonb": "{}", "ARRAY": "{}", "timestamp with time zone": "now"}
    return {name: neutral.get(kind, "") for name, kind in cur.fetchall() if name not in given}


def load(app: Any, tenant: Any, contacts: int, seed: int = 7) -> dict[str, Any]:
    """COPY `contacts` contacts and contacts/5 companies into the tenant; build the search index."""
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers import search
    from tenants.customers.services import full_name

    rng = random.Random(seed)
    pools = _pools(rng, 3000 if contacts >= 100_000 else 800)
    companies = max(contacts // 5, 1)
    schema = tenant.schema
    company_rows, contact_rows, sample = [], [], []
    for i in range(companies):
        loc = LOCALES[i % 4]
        company_rows.append(
            (i + 1, f"{rng.choice(pools[loc]['company'])} {i}", f"+66 2{rng.randint(1000000, 9999999)}")
        )
    for i in range(contacts):
        loc = LOCALES[i % 4]
        first, last = rng.choice(pools[loc]["first"]), rng.choice(pools[loc]["last"])
        user = rng.choice(pools["latin_user"]["user"])
        email = f"{user}{i}@example{i % 97}.com"
        phone = f"+{rng.choice(['1', '86', '886', '66'])} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        name = full_name(first, last)
        contact_rows.append(
            (first, last, name, email, "{" + f'"{phone}"' + "}", rng.randint(1, OWNERS), i % companies + 1)
        )
        if i % 997 == 0:
            sample.append((loc, first, last, name, email, phone))
    log(f"search: generated {contacts} contacts, {companies} companies")
    with app.app_context(), tenancy.bound(tenant.id, schema, tenant.slug):
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            cols = ["id", "name", "phones"]
            extra = _required_columns(cur, schema, "companies", set(cols))
            rows = [
                (cid, name, "{" + f'"{phone}"' + "}", *extra.values()) for cid, name, phone in company_rows
            ]
            started = time.perf_counter()
            _copy(cur, f'"{schema}".companies', cols + list(extra), rows)
            cols = ["first_name", "last_name", "full_name", "email", "phones", "owner_id", "company_id"]
            extra = _required_columns(cur, schema, "contacts", set(cols))
            _copy(
                cur,
                f'"{schema}".contacts',
                cols + list(extra),
                [r + tuple(extra.values()) for r in contact_rows],
            )
            cur.execute(f"select setval(pg_get_serial_sequence('\"{schema}\".companies', 'id'), {companies})")
            raw.commit()
            copy_s = time.perf_counter() - started
        finally:
            raw.close()
        log(f"search: COPY took {copy_s:.1f}s; building the index")
        started = time.perf_counter()
        search.reindex_all()
        db.session.commit()
        index_s = time.perf_counter() - started
        # What autovacuum does after a bulk load: sets the visibility map, so index-only scans stay heap-free.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("search_grams", "contacts", "companies"):
                conn.execute(text(f'vacuum analyze "{schema}".{table}'))
        sizes = db.session.execute(
            text(
                f'select (select count(*) from "{schema}".search_grams), '
                f"pg_total_relation_size('\"{schema}\".search_grams'), pg_total_relation_size('\"{schema}\".contacts')"
            )
        ).one()
    log(f"search: index built in {index_s:.1f}s: {sizes[0]:,} grams")
    return {
        "sample": sample,
        "copy_s": copy_s,
        "index_s": index_s,
        "grams": sizes[0],
        "grams_mb": sizes[1] / 2**20,
        "contacts_mb": sizes[2] / 2**20,
    }


def queries(sample: list[tuple], rng: random.Random, n: int) -> dict[str, list[str]]:
    """Queries by category, taken from loaded records so each one finds something."""
    by_loc: dict[str, list[tuple]] = {}
    for s in sample:
        by_loc.setdefault(s[0], []).append(s)
    zh = by_loc["zh_CN"] + by_loc["zh_TW"]
    th, en = by_loc["th_TH"], by_loc["en_US"]

    def part(text: str, size: int) -> str:
        start = rng.randint(0, max(len(text) - size, 0))
        return text[start : start + size]

    pick = rng.choice
    return {
        "Chinese, one character": [pick(zh)[1][-1] for _ in range(n)],
        "Chinese, given name": [pick(zh)[1] for _ in range(n)],
        "Chinese, full name": [pick(zh)[3] for _ in range(n)],
        "Thai, part of a name": [part(pick(th)[1], 3) for _ in range(n)],
        "Latin, last name": [pick(en)[2] for _ in range(n)],
        "Latin, part of an email": [part(pick(en + zh)[4].split("@")[0], 6) for _ in range(n)],
        "Phone digits": [pick(sample)[5].split(" ", 1)[1].replace(" ", "") for _ in range(n)],
    }


def measure(app: Any, tenant: Any, qs: dict[str, list[str]]) -> dict[str, dict[str, dict[str, float]]]:
    from saas import tenancy
    from saas.extensions import db
    from saas.tenancy import qualified
    from tenants.customers import search
    from tenants.customers.people import Viewer

    out: dict[str, dict[str, dict[str, float]]] = {}
    everyone, own = Viewer(1, "all"), Viewer(1, "own")
    with app.test_request_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        for label, items in qs.items():
            for q in items[:3]:  # warm-up
                search.search(everyone, q)
            laps: dict[str, list[float]] = {"grams": [], "grams_own": [], "ilike": [], "ilike_own": []}
            found = 0
            for q in items:
                start = time.perf_counter()
                found += bool(search.search(everyone, q))
                laps["grams"].append(time.perf_counter() - start)
                start = time.perf_counter()
                search.search(own, q)
                laps["grams_own"].append(time.perf_counter() - start)
                esc = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                for key, cond in (("ilike", ""), ("ilike_own", "and r.owner_id = 1")):
                    sql = text(ILIKE_SQL.format(contacts=qualified("contacts"), own=cond))
                    start = time.perf_counter()
                    db.session.execute(sql, {"p": f"%{esc}%", "prefix": f"{esc.lower()}%"}).all()
                    laps[key].append(time.perf_counter() - start)
                db.session.rollback()
            out[label] = {key: summary_ms(v) for key, v in laps.items()}
            out[label]["found"] = {"share": found / len(items)}
            log(
                f"search: {label}: grams p95 {out[label]['grams']['p95']:.1f} ms, "
                f"ILIKE p95 {out[label]['ilike']['p95']:.1f} ms, found {found}/{len(items)}"
            )
    return out


def make_tenant(app: Any) -> Any:
    from saas import accounts, tenancy
    from saas.extensions import db
    from saas.models import User
    from saas.signup import provision

    with app.test_request_context():
        owner = User(
            email="search-owner@bench.example.com",
            name="Bench",
            password_hash=accounts.hash_password("x" * 12),
        )
        db.session.add(owner)
        db.session.commit()
        tenant = provision("Search Bench", "search-bench", owner)
        db.session.commit()
        bound = tenancy.BoundTenant(tenant.id, tenant.schema_name, tenant.slug)
        db.session.remove()
    return bound


def run(ctx: Context, contacts: int | None = None) -> dict[str, Any]:
    contacts = contacts or (20_000 if ctx.quick else 200_000)
    per_query = 20 if ctx.quick else 60
    app = ctx.app()
    tenant = make_tenant(app)
    loaded = load(app, tenant, contacts)
    qs = queries(loaded["sample"], random.Random(11), per_query)
    figures = measure(app, tenant, qs)
    rows = []
    for label, f in figures.items():
        base = f"ILIKE p95 {f['ilike']['p95']:.1f} ms"
        rows.append(
            row(f"{label}: p50", f["grams"]["p50"], "ms", None, f["ilike"]["p50"], "plain ILIKE scan")
        )
        rows.append(
            row(
                f"{label}: p95", f["grams"]["p95"], "ms", TARGET_P95_MS, f["ilike"]["p95"], "plain ILIKE scan"
            )
        )
        rows.append(
            row(
                f"{label}: p95, 'own' viewer",
                f["grams_own"]["p95"],
                "ms",
                TARGET_P95_MS,
                f["ilike_own"]["p95"],
                "plain ILIKE scan, own",
                note=f"{base}; found something for {f['found']['share']:.0%} of queries",
            )
        )
    return {
        "title": TITLE,
        "module": "bench/search.py",
        "date": now_iso(),
        "quick": ctx.quick,
        "machine": machine(ctx),
        "params": {"contacts": contacts, "companies": contacts // 5, "queries_per_kind": per_query},
        "tables": [
            {
                "title": f"Search as you type, {contacts:,} contacts + {contacts // 5:,} companies (service time)",
                "rows": rows,
                "notes": [
                    "Figure: tenants.customers.search.search() for an 'all' viewer (every SQL round trip: "
                    "normalise, gram counts, companies, contacts, contacts of matched companies, company names), "
                    "up to 8 hits per kind. Baseline: one plain `ILIKE '%q%'` query on name, email and phones "
                    "with the same ranking and limit (sequential scan, no index can serve it).",
                    f"Load: COPY {loaded['copy_s']:.1f}s; index build (search.reindex_all, set-based SQL) "
                    f"{loaded['index_s']:.1f}s for {loaded['grams']:,} grams, {loaded['grams_mb']:.0f} MiB "
                    f"(contacts table with its indexes: {loaded['contacts_mb']:.0f} MiB).",
                    "'own' viewer: owns a tenth of the records; candidates are capped at 5,000 before the "
                    "visibility filter, so a very common one-character query may show fewer of its own hits.",
                ],
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    contacts = int(argv[0]) if argv else 200_000
    ctx = Context.start(database="crm_bench_search")
    try:
        section = run(ctx, contacts)
    finally:
        ctx.drop_database()
    out = io.StringIO()
    for table in section["tables"]:
        print(table["title"], file=out)
        for r in table["rows"]:
            print(f"  {r['measure']:<45} {r['value']:8.1f} ms   (baseline {r['baseline']:8.1f} ms)", file=out)
        for note in table["notes"]:
            print(f"  - {note}", file=out)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
