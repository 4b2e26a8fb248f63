"""Custom fields: definitions per record type, and the checking of their values.

Values live in the record's `custom` JSONB under the field's key: text and
select as strings, numbers as JSON numbers, dates as "YYYY-MM-DD", multi-select
as a list of strings, checkboxes as true/false. A field's key, type and
sensitivity never change after it is made, so stored values always match their definition.

A sensitive field (text, number or date) stores each value as an envelope
{"enc": <Fernet token of the value's JSON>, "bi": <blind index>} (saas.crypto): the
database holds no plaintext, and the list's "is" filter finds a record by the blind
index through the same GIN index (`custom @> {"key": {"bi": ...}}`). Everything that
shows or hands out values goes through `reveal` / `plain_values`.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, array

from saas import audit, crypto
from saas.extensions import db
from saas.tenancy import require_tenant
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.models import FIELD_TYPES, RECORD_TYPES, Company, Contact, CustomField

log = logging.getLogger(__name__)
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_FIELDS = 50
MAX_OPTIONS = 100
MAX_TEXT = 1000
TYPE_LABELS: dict[str, Any] = {
    "text": _l("Text"),
    "number": _l("Number"),
    "date": _l("Date"),
    "select": _l("Choice (one)"),
    "multi_select": _l("Choice (several)"),
    "checkbox": _l("Checkbox"),
}
RECORD_LABELS: dict[str, Any] = {"company": _l("Companies"), "contact": _l("Contacts")}
# Choices and checkboxes are not offered: a handful of possible values is no secret under encryption.
SENSITIVE_TYPES = ("text", "number", "date")


# Built once, run with each call's value: on every list and 360 page, where building the statement
# again cost more Python time than running it.
_DEFINITIONS = (
    select(CustomField)
    .where(CustomField.record_type == bindparam("record_type"))
    .order_by(CustomField.position, CustomField.id)
)


def definitions(record_type: str) -> list[CustomField]:
    return list(db.session.scalars(_DEFINITIONS, {"record_type": record_type}))


def get_field(field_id: int) -> CustomField:
    found = db.session.get(CustomField, field_id)
    if found is None:
        raise NotFound(field_id)
    return found


def _key_from(label: str) -> str:
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9]+", "_", ascii_label.lower()).strip("_")
    if key and not key[0].isalpha():
        key = "f_" + key
    return key[:40]


def _clean_options(field_type: str, options: list[str]) -> list[str]:
    if field_type not in ("select", "multi_select"):
        return []
    seen: dict[str, str] = {}
    for opt in options:
        opt = opt.strip()
        if not opt:
            continue
        if len(opt) > 80:
            raise CustomerError(_("Each choice can be at most 80 characters long."), "options")
        seen.setdefault(opt.lower(), opt)
    if not seen:
        raise CustomerError(_("Give at least one choice, one per line."), "options")
    if len(seen) > MAX_OPTIONS:
        raise CustomerError(_("At most %(n)d choices.", n=MAX_OPTIONS), "options")
    return list(seen.values())


def create_field(
    record_type: str, label: str, field_type: str, options: list[str], key: str = "", sensitive: bool = False
) -> CustomField:
    if record_type not in RECORD_TYPES:
        raise CustomerError(_("Choose companies or contacts."), "record_type")
    label = (label or "").strip()
    if not label:
        raise CustomerError(_("Give the field a name."), "label")
    if len(label) > 80:
        raise CustomerError(_("The name can be at most 80 characters long."), "label")
    if field_type not in FIELD_TYPES:
        raise CustomerError(_("Choose a type from the list."), "field_type")
    if sensitive and field_type not in SENSITIVE_TYPES:
        raise CustomerError(_("Only text, number and date fields can be sensitive."), "sensitive")
    key = (key or "").strip().lower() or _key_from(label)
    if not key:
        count = db.session.scalar(select(func.count()).select_from(CustomField)) or 0
        key = f"field_{count + 1}"
    if not KEY_RE.match(key):
        raise CustomerError(
            _("The key starts with a letter and holds only a-z, 0-9 and _ (at most 40)."), "key"
        )
    existing = definitions(record_type)
    if any(f.key == key for f in existing):
        raise CustomerError(_("Another field already uses the key %(key)s.", key=key), "key")
    if len(existing) >= MAX_FIELDS:
        raise CustomerError(_("At most %(n)d custom fields per record type.", n=MAX_FIELDS))
    field = CustomField(
        record_type=record_type,
        key=key,
        label=label,
        field_type=field_type,
        options=_clean_options(field_type, options),
        position=max((f.position for f in existing), default=0) + 10,
        sensitive=bool(sensitive),
    )
    db.session.add(field)
    db.session.commit()
    return field


def update_field(field_id: int, label: str, options: list[str], position: int | None = None) -> CustomField:
    field = get_field(field_id)
    label = (label or "").strip()
    if not label:
        raise CustomerError(_("Give the field a name."), "label")
    if len(label) > 80:
        raise CustomerError(_("The name can be at most 80 characters long."), "label")
    field.label = label
    if field.field_type in ("select", "multi_select"):
        field.options = _clean_options(field.field_type, options)
    if position is not None:
        field.position = position
    db.session.commit()
    return field


def delete_field(field_id: int) -> None:
    """Delete a definition and its values on every record."""
    field = get_field(field_id)
    model = Company if field.record_type == "company" else Contact
    result = db.session.execute(
        update(model)
        .where(model.custom.has_key(field.key))
        .values(custom=model.custom.op("-")(field.key))
        .execution_options(synchronize_session=False)
    )
    audit.record(
        "delete_values",
        model.__tablename__,
        None,
        summary=f"{field.key}: removed from {result.rowcount} records",
    )
    db.session.delete(field)
    db.session.commit()


# Values ------------------------------------------------------------------------------


def _number(raw: Any, label: str, form_key: str) -> int | float:
    if isinstance(raw, bool):
        raise CustomerError(_("%(field)s: enter a number.", field=label), form_key)
    try:
        value = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        raise CustomerError(_("%(field)s: enter a number.", field=label), form_key) from None
    if not value.is_finite() or abs(value) >= Decimal("1e15"):
        raise CustomerError(_("%(field)s: enter a number.", field=label), form_key)
    return int(value) if value == value.to_integral_value() else float(value)


def _date(raw: Any, label: str, form_key: str) -> str:
    if isinstance(raw, date):
        return raw.isoformat()
    try:
        return date.fromisoformat(str(raw).strip()).isoformat()
    except ValueError:
        raise CustomerError(_("%(field)s: enter a date as YYYY-MM-DD.", field=label), form_key) from None


def _is_blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or (isinstance(raw, list) and not raw)


def _clean_one(d: CustomField, value: Any, form_key: str) -> Any:
    """A non-blank value of a text, number, date or choice field, checked; CustomerError if wrong."""
    if d.field_type == "text":
        text = str(value).strip()
        if len(text) > MAX_TEXT:
            raise CustomerError(
                _("%(field)s can be at most %(n)d characters long.", field=d.label, n=MAX_TEXT), form_key
            )
        return text
    if d.field_type == "number":
        return _number(value, d.label, form_key)
    if d.field_type == "date":
        return _date(value, d.label, form_key)
    if d.field_type == "select":
        if str(value) not in d.options:
            raise CustomerError(_("%(field)s: choose from the list.", field=d.label), form_key)
        return str(value)
    values = value if isinstance(value, list | tuple) else [value]  # multi_select
    picked = [str(v) for v in values if str(v).strip()]
    if any(v not in d.options for v in picked):
        raise CustomerError(_("%(field)s: choose from the list.", field=d.label), form_key)
    return [o for o in d.options if o in picked]  # in the definition's order


def clean_values(defs: list[CustomField], raw: dict[str, Any], current: dict | None = None) -> dict[str, Any]:
    """The record's new `custom` dict: `current` with the defined keys of `raw` checked and applied.

    Keys of raw not defined are ignored; a blank value removes the key. Values of sensitive fields
    come out sealed (an unchanged value keeps its envelope, so saving a form rewrites nothing).
    Errors name the form field "cf_<key>".
    """
    out = dict(current or {})
    for d in defs:
        if d.key not in raw:
            continue
        value, form_key = raw[d.key], f"cf_{d.key}"
        if d.field_type == "checkbox":
            out[d.key] = bool(value) and str(value).lower() not in ("0", "false", "no", "off")
            continue
        if _is_blank(value):
            out.pop(d.key, None)
            continue
        value = _clean_one(d, value, form_key)
        out[d.key] = _sealed(d, value, out.get(d.key)) if d.sensitive else value
    return out


# Sensitive values ----------------------------------------------------------------------


def is_sealed(stored: Any) -> bool:
    return isinstance(stored, dict) and "enc" in stored


def _index_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _purpose(d: CustomField) -> str:
    # Per tenant and field: the same value in two fields, or two workspaces, gives unrelated indexes.
    return f"custom:{require_tenant().id}:{d.record_type}:{d.key}"


def seal(d: CustomField, value: Any) -> dict[str, str]:
    """The stored form of a clean value of a sensitive field."""
    return {
        "enc": crypto.encrypt(json.dumps(value, ensure_ascii=False)),
        "bi": crypto.blind_index(_index_text(value), _purpose(d)),
    }


def _sealed(d: CustomField, value: Any, stored: Any) -> dict[str, str]:
    if is_sealed(stored):
        try:
            if reveal(stored) == value:
                return stored
        except crypto.CryptoError:
            pass  # unreadable: the new value replaces it
    return seal(d, value)


def reveal(stored: Any) -> Any:
    """A stored value as its plain value (decrypted when sealed); CryptoError if no key reads it."""
    if is_sealed(stored):
        return json.loads(crypto.decrypt(str(stored["enc"])))
    return stored


def plain_values(custom: dict | None) -> dict[str, Any]:
    """A record's custom values with the sensitive ones decrypted (forms, the API, exports)."""
    return {k: reveal(v) for k, v in (custom or {}).items()}


def index_of(d: CustomField, raw: str) -> str:
    """The blind index a filter value must match: the value cleaned as the field cleans it, so
    "1,000" finds 1000 and " 2024-01-31" finds the date; a value the field would refuse finds nothing."""
    try:
        value = _clean_one(d, raw, f"cf_{d.key}")
    except CustomerError:
        value = raw
    return crypto.blind_index(_index_text(value), _purpose(d))


def reseal(d: CustomField, stored: Any) -> Any:
    """`stored` brought up to date for `crm keys rotate`: under the primary key, with its blind index
    recomputed (the tenant or CRM_BLIND_INDEX_KEY may have changed), a plain value sealed. The same
    object when nothing changes."""
    if not is_sealed(stored):
        return seal(d, stored) if stored is not None else stored
    token = str(stored["enc"])
    plaintext, stale = crypto.open_token(token)
    new_token = crypto.encrypt(plaintext) if stale else token
    value = json.loads(plaintext)
    index = crypto.blind_index(_index_text(value), _purpose(d))
    if new_token == token and index == stored.get("bi"):
        return stored
    return {"enc": new_token, "bi": index}


def shown(d: CustomField, value: Any) -> str:
    """A stored value as a person reads it (a sensitive value no key reads: a marker, and a log line)."""
    try:
        value = reveal(value)
    except crypto.CryptoError as err:
        log.error("custom field %s: %s", d.key, err)
        return _("(cannot be decrypted)")
    if value is None:
        return ""
    if d.field_type == "checkbox":
        return _("Yes") if value else _("No")
    if d.field_type == "multi_select" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if d.field_type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return format_decimal(value)
    return str(value)


@dataclass
class ResealBatch:
    last_id: int | None  # the last record walked; None at the end
    walked: int = 0
    changed: int = 0  # values rewritten
    unreadable: list[int] = dc_field(default_factory=list)  # ids of records with a value no key reads


def reseal_batch(record_type: str, after_id: int, size: int) -> ResealBatch:
    """One batch of `crm keys rotate` in the bound tenant, committed on its own (a short transaction).

    Walks the records after `after_id` by id; each sensitive value not under the primary key (or
    with a stale blind index) is rewritten, only if it is still the value read: a value someone saved
    meanwhile is already under the primary key and stays. Running it again rewrites nothing already
    done. A value no key reads is left as it is and reported.
    """
    defs = [d for d in definitions(record_type) if d.sensitive]
    model = Company if record_type == "company" else Contact
    if not defs:
        db.session.rollback()
        return ResealBatch(None)
    rows = db.session.execute(
        select(model.id, model.custom)
        .where(model.id > after_id, model.custom.has_any(array([d.key for d in defs])))
        .order_by(model.id)
        .limit(size)
    ).all()
    out = ResealBatch(rows[-1][0] if len(rows) == size else None, walked=len(rows))
    for row_id, custom in rows:
        before, patch = {}, {}
        for d in defs:
            stored = (custom or {}).get(d.key)
            try:
                fresh = reseal(d, stored)
            except crypto.CryptoError:
                out.unreadable.append(row_id)
                continue
            if fresh is not stored:
                before[d.key], patch[d.key] = stored, fresh
        if not patch:
            continue
        result = db.session.execute(
            update(model)
            .where(model.id == row_id, model.custom.contains(before))
            # updated_at as it was: re-encrypting is not an edit of the record.
            .values(custom=model.custom.op("||")(cast(patch, JSONB)), updated_at=model.updated_at)
            .execution_options(synchronize_session=False)
        )
        out.changed += len(patch) if result.rowcount else 0
    if out.changed:
        audit.record(
            "rotate_keys", model.__tablename__, None, summary=f"{out.changed} sensitive values re-encrypted"
        )
    db.session.commit()
    return out
