"""Custom fields: definitions per record type, and the checking of their values.

Values live in the record's `custom` JSONB under the field's key: text and
select as strings, numbers as JSON numbers, dates as "YYYY-MM-DD", multi-select
as a list of strings, checkboxes as true/false. A field's key and type never
change after it is made, so stored values always match their definition.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from saas import audit
from saas.extensions import db
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.models import FIELD_TYPES, RECORD_TYPES, Company, Contact, CustomField

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


def definitions(record_type: str) -> list[CustomField]:
    return list(
        db.session.scalars(
            select(CustomField)
            .where(CustomField.record_type == record_type)
            .order_by(CustomField.position, CustomField.id)
        )
    )


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
    record_type: str, label: str, field_type: str, options: list[str], key: str = ""
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


def clean_values(defs: list[CustomField], raw: dict[str, Any], current: dict | None = None) -> dict[str, Any]:
    """The record's new `custom` dict: `current` with the defined keys of `raw` checked and applied.

    Keys of raw not defined are ignored; a blank value removes the key.
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
        if d.field_type == "text":
            text = str(value).strip()
            if len(text) > MAX_TEXT:
                raise CustomerError(
                    _("%(field)s can be at most %(n)d characters long.", field=d.label, n=MAX_TEXT), form_key
                )
            out[d.key] = text
        elif d.field_type == "number":
            out[d.key] = _number(value, d.label, form_key)
        elif d.field_type == "date":
            out[d.key] = _date(value, d.label, form_key)
        elif d.field_type == "select":
            if str(value) not in d.options:
                raise CustomerError(_("%(field)s: choose from the list.", field=d.label), form_key)
            out[d.key] = str(value)
        elif d.field_type == "multi_select":
            values = value if isinstance(value, list | tuple) else [value]
            picked = [str(v) for v in values if str(v).strip()]
            if any(v not in d.options for v in picked):
                raise CustomerError(_("%(field)s: choose from the list.", field=d.label), form_key)
            out[d.key] = [o for o in d.options if o in picked]  # in the definition's order
    return out


def shown(d: CustomField, value: Any) -> str:
    """A stored value as a person reads it."""
    if value is None:
        return ""
    if d.field_type == "checkbox":
        return _("Yes") if value else _("No")
    if d.field_type == "multi_select" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if d.field_type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return format_decimal(value)
    return str(value)
