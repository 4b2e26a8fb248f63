"""Global search of companies and contacts: by any part of a name, email, phone or company name.

Built-in PostgreSQL only (no pg_trgm, no unaccent). The index is the tenant table search_grams
(gram, kind, record_id): the distinct character bigrams of each whitespace-separated word of a
record's searchable text, plus every non-ASCII character on its own, so a single Chinese character
("伟") is a query too. The searchable text ("haystack") is one SQL expression per kind:
lower(normalize(text, NFKC)) of the names and emails, and the digits alone of each phone number.

A query is normalised the same way (by the server, so both sides use the same lower()), cut into
words (a query that looks like a phone number becomes its digits), and each word into grams.
Candidates come from the rarest gram (counted up to COUNT_CAP each), narrowed by index probes for
the next rarest ones, and capped at SCAN_CAP; then each candidate is checked against the record's
real text (every word must occur in it), filtered by the viewer's visibility and ranked: names that
start with the first word first, then shorter names. Contacts of the companies found are found too.

The index is a filter, never the truth: a stale gram costs a probe, not a wrong result. The services
call `forget` before they change or delete a record's searchable fields and `index` after; any
other writer (an import, a merge, a seeder) calls `index` for the ids it wrote, or `reindex_all`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, case, cast, exists, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from saas.extensions import db
from saas.tenancy import qualified
from tenants.customers.models import Company, Contact, SearchGram
from tenants.customers.people import Viewer
from tenants.customers.visibility import owned_by_visible

KINDS = {"company": 1, "contact": 2}
TABLES = {"company": "companies", "contact": "contacts"}
MAX_QUERY = 100  # characters of a query that count
COUNT_CAP = 2000  # a gram's postings are counted up to this many
SCAN_CAP = 5000  # candidates taken from the index before they are checked
PROBES = 4  # further grams (the next rarest) that must be in the index too
PHONE_QUERY_RE = re.compile(r"^[+(]*[0-9][0-9 ().\-/]*$")

_PHONE_DIGITS = (
    "translate(regexp_replace(normalize(array_to_string(r.phones, '|'), NFKC), '[^0-9|]', '', 'g'), '|', ' ')"
)
# The searchable text of a record of table alias "r": the one definition the index and the checks use.
HAYSTACK = {
    "company": f"concat_ws(' ', lower(normalize(concat_ws(' ', r.name, r.domain), NFKC)), {_PHONE_DIGITS})",
    "contact": (
        "concat_ws(' ', lower(normalize(concat_ws(' ', r.full_name, r.email, "
        f"array_to_string(r.emails, ' ')), NFKC)), {_PHONE_DIGITS})"
    ),
}
NAME = {"company": "lower(normalize(r.name, NFKC))", "contact": "lower(normalize(r.full_name, NFKC))"}

# (gram, record_id) of the records of `table` matching `where`; the same rule as `query_grams`.
_GRAMS = """
select distinct g.gram, r.id as record_id
from {table} r
cross join lateral regexp_split_to_table({haystack}, '\\s+') as t(word)
cross join lateral (
    select substr(t.word, i, 2) from generate_series(1, char_length(t.word) - 1) as i
    union all
    select ch from regexp_split_to_table(t.word, '') as ch where ascii(ch) > 127
) as g(gram)
where {where}
"""


def _grams_sql(kind: str, where: str) -> str:
    return _GRAMS.format(table=qualified(TABLES[kind]), haystack=HAYSTACK[kind], where=where)


def index(kind: str, ids: list[int]) -> None:
    """Add the grams of these records (call after they are written and flushed)."""
    if not ids:
        return
    db.session.flush()
    sql = (
        f"insert into {qualified('search_grams')} (gram, kind, record_id) "
        f"select gram, :kind, record_id from ({_grams_sql(kind, 'r.id = any(:ids)')}) x "
        "on conflict do nothing"
    )
    db.session.execute(text(sql), {"kind": KINDS[kind], "ids": list(ids)})


def forget(kind: str, ids: list[int]) -> None:
    """Remove the grams of these records as they are stored now (call before changing or deleting them)."""
    if not ids:
        return
    sql = (
        f"delete from {qualified('search_grams')} s using ({_grams_sql(kind, 'r.id = any(:ids)')}) x "
        "where s.kind = :kind and s.gram = x.gram and s.record_id = x.record_id"
    )
    db.session.execute(text(sql), {"kind": KINDS[kind], "ids": list(ids)})


def reindex_all() -> None:
    """Rebuild the whole index of the bound tenant (after a bulk load that bypassed the services)."""
    db.session.flush()
    db.session.execute(text(f"delete from {qualified('search_grams')}"))
    for kind in KINDS:
        db.session.execute(
            text(
                f"insert into {qualified('search_grams')} (gram, kind, record_id) "
                f"select gram, :kind, record_id from ({_grams_sql(kind, 'true')}) x"
            ),
            {"kind": KINDS[kind]},
        )


SEARCHED = {"company": ("name", "domain", "phones"), "contact": ("full_name", "email", "emails", "phones")}


def changes(record: Company | Contact, values: dict[str, Any]) -> bool:
    """Whether writing `values` into `record` changes its searchable text (and so its grams)."""
    keys = SEARCHED["company" if isinstance(record, Company) else "contact"]
    return any(key in values and values[key] != getattr(record, key) for key in keys)


# Searching ---------------------------------------------------------------------------------------


@dataclass
class Hit:
    kind: str
    id: int
    name: str
    email: str | None = None
    phone: str | None = None
    company_id: int | None = None
    company_name: str | None = None
    via_company: bool = False  # found because its company's name matched


@dataclass
class Results:
    query: str
    companies: list[Hit] = field(default_factory=list)
    contacts: list[Hit] = field(default_factory=list)
    more: bool = False  # some kind had more hits than were asked for
    too_short: bool = False

    def __bool__(self) -> bool:
        return bool(self.companies or self.contacts)


def words_of(normalised: str) -> list[str]:
    """The words of a normalised query; a phone-like query is one word of its digits."""
    normalised = normalised.strip()
    if PHONE_QUERY_RE.match(normalised) and sum(c.isdigit() for c in normalised) >= 3:
        return [re.sub(r"[^0-9]", "", normalised)]
    return [w for w in re.split(r"\s+", normalised) if w]


def query_grams(words: list[str]) -> list[str]:
    """The index grams every match must have (the same rule as _GRAMS)."""
    grams: list[str] = []
    for word in words:
        grams.extend(word[i : i + 2] for i in range(len(word) - 1))
        if len(word) == 1 and ord(word) > 127:
            grams.append(word)
    return list(dict.fromkeys(grams))


def normalise(query: str) -> str:
    """lower(normalize(query, NFKC)) by the server, so the query and the index agree to the letter."""
    return db.session.execute(text("select lower(normalize(:q, NFKC))"), {"q": query}).scalar_one() or ""


def _gram_counts(grams: list[str]) -> dict[tuple[str, int], int]:
    sql = text(
        f"select g.gram, k.kind, (select count(*) from (select 1 from {qualified('search_grams')} s "
        "where s.gram = g.gram and s.kind = k.kind limit :cap) x) "
        "from unnest(cast(:grams as text[])) as g(gram) cross join (values (1), (2)) as k(kind)"
    )
    rows = db.session.execute(sql, {"grams": grams, "cap": COUNT_CAP})
    return {(gram, kind): n for gram, kind, n in rows}


def _candidates(kind: str, grams: list[str], counts: dict[tuple[str, int], int]) -> list[int] | None:
    """A capped list of record ids that have the rarest grams, or None when one gram is absent."""
    k = KINDS[kind]
    ranked = sorted(grams, key=lambda gram: counts.get((gram, k), 0))
    if counts.get((ranked[0], k), 0) == 0:
        return None
    sg = SearchGram.__table__
    first = sg.alias("g0")
    stmt = select(first.c.record_id).where(first.c.gram == ranked[0], first.c.kind == k)
    for i, gram in enumerate(ranked[1 : 1 + PROBES], start=1):
        other = sg.alias(f"g{i}")
        stmt = stmt.where(
            exists().where(other.c.gram == gram, other.c.kind == k, other.c.record_id == first.c.record_id)
        )
    # Fetched first: joined in one statement, a visibility filter can tempt the planner into
    # scanning the viewer's records instead (measured: 10x slower for an 'own' viewer).
    return list(db.session.scalars(stmt.limit(SCAN_CAP))) or None


def _checks(kind: str, words: list[str]) -> list[Any]:
    haystack = literal_column(HAYSTACK[kind])
    return [func.strpos(haystack, bindparam(f"w{i}", word, type_=Text)) > 0 for i, word in enumerate(words)]


def _rank(kind: str, words: list[str]) -> list[Any]:
    name = literal_column(NAME[kind])
    prefix = case((func.starts_with(name, bindparam("w_first", words[0], type_=Text)), 0), else_=1)
    return [prefix, func.char_length(name), literal_column("r.id")]


def _companies(viewer: Viewer, words: list[str], cand: Any, limit: int) -> list[Hit]:
    r = Company.__table__.alias("r")
    stmt = (
        select(r.c.id, r.c.name, r.c.phones, r.c.domain)
        .where(r.c.id == any_(cast(cand, ARRAY(BigInteger))))
        .where(owned_by_visible(viewer, r.c.owner_id), *_checks("company", words))
        .order_by(*_rank("company", words))
        .limit(limit)
    )
    return [
        Hit("company", row.id, row.name, email=row.domain, phone=(row.phones or [None])[0])
        for row in db.session.execute(stmt)
    ]


def _contacts(viewer: Viewer, words: list[str], cand: Any, limit: int) -> list[Hit]:
    r = Contact.__table__.alias("r")
    stmt = (
        select(r.c.id, r.c.full_name, r.c.email, r.c.phones, r.c.company_id)
        .where(r.c.id == any_(cast(cand, ARRAY(BigInteger))))
        .where(owned_by_visible(viewer, r.c.owner_id), *_checks("contact", words))
        .order_by(*_rank("contact", words))
        .limit(limit)
    )
    return [
        Hit("contact", row.id, row.full_name, row.email, (row.phones or [None])[0], row.company_id)
        for row in db.session.execute(stmt)
    ]


def _contacts_of(viewer: Viewer, company_ids: list[int], skip: set[int], limit: int) -> list[Hit]:
    if not company_ids or limit <= 0:
        return []
    stmt = (
        select(Contact.id, Contact.full_name, Contact.email, Contact.phones, Contact.company_id)
        .where(Contact.company_id.in_(company_ids), owned_by_visible(viewer, Contact.owner_id))
        .order_by(func.lower(Contact.full_name), Contact.id)
        .limit(limit + len(skip))
    )
    hits = [
        Hit(
            "contact",
            row.id,
            row.full_name,
            row.email,
            (row.phones or [None])[0],
            row.company_id,
            via_company=True,
        )
        for row in db.session.execute(stmt)
        if row.id not in skip
    ]
    return hits[:limit]


def _company_names(viewer: Viewer, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.session.execute(
        select(Company.id, Company.name).where(
            Company.id.in_(ids), owned_by_visible(viewer, Company.owner_id)
        )
    )
    return {cid: name for cid, name in rows}


def search(viewer: Viewer, query: str, limit: int = 8) -> Results:
    """Companies and contacts this viewer may see that match every word of `query` (up to `limit` each)."""
    query = (query or "").strip()[:MAX_QUERY]
    results = Results(query)
    if not query:
        return results
    words = words_of(normalise(query))
    grams = query_grams(words)
    if not grams:
        results.too_short = True
        return results
    counts = _gram_counts(grams)
    cand = _candidates("company", grams, counts)
    if cand is not None:
        results.companies = _companies(viewer, words, cand, limit + 1)
    cand = _candidates("contact", grams, counts)
    if cand is not None:
        results.contacts = _contacts(viewer, words, cand, limit + 1)
    direct = {hit.id for hit in results.contacts}
    results.contacts += _contacts_of(
        viewer, [hit.id for hit in results.companies], direct, limit + 1 - len(results.contacts)
    )
    results.more = len(results.companies) > limit or len(results.contacts) > limit
    del results.companies[limit:], results.contacts[limit:]
    names = _company_names(viewer, {hit.company_id for hit in results.contacts if hit.company_id})
    for hit in results.contacts:
        hit.company_name = names.get(hit.company_id) if hit.company_id else None
    return results
