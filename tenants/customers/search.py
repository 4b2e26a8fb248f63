"""Global search of companies and contacts: by any part of a name, email, phone or company name.

Built-in PostgreSQL only (no pg_trgm, no unaccent). Each company and contact row carries derived
columns, kept by this module (DERIVED):
- search_text: the record's searchable text, normalised (NFKC, lower case) — its names and emails,
  and the digits alone of each phone number;
- search_grams: the distinct character bigrams of each word of search_text, plus every non-ASCII
  character on its own (so a single Chinese character, "伟", is a query too), under a GIN index;
- phone_keys: the duplicate-match key of each phone number (tenants.customers.duplicate_models), kept
  here with the others because it derives from the same fields, and is refreshed the same way.

One rule computes them, in Python (`derived`), for the index and for the query alike: the ORM events
below refresh them whenever a record's searchable fields change, an import computes them for the
rows it COPYs, and any other writer that goes around the ORM calls `index(kind, ids)`.

A query is normalised and cut into words the same way (a query that looks like a phone number
becomes its digits), and each word into grams. A match is a row whose grams contain all of the
query's (`search_grams @> ...`, a GIN lookup), whose search_text holds every word, and that the
viewer may see; at most SCAN_CAP matches are ranked (a very common gram gives a sample of them):
names that start with the first word first, then shorter names. Contacts of the companies found
are found too.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from operator import add
from typing import Any

from sqlalchemy import bindparam, case, event, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from saas.extensions import db
from tenants.customers.duplicate_models import phone_keys
from tenants.customers.models import Company, Contact
from tenants.customers.people import Viewer
from tenants.customers.visibility import owned_by_visible

MODELS = {"company": Company, "contact": Contact}
MAX_QUERY = 100  # characters of a query that count
SCAN_CAP = 1000  # matches ranked at most: a very common gram gives a sample of them, not all
PHONE_QUERY_RE = re.compile(r"^[+(]*[0-9][0-9 ().\-/]*$")
NOT_DIGIT_RE = re.compile(r"[^0-9]")


def normalise(value: str) -> str:
    return unicodedata.normalize("NFKC", value).lower()


def haystack(kind: str, values: dict[str, Any]) -> str:
    """The searchable text of a record, from its field values."""
    if kind == "company":
        parts = [values.get("name") or "", values.get("domain") or ""]
    else:
        parts = [values.get("full_name") or "", values.get("email") or "", *(values.get("emails") or [])]
    phones = [NOT_DIGIT_RE.sub("", unicodedata.normalize("NFKC", p)) for p in values.get("phones") or []]
    return " ".join(w for w in normalise(" ".join(parts)).split() + phones if w)


def grams_of(words: list[str], singles: bool = True) -> list[str]:
    """Bigrams of each word, and (singles) each non-ASCII character alone; distinct, sorted."""
    grams: set[str] = set()
    for word in words:
        grams.update(map(add, word, word[1:]))  # word[i] + word[i + 1]: an import derives millions
        if singles and not word.isascii():
            grams.update(ch for ch in word if ord(ch) > 127)
    return sorted(grams)


def derive(kind: str, values: dict[str, Any]) -> tuple[str, list[str]]:
    """(search_text, search_grams) of a record."""
    text_ = haystack(kind, values)
    return text_, grams_of(text_.split())


def array_literal(items: list[str]) -> str:
    """PostgreSQL's text form of a text[] (for COPY writers: much faster than adapting a list)."""
    if not items:
        return "{}"
    flat = "".join(items)
    if '"' in flat or "\\" in flat:  # rare: escape element by element
        items = [i.replace("\\", "\\\\").replace('"', '\\"') for i in items]
    return '{"' + '","'.join(items) + '"}'


DERIVED = ("search_text", "search_grams", "phone_keys")


def derived(kind: str, values: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """The DERIVED columns of a record, from its SEARCHED fields."""
    text_, grams = derive(kind, values)
    return text_, grams, phone_keys(values.get("phones"))


def derived_for_copy(kind: str, values: dict[str, Any]) -> tuple[str, str, str]:
    """derived(), with the arrays as literals, for rows written with COPY."""
    text_, grams, keys = derived(kind, values)
    return text_, array_literal(grams), array_literal(keys)


def index(kind: str, ids: list[int]) -> None:
    """Refresh the derived columns of these records from their stored fields (for writers that go
    around the ORM, e.g. raw SQL updates); the ORM's own writes are covered by the events below."""
    if not ids:
        return
    db.session.flush()
    model = MODELS[kind]
    fields = SEARCHED[kind]
    rows = db.session.execute(select(model.id, *(getattr(model, f) for f in fields)).where(model.id.in_(ids)))
    params = []
    for row in rows:
        values = derived(kind, dict(zip(fields, row[1:], strict=True)))
        params.append({"rid": row.id, **{f"new_{c}": v for c, v in zip(DERIVED, values, strict=True)}})
    if params:
        table = model.__table__
        stmt = (
            update(table)
            .where(table.c.id == bindparam("rid"))
            # updated_at kept: refreshing derived columns is not a change of the record.
            .values({c: bindparam(f"new_{c}") for c in DERIVED} | {"updated_at": table.c.updated_at})
        )
        db.session.execute(stmt, params, execution_options={"synchronize_session": False})


def reindex_all(batch: int = 5000) -> None:
    """Refresh every record of the bound tenant (after a bulk load that bypassed the ORM)."""
    for kind, model in MODELS.items():
        last = 0
        while True:
            ids = list(
                db.session.scalars(select(model.id).where(model.id > last).order_by(model.id).limit(batch))
            )
            if not ids:
                break
            index(kind, ids)
            last = ids[-1]


SEARCHED = {"company": ("name", "domain", "phones"), "contact": ("full_name", "email", "emails", "phones")}


def _refresh(kind: str, fields: tuple[str, ...]) -> Any:
    def listener(_mapper: Any, _connection: Any, target: Any) -> None:
        state = db.inspect(target)
        if state.persistent and not any(state.attrs[f].history.has_changes() for f in fields):
            return
        values = derived(kind, {f: getattr(target, f) for f in fields})
        for column, value in zip(DERIVED, values, strict=True):
            setattr(target, column, value)

    return listener


for _kind, _model in MODELS.items():
    event.listen(_model, "before_insert", _refresh(_kind, SEARCHED[_kind]))
    event.listen(_model, "before_update", _refresh(_kind, SEARCHED[_kind]))


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
        return [NOT_DIGIT_RE.sub("", normalised)]
    return normalised.split()


def query_grams(words: list[str]) -> list[str]:
    """The grams every match must have: bigrams of each word; a one-character word is its own gram
    when it is not ASCII (a single Chinese character), else too short to look up."""
    grams = grams_of(words, singles=False)
    grams += [w for w in words if len(w) == 1 and ord(w) > 127]
    return sorted(set(grams))


def _matches(
    kind: str, viewer: Viewer, words: list[str], grams: list[str], cols: list[str], limit: int
) -> Any:
    """Rows (id, *cols) of `kind` matching every word, ranked: one pass over the GIN candidates.

    The matches (grams, words and visibility checked in the same scan, so no visible match is lost
    to the cap) are capped at SCAN_CAP, then ranked; only the columns shown are read, from the
    heap pages the bitmap scan visits anyway.
    """
    model = MODELS[kind]
    name = func.lower(model.name if kind == "company" else model.full_name)
    checks = [
        func.strpos(model.search_text, bindparam(f"w{i}", word, type_=Text)) > 0
        for i, word in enumerate(words)
    ]
    found = (
        select(model.id, *(getattr(model, c) for c in cols), name.label("_name"))
        .where(
            model.search_grams.contains(bindparam("grams", grams, type_=ARRAY(Text))),
            *checks,
            owned_by_visible(viewer, model.owner_id),
        )
        .limit(SCAN_CAP)
        .cte("found")
        .prefix_with("materialized")  # the cap before the sort: a common gram must not sort everything
    )
    first = case((func.starts_with(found.c._name, bindparam("w_first", words[0], type_=Text)), 0), else_=1)
    stmt = select(found).order_by(first, func.char_length(found.c._name), found.c.id).limit(limit)
    return db.session.execute(stmt)


def _companies(viewer: Viewer, words: list[str], grams: list[str], limit: int) -> list[Hit]:
    rows = _matches("company", viewer, words, grams, ["name", "phones", "domain"], limit)
    return [Hit("company", r.id, r.name, email=r.domain, phone=(r.phones or [None])[0]) for r in rows]


def _contacts(viewer: Viewer, words: list[str], grams: list[str], limit: int) -> list[Hit]:
    rows = _matches("contact", viewer, words, grams, ["full_name", "email", "phones", "company_id"], limit)
    return [Hit("contact", r.id, r.full_name, r.email, (r.phones or [None])[0], r.company_id) for r in rows]


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
    results.companies = _companies(viewer, words, grams, limit + 1)
    results.contacts = _contacts(viewer, words, grams, limit + 1)
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
