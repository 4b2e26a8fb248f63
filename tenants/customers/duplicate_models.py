"""Tenant-schema pieces of duplicate detection: dismissed pairs, and the match keys with their indexes.

A match key is an SQL expression, defined once here and used both by the indexes below and by the
queries of tenants.customers.duplicates, so every lookup is answered from an index:
- email: the address itself (every writer stores it lower case, so equality is case-insensitive);
- phone: the digits of a number without its extension, the last 8 (or all 7; NULL if fewer), kept in
  the records' phone_keys column (each key once, in the numbers' order), computed in Python by
  `phone_key` with the other derived columns (tenants.customers.search): an index over a regular
  expression cost the database more than a third of an imported row;
- contact name: "<company id>|<name>", the name lower-cased (NFKC) without spaces or punctuation
  ("Lee, Ann" ~ "ann lee" is not a match, "Ann Lee." ~ "ann  lee" is; "王 伟" ~ "王伟");
- company name: the same without a legal form ("Ltd", "Inc.", "有限公司", "บริษัท ... จำกัด");
- domain: the column (stored lower case, without "www.").

A record can hold several emails or phones, so a key has positions (`Branch`): the first value, the
second, and the rest. The first two have a B-tree each, which walks the keys in order (index-only:
INCLUDE), so the review page reads a window of keys at a time instead of the whole table; the rest
(few records have three phones or two further addresses) come from a small partial index. GIN indexes
on all of a record's emails and phone keys answer "who shares one of these" for one record at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, String, literal_column, text
from sqlalchemy.orm import Mapped, mapped_column

from saas.extensions import db
from saas.models import utcnow
from tenants.base import TENANT, id_column
from tenants.customers.models import Company, Contact

NOT_DIGITS_RE = re.compile(r"[^0-9]+")


def phone_key(phone: str) -> str | None:
    """The match key of one phone number: the last 8 digits before any extension (7: all of them)."""
    digits = NOT_DIGITS_RE.sub("", phone.lower().split("x", 1)[0])
    return digits[-8:] if len(digits) >= 7 else None


def phone_keys(phones: list[str] | None) -> list[str]:
    """The keys of a record's phones, each once, in order (a number too short for one has none)."""
    return list(dict.fromkeys(key for p in phones or [] if (key := phone_key(p))))


def _bare_name(name: str) -> str:
    return f"regexp_replace(lower(normalize({name}, NFKC)), '[[:space:][:punct:]]+', '', 'g')"


def contact_name_key(p: str = "") -> str:
    """SQL: a contact's name key, prefixed with its company (NULL without a company)."""
    return f"(({p}company_id)::text || '|' || {_bare_name(f'{p}full_name')})"


# Legal forms that do not tell two companies apart (after NFKC, Thai "จำกัด" is written "จํากัด").
_LEGAL = (
    "^บริษัท"
    "|[[:space:][:punct:]]+(inc|incorporated|ltd|limited|llc|gmbh|corp|corporation|co|company|plc|ag|sa|bv|pte)"
    "[[:punct:]]*$"
    "|(股份)?有限公司$|公司$"
    "|จํากัด([[:space:]]*[(]มหาชน[)])?$"
)


def company_name_key(p: str = "") -> str:
    """SQL: a company's name key."""
    return f"regexp_replace(regexp_replace(lower(normalize({p}name, NFKC)), '{_LEGAL}', '', 'g'), '[[:space:][:punct:]]+', '', 'g')"


@dataclass(frozen=True)
class Branch:
    """One position of a key: `key` over the row (alias p), for the rows `where` selects; with `rest`,
    the key of each element ("u.item") of that array of the row."""

    key: str
    where: str = ""
    rest: str = ""
    # Keys of the same row's earlier positions: one record holding a value twice is no duplicate.
    earlier: tuple[str, ...] = ()


def branches(record_type: str, reason: str, p: str = "r.") -> list[Branch]:
    """The positions of a key, the first one first (its B-tree sets the review page's windows)."""
    if reason == "email":
        first, second = f"{p}email", f"{p}emails[1]"
        return [
            Branch(first),
            Branch(second, f"{p}emails <> '{{}}'::text[]", earlier=(first,)),
            Branch("u.item", f"cardinality({p}emails) > 1", f"{p}emails[2:]", (first, second)),
        ]
    if reason == "phone":
        first, second = f"{p}phone_keys[1]", f"{p}phone_keys[2]"
        return [
            Branch(first),
            Branch(second, f"cardinality({p}phone_keys) > 1", earlier=(first,)),
            Branch("u.item", f"cardinality({p}phone_keys) > 2", f"{p}phone_keys[3:]", (first, second)),
        ]
    if reason == "domain":
        return [Branch(f"{p}domain")]
    if record_type == "contact":
        return [Branch(contact_name_key(p), f"{p}company_id IS NOT NULL")]
    return [Branch(company_name_key(p))]


def all_keys(record_type: str, reason: str, p: str = "r.") -> str:
    """SQL: every key of a row for `reason`, as an array (what the GIN indexes hold for emails/phones)."""
    if reason == "email":
        return f"(ARRAY[{p}email] || {p}emails)"
    if reason == "phone":
        return f"{p}phone_keys"
    return f"ARRAY[{branches(record_type, reason, p)[0].key}]"


class DuplicateDismissal(db.Model):
    """Two records someone marked "not duplicates": they are not offered together again.

    low_id < high_id, so a pair is stored once whichever way round it was dismissed.
    """

    __tablename__ = "duplicate_dismissals"
    __table_args__ = (
        Index("ix_duplicate_dismissals_pair", "record_type", "low_id", "high_id", unique=True),
        Index("ix_duplicate_dismissals_high", "record_type", "high_id"),
        TENANT,
    )

    id: Mapped[int] = id_column()
    record_type: Mapped[str] = mapped_column(String(20))
    low_id: Mapped[int] = mapped_column(BigInteger)
    high_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _index(table: Any, name: str, expr: str, include: list[str], where: str = "") -> None:
    Index(
        name,
        literal_column(f"({expr})"),
        postgresql_include=[*include, "owner_id"],
        postgresql_where=text(where) if where else None,
        _table=table,
    )


def _rest_index(table: Any, name: str, include: list[str], where: str) -> None:
    Index(name, table.c.id, postgresql_include=[*include, "owner_id"], postgresql_where=text(where))


for _model in (Contact, Company):
    _table = _model.__table__
    _name = _table.name
    _first, _second, _rest = branches("contact", "phone", "")
    # The keys ride along (INCLUDE): a window of the review page is read from the index alone.
    _index(_table, f"ix_{_name}_phone_key", _first.key, ["phone_keys"])
    _index(_table, f"ix_{_name}_phone_key2", _second.key, ["phone_keys"], _second.where)
    _rest_index(_table, f"ix_{_name}_more_phones", ["phone_keys"], _rest.where)
    Index(f"ix_{_name}_phone_keys", _table.c.phone_keys, postgresql_using="gin")

_first, _second, _rest = branches("contact", "email", "")
_index(Contact.__table__, "ix_contacts_email2", _second.key, ["emails"], _second.where)
_rest_index(Contact.__table__, "ix_contacts_more_emails", ["emails"], _rest.where)
Index("ix_contacts_emails", Contact.__table__.c.emails, postgresql_using="gin")
_index(
    Contact.__table__,
    "ix_contacts_name_key",
    contact_name_key(),
    ["company_id", "full_name"],
    "company_id IS NOT NULL",
)
_index(Company.__table__, "ix_companies_name_key", company_name_key(), ["name"])
