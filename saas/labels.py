"""Words for codes stored in the database: audit actions, record types and fields, record visibility.

Codes stay in the database as they are (stable, filterable, language-free); the pages show these labels.
A code with no label here is shown as it is, so a module adding a new action never breaks a page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import format_datetime, lazy_pgettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

# Which records a role sees (applied in queries): Role.visibility / RoleDef.visibility.
VISIBILITY: dict[str, Any] = {
    "own": _l("Their own records"),
    "team": _l("Their team's records"),
    "all": _l("All records"),
}

# AuditEvent.action: the session hook's insert/update/delete, plus explicit events (audit.record).
# Context "audit": "Created" here is what someone did, not a "Created" date column elsewhere.
AUDIT_ACTIONS: dict[str, Any] = {
    "insert": lazy_pgettext("audit", "Created"),
    "update": lazy_pgettext("audit", "Changed"),
    "delete": lazy_pgettext("audit", "Deleted"),
    "signin": lazy_pgettext("audit", "Signed in"),
    "signin_failed": lazy_pgettext("audit", "Failed sign-in"),
    "password_reset_requested": lazy_pgettext("audit", "Asked for a password reset"),
    "password_reset": lazy_pgettext("audit", "Reset the password"),
    "workspace_created": lazy_pgettext("audit", "Created the workspace"),
    "invite": lazy_pgettext("audit", "Invited"),
    "invite_revoked": lazy_pgettext("audit", "Withdrew an invitation"),
    "invite_accepted": lazy_pgettext("audit", "Accepted an invitation"),
    "role_change": lazy_pgettext("audit", "Changed a role"),
    "deactivate": lazy_pgettext("audit", "Removed access"),
    "reactivate": lazy_pgettext("audit", "Restored access"),
    "workspace_suspended": lazy_pgettext("audit", "Suspended the workspace"),
    "workspace_reactivated": lazy_pgettext("audit", "Reactivated the workspace"),
    "rotate_keys": lazy_pgettext("audit", "Re-encrypted sensitive values"),
}

# AuditEvent.entity: explicit events name a kind of record, the session hook a table name.
AUDIT_ENTITIES: dict[str, Any] = {
    "tenant": _l("Workspace"),
    "settings": _l("Workspace settings"),
    "user": _l("Account"),
    "membership": _l("Member"),
    "invitation": _l("Invitation"),
    "roles": _l("Custom role"),
    # tenants/customers
    "companies": _l("Company"),
    "contacts": _l("Contact"),
    "lifecycle_changes": _l("Stage change"),
    "custom_fields": _l("Custom field"),
    "activities": _l("Timeline entry"),
    "tasks": _l("Task"),
    "teams": _l("Team"),
    "team_members": _l("Team member"),
}

# Keys of AuditEvent.changes: column names.
AUDIT_FIELDS: dict[str, Any] = {
    "id": _l("ID"),
    "name": _l("Name"),
    "email": _l("Email"),
    "role": _l("Role"),
    "is_active": _l("Active"),
    "description": _l("Description"),
    "visibility": _l("Records this role sees"),
    "permissions": _l("Permissions"),
    "timezone": _l("Time zone"),
    "currency": _l("Currency"),
    "created_at": _l("Created at"),
    # tenants/customers
    "full_name": _l("Name"),
    "first_name": _l("First name"),
    "last_name": _l("Last name"),
    "job_title": _l("Job title"),
    "company_id": _l("Company"),
    "owner_id": _l("Owner"),
    "assignee_id": _l("Assigned to"),
    "lifecycle_stage": _l("Lifecycle stage"),
    "to_stage": _l("Stage"),
    "industry": _l("Industry"),
    "size": _l("Size"),
    "website": _l("Website"),
    "street": _l("Street"),
    "city": _l("City"),
    "region": _l("Region"),
    "postal_code": _l("Postal code"),
    "country": _l("Country"),
    "source": _l("Source"),
    "tags": _l("Tags"),
    "phones": _l("Phones"),
    "emails": _l("Other email addresses"),
    "interests": _l("Interests"),
    "preferences": _l("Preferences"),
    "consent_email": _l("Agrees to marketing by email"),
    "consent_email_how": _l("How they agreed (email)"),
    "consent_sms": _l("Agrees to marketing by SMS"),
    "consent_sms_how": _l("How they agreed (SMS)"),
    "kind": _l("Kind"),
    "subject": _l("Subject"),
    "body": _l("Text"),
    "occurred_at": _l("When"),
    "title": _l("Title"),
    "notes": _l("Notes"),
    "due_at": _l("Due"),
    "label": _l("Name"),
    "key": _l("Key"),
    "field_type": _l("Type"),
    "options": _l("Choices"),
    "position": _l("Position"),
    "record_type": _l("For"),
    "sensitive": _l("Sensitive"),
    "custom": _l("Custom fields"),
    "status": _l("Status"),
    "updated_at": _l("Updated"),
}

# AuditEvent.summary values written by the platform itself (stored in English, shown translated).
AUDIT_SUMMARIES: dict[str, Any] = {
    "Wrong password": _l("Wrong password"),
}


def audit_action(code: str) -> str:
    return str(AUDIT_ACTIONS.get(code, code))


def audit_entity(code: str) -> str:
    return str(AUDIT_ENTITIES.get(code, code))


def audit_field(code: str) -> str:
    return str(AUDIT_FIELDS.get(code, code))


def audit_summary(text: str) -> str:
    return str(AUDIT_SUMMARIES.get(text, text))


def audit_value(field: str, value: Any) -> str:
    """One side of a before/after pair, in words where the code has some."""
    if value is None:
        return "∅"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if field == "role" and isinstance(value, str):
        from saas.permissions import role_for

        try:
            name = role_for(value).name
        except ValueError:  # a malformed "custom:<id>"
            return value
        return value if name == "?" else str(name)
    if field == "visibility" and isinstance(value, str) and value in VISIBILITY:
        return str(VISIBILITY[value])
    if (
        field == "permissions"
        and isinstance(value, dict)
        and all(isinstance(a, list) for a in value.values())
    ):
        from saas.permissions import ACTIONS, MODULES

        return "; ".join(
            f"{MODULES.get(m, m)}: {', '.join(str(ACTIONS.get(a, a)) for a in actions)}"
            for m, actions in value.items()
        )
    if field == "custom" and isinstance(value, dict):
        # A sensitive field's value is sealed ({"enc": token, "bi": index}): say so, show no token.
        sealed = _("(encrypted)")
        return "; ".join(
            f"{k}: {sealed if isinstance(v, dict) and 'enc' in v else v}" for k, v in value.items()
        )
    if field.endswith("_at") and isinstance(value, str):
        try:
            return format_datetime(datetime.fromisoformat(value), "short")
        except ValueError:
            return value
    return str(value)


def visibility(code: str) -> str:
    return str(VISIBILITY.get(code, code))
