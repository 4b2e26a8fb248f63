"""Companies and contacts: create, update, delete, lifecycle stage (no request in here).

Every function takes the Viewer whose visibility applies; reads go through
`get_company` / `get_contact`, which find only records of the bound tenant that
the viewer may see (anything else is NotFound, which pages show as 404).
Values arrive as plain Python (a dict from a form, an API body or an import
row) and are checked here, with messages that name the field.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import g, has_request_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select

from saas import audit, mail
from saas.extensions import db
from saas.tenancy import require_tenant
from tenants.customers import fields as custom_fields
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.models import STAGES, Activity, Company, Contact, LifecycleChange, Task
from tenants.customers.people import Viewer, is_active_member
from tenants.customers.visibility import visible

STAGE_LABELS: dict[str, Any] = {
    "lead": _l("Lead"),
    "prospect": _l("Prospect"),
    "customer": _l("Customer"),
    "loyal": _l("Loyal"),
    "churned": _l("Churned"),
}
SIZES = ("1-10", "11-50", "51-200", "201-1000", "1001+")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ().\-/]{1,38}(\s*(x|ext\.?)\s*[0-9]{1,6})?$", re.IGNORECASE)
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
MAX_TAGS = 30
MAX_LONG_TEXT = 5000

COMPANY_TEXT = {
    "industry": 120,
    "source": 120,
    "street": 300,
    "city": 120,
    "region": 120,
    "postal_code": 20,
    "country": 120,
}
CONTACT_TEXT = {**COMPANY_TEXT, "job_title": 120}
del CONTACT_TEXT["industry"]


def now() -> datetime:
    return datetime.now(UTC)


# Checking values ---------------------------------------------------------------------


def _text(value: Any, field: str, limit: int, label: Any, required: bool = False) -> str:
    text = CONTROL_RE.sub("", str(value or "")).strip()
    if required and not text:
        raise CustomerError(_("%(field)s is required.", field=label), field)
    if len(text) > limit:
        raise CustomerError(_("%(field)s can be at most %(n)d characters long.", field=label, n=limit), field)
    return text


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[\n,;]", value)
    return [str(v).strip() for v in value if str(v).strip()]


def clean_phones(value: Any, field: str = "phones") -> list[str]:
    phones: list[str] = []
    for phone in _list(value):
        phone = re.sub(r"\s+", " ", phone)
        if not PHONE_RE.match(phone):
            raise CustomerError(
                _(
                    "%(phone)s is not a phone number: use digits, spaces, + ( ) - . / and an extension.",
                    phone=phone,
                ),
                field,
            )
        if phone not in phones:
            phones.append(phone)
    if len(phones) > 10:
        raise CustomerError(_("At most 10 phone numbers."), field)
    return phones


def clean_tags(value: Any) -> list[str]:
    tags: dict[str, str] = {}
    for tag in _list(value):
        tag = CONTROL_RE.sub("", tag)
        if len(tag) > 40:
            raise CustomerError(_("A tag can be at most 40 characters long."), "tags")
        tags.setdefault(tag.lower(), tag)
    if len(tags) > MAX_TAGS:
        raise CustomerError(_("At most %(n)d tags.", n=MAX_TAGS), "tags")
    return list(tags.values())


def clean_email(value: Any, field: str = "email") -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        raise CustomerError(_("%(email)s is not an email address.", email=text[:100]), field) from None
    return result.normalized.lower()


def clean_website(value: Any) -> tuple[str, str | None]:
    """(website, domain): a bare host gets https://; only http and https addresses are kept."""
    text = str(value or "").strip()
    if not text:
        return "", None
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
    except ValueError:
        host, parts = "", None
    if parts is None or parts.scheme.lower() not in ("http", "https") or "." not in host or " " in text:
        raise CustomerError(_("Enter a web address such as example.com."), "website")
    if len(text) > 300:
        raise CustomerError(_("The web address can be at most 300 characters long."), "website")
    domain = host[4:] if host.startswith("www.") else host
    return text, domain


def _stage(value: Any, default: str | None = "lead") -> str:
    stage = str(value) if value else default
    if stage not in STAGES:
        raise CustomerError(_("Choose a lifecycle stage from the list."), "lifecycle_stage")
    return stage


def _owner(value: Any, default: int | None) -> int | None:
    if value in (None, ""):
        return None if value == "" else default
    try:
        owner = int(value)
    except (TypeError, ValueError):
        raise CustomerError(_("Choose an owner from the list."), "owner_id") from None
    if owner != default and not is_active_member(owner):  # keeping a departed owner is no change
        raise CustomerError(_("Choose an owner from the list."), "owner_id")
    return owner


def full_name(first: str, last: str) -> str:
    """Chinese, Japanese and Korean names read family name first, without a space."""
    if CJK_RE.search(first + last):
        return f"{last}{first}"
    return f"{first} {last}".strip()


# Lifecycle ---------------------------------------------------------------------------


def _record_stage(viewer: Viewer, record: Company | Contact, before: str | None, after: str) -> None:
    record_type = "company" if isinstance(record, Company) else "contact"
    when = now()
    db.session.add(
        LifecycleChange(
            record_type=record_type,
            record_id=record.id,
            from_stage=before,
            to_stage=after,
            at=when,
            by_user_id=viewer.user_id,
        )
    )
    db.session.add(
        Activity(
            kind="stage_change",
            subject="",
            occurred_at=when,
            company_id=record.id if record_type == "company" else None,
            contact_id=record.id if record_type == "contact" else None,
            user_id=viewer.user_id,
            meta={"from": before, "to": after},
        )
    )


def set_stage(viewer: Viewer, record: Company | Contact, stage: str) -> bool:
    """Move a record to another lifecycle stage, in history and timeline; False if it is there already."""
    stage = _stage(stage, None)
    if record.lifecycle_stage == stage:
        return False
    before = record.lifecycle_stage
    record.lifecycle_stage = stage
    _record_stage(viewer, record, before, stage)
    return True


def change_stage(viewer: Viewer, record_type: str, record_id: int, stage: str) -> Company | Contact:
    record = get_record(viewer, record_type, record_id)
    set_stage(viewer, record, stage)
    db.session.commit()
    return record


def stage_history(record_type: str, record_id: int) -> list[LifecycleChange]:
    return list(
        db.session.scalars(
            select(LifecycleChange)
            .where(LifecycleChange.record_type == record_type, LifecycleChange.record_id == record_id)
            .order_by(LifecycleChange.at.desc(), LifecycleChange.id.desc())
        )
    )


# Reading -----------------------------------------------------------------------------


def get_company(viewer: Viewer, company_id: int) -> Company:
    company = db.session.scalar(select(Company).where(Company.id == company_id, visible(viewer, Company)))
    if company is None:
        raise NotFound(company_id)
    return company


def get_contact(viewer: Viewer, contact_id: int) -> Contact:
    contact = db.session.scalar(select(Contact).where(Contact.id == contact_id, visible(viewer, Contact)))
    if contact is None:
        raise NotFound(contact_id)
    return contact


def get_record(viewer: Viewer, record_type: str, record_id: int) -> Company | Contact:
    if record_type == "company":
        return get_company(viewer, record_id)
    if record_type == "contact":
        return get_contact(viewer, record_id)
    raise NotFound(record_id)


def company_contacts(viewer: Viewer, company_id: int, limit: int = 50) -> list[Contact]:
    return list(
        db.session.scalars(
            select(Contact)
            .where(Contact.company_id == company_id, visible(viewer, Contact))
            .order_by(func.lower(Contact.full_name), Contact.id)
            .limit(limit)
        )
    )


def contact_names(viewer: Viewer, contact_ids: set[int]) -> dict[int, str]:
    """Names of those of these contacts the viewer may see (for a company's timeline)."""
    if not contact_ids:
        return {}
    stmt = select(Contact.id, Contact.full_name).where(Contact.id.in_(contact_ids), visible(viewer, Contact))
    return {cid: name for cid, name in db.session.execute(stmt)}


def count_company_contacts(viewer: Viewer, company_id: int) -> int:
    """Counted once per request: a company's 360 page shows it twice (key figure, contacts panel)."""
    key = (require_tenant().id, viewer, company_id)
    counted = g.setdefault("_company_contact_counts", {}) if has_request_context() else {}
    if key not in counted:
        counted[key] = db.session.scalar(
            select(func.count()).where(Contact.company_id == company_id, visible(viewer, Contact))
        )
    return counted[key]


def find_companies_by_name(viewer: Viewer, name: str, limit: int = 10) -> list[Company]:
    """Visible companies whose name starts with `name` (for the contact form's company box)."""
    text = (name or "").strip().lower()
    if not text:
        return []
    return list(
        db.session.scalars(
            select(Company)
            .where(func.lower(Company.name).startswith(text, autoescape=True), visible(viewer, Company))
            .order_by(func.lower(Company.name), Company.id)
            .limit(limit)
        )
    )


def resolve_company(viewer: Viewer, company_id: Any = None, name: str = "") -> int | None:
    """The company a contact is linked to: an id the viewer may see, or one visible company of that name."""
    if company_id not in (None, ""):
        try:
            return get_company(viewer, int(company_id)).id
        except (NotFound, TypeError, ValueError):
            raise CustomerError(_("Choose a company from the list."), "company") from None
    name = (name or "").strip()
    if not name:
        return None
    found = list(
        db.session.scalars(
            select(Company.id)
            .where(func.lower(Company.name) == name.lower(), visible(viewer, Company))
            .limit(2)
        )
    )
    if not found:
        raise CustomerError(_("No company is called %(name)s. Add it first.", name=name[:100]), "company")
    if len(found) > 1:
        raise CustomerError(
            _(
                "Several companies are called %(name)s: open the right one and add the contact there.",
                name=name[:100],
            ),
            "company",
        )
    return found[0]


# Companies ---------------------------------------------------------------------------


def _company_values(viewer: Viewer, data: dict[str, Any], company: Company | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if company is None or "name" in data:
        values["name"] = _text(data.get("name"), "name", 200, _("Name"), required=True)
    labels = {
        "industry": _("Industry"),
        "source": _("Source"),
        "street": _("Street"),
        "city": _("City"),
        "region": _("Region"),
        "postal_code": _("Postal code"),
        "country": _("Country"),
    }
    for key, limit in COMPANY_TEXT.items():
        if key in data:
            values[key] = _text(data.get(key), key, limit, labels[key])
    if "size" in data:
        size = str(data.get("size") or "")
        if size and size not in SIZES:
            raise CustomerError(_("Choose a size from the list."), "size")
        values["size"] = size
    if "website" in data:
        values["website"], values["domain"] = clean_website(data.get("website"))
    if "phones" in data:
        values["phones"] = clean_phones(data.get("phones"))
    if "tags" in data:
        values["tags"] = clean_tags(data.get("tags"))
    if company is None or "owner_id" in data:
        values["owner_id"] = _owner(
            data.get("owner_id"), viewer.user_id if company is None else company.owner_id
        )
    if "custom" in data:
        defs = custom_fields.definitions("company")
        values["custom"] = custom_fields.clean_values(
            defs, data["custom"] or {}, company.custom if company else {}
        )
    return values


def _create(viewer: Viewer, model: type, values: dict[str, Any], data: dict[str, Any]) -> Any:
    """Insert a company or contact with its first stage recorded (search columns: by the ORM event)."""
    stage = _stage(data.get("lifecycle_stage"))
    record = model(**values, lifecycle_stage=stage, created_by=viewer.user_id)
    db.session.add(record)
    db.session.flush()
    _record_stage(viewer, record, None, stage)
    db.session.commit()
    return record


def _update(viewer: Viewer, record: Any, values: dict[str, Any], data: dict[str, Any]) -> Any:
    """Write cleaned values into a company or contact (its search columns follow by the ORM event)."""
    stage = _stage(data["lifecycle_stage"], None) if data.get("lifecycle_stage") else None
    for key, value in values.items():
        setattr(record, key, value)
    if stage:
        set_stage(viewer, record, stage)
    db.session.commit()
    return record


def create_company(viewer: Viewer, data: dict[str, Any]) -> Company:
    return _create(viewer, Company, _company_values(viewer, data, None), data)


def update_company(viewer: Viewer, company_id: int, data: dict[str, Any]) -> Company:
    company = get_company(viewer, company_id)
    return _update(viewer, company, _company_values(viewer, data, company), data)


# (own, other) column of a timeline entry or task: one about this record and neither the other kind
# of record belongs to this record alone and goes with it; one about both stays with the other.
_OWN_COLUMNS = {"company": ("company_id", "contact_id"), "contact": ("contact_id", "company_id")}


def delete_records(record_type: str, records: list[Any]) -> None:
    """The one way companies and contacts are deleted: the pages, the API and bulk delete all come here.

    With each record go the timeline entries, tasks and stage history that were about it alone (one
    audit event per record counts them) and its search data; the database cuts the links of what
    stays (ON DELETE SET NULL: a contact keeps existing without its company). The records themselves
    are deleted through the ORM, so the audit hook logs each one with all its values. A few
    statements for any number of records. The caller checks visibility first and commits.
    Attachments stay, rows and files, until attachments.purge_deleted_records (hourly) finds the
    record gone for good: nothing is deleted from storage before the commit, and a bulk undo finds
    them where they were.
    """
    ids = [r.id for r in records]
    if not ids:
        return
    col, other = _OWN_COLUMNS[record_type]
    # Emails of its own timeline that have not gone out yet stop with the record.
    unsent = db.session.scalars(
        select(Activity.outbox_id).where(
            getattr(Activity, col).in_(ids),
            getattr(Activity, other).is_(None),
            Activity.outbox_id.is_not(None),
        )
    ).all()
    mail.cancel(list(unsent), require_tenant().id)
    counts: dict[int, list[int]] = {i: [0, 0, 0] for i in ids}
    for n, model in enumerate((Activity, Task)):
        own = getattr(model, col)
        gone = db.session.scalars(
            delete(model).where(own.in_(ids), getattr(model, other).is_(None)).returning(own)
        )
        for record_id in gone:
            counts[record_id][n] += 1
    gone = db.session.scalars(
        delete(LifecycleChange)
        .where(LifecycleChange.record_type == record_type, LifecycleChange.record_id.in_(ids))
        .returning(LifecycleChange.record_id)
    )
    for record_id in gone:
        counts[record_id][2] += 1
    audit.record_many(
        "delete_related",
        "companies" if record_type == "company" else "contacts",
        [
            (record_id, f"{entries} timeline entries, {todo} tasks, {history} stage changes")
            for record_id, (entries, todo, history) in counts.items()
        ],
    )
    for record in records:
        db.session.delete(record)
    db.session.flush()


def delete_company(viewer: Viewer, company_id: int) -> None:
    """Delete a company with the timeline entries and tasks that were about it alone.

    Its contacts stay (without a company); a call logged with one of them stays on that contact.
    """
    delete_records("company", [get_company(viewer, company_id)])
    db.session.commit()


# Contacts ----------------------------------------------------------------------------


def _consent(data: dict[str, Any], contact: Contact | None, channel: str, values: dict[str, Any]) -> None:
    flag, at, how = f"consent_{channel}", f"consent_{channel}_at", f"consent_{channel}_how"
    if flag not in data and how not in data:
        return
    given = bool(data.get(flag, getattr(contact, flag, False)))
    how_text = _text(data.get(how, getattr(contact, how, "")), how, 200, _("How consent was given"))
    before = bool(getattr(contact, flag, False)) if contact else False
    if given and not how_text:
        raise CustomerError(_("Say how consent was given (a web form, a call, a signed paper...)."), how)
    values[flag], values[how] = given, how_text
    if contact is None or given != before:
        when = data.get(at)
        values[at] = when if isinstance(when, datetime) else now()
        if contact is None and not given:
            values[at] = None


def _birthday(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        try:
            value = date.fromisoformat(str(value).strip())
        except ValueError:
            raise CustomerError(_("Enter the birthday as YYYY-MM-DD."), "birthday") from None
    if value.year < 1900 or value > date.today():
        raise CustomerError(_("That birthday cannot be right."), "birthday")
    return value


def _contact_values(viewer: Viewer, data: dict[str, Any], contact: Contact | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    first = (
        _text(data.get("first_name"), "first_name", 100, _("First name"))
        if "first_name" in data
        else (contact.first_name if contact else "")
    )
    last = (
        _text(data.get("last_name"), "last_name", 100, _("Last name"))
        if "last_name" in data
        else (contact.last_name if contact else "")
    )
    if not first and not last:
        raise CustomerError(_("Enter a first or a last name."), "first_name")
    values.update(first_name=first, last_name=last, full_name=full_name(first, last))
    labels = {
        "job_title": _("Job title"),
        "source": _("Source"),
        "street": _("Street"),
        "city": _("City"),
        "region": _("Region"),
        "postal_code": _("Postal code"),
        "country": _("Country"),
    }
    for key, limit in CONTACT_TEXT.items():
        if key in data:
            values[key] = _text(data.get(key), key, limit, labels[key])
    for key, label in (("interests", _("Interests")), ("preferences", _("Preferences"))):
        if key in data:
            values[key] = _text(data.get(key), key, MAX_LONG_TEXT, label)
    if "email" in data:
        values["email"] = clean_email(data.get("email"))
    if "emails" in data:
        extra = [clean_email(e, "emails") for e in _list(data.get("emails"))]
        primary = values.get("email", contact.email if contact else None)
        values["emails"] = list(dict.fromkeys(e for e in extra if e and e != primary))
        if len(values["emails"]) > 10:
            raise CustomerError(_("At most 10 further email addresses."), "emails")
    if "phones" in data:
        values["phones"] = clean_phones(data.get("phones"))
    if "birthday" in data:
        values["birthday"] = _birthday(data.get("birthday"))
    if "tags" in data:
        values["tags"] = clean_tags(data.get("tags"))
    if "company_id" in data or "company" in data:
        values["company_id"] = resolve_company(viewer, data.get("company_id"), data.get("company") or "")
    if contact is None or "owner_id" in data:
        values["owner_id"] = _owner(
            data.get("owner_id"), viewer.user_id if contact is None else contact.owner_id
        )
    _consent(data, contact, "email", values)
    _consent(data, contact, "sms", values)
    if "custom" in data:
        defs = custom_fields.definitions("contact")
        values["custom"] = custom_fields.clean_values(
            defs, data["custom"] or {}, contact.custom if contact else {}
        )
    return values


def create_contact(viewer: Viewer, data: dict[str, Any]) -> Contact:
    return _create(viewer, Contact, _contact_values(viewer, data, None), data)


def update_contact(viewer: Viewer, contact_id: int, data: dict[str, Any]) -> Contact:
    contact = get_contact(viewer, contact_id)
    return _update(viewer, contact, _contact_values(viewer, data, contact), data)


def delete_contact(viewer: Viewer, contact_id: int) -> None:
    """Delete a contact with what was about it alone; an entry also about its company stays there."""
    delete_records("contact", [get_contact(viewer, contact_id)])
    db.session.commit()
