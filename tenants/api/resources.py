"""The one description of the API's resources: their fields, operations and permissions.

Routes (tenants.api.views), request checking, JSON output and the OpenAPI document
(tenants.api.openapi) are all made from RESOURCES; the work itself is done by the
Customer 360 services, with the caller's Viewer, exactly as the pages do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from tenants import listing as generic_listing
from tenants.customers import listing, people, services, tasks, timeline
from tenants.customers.errors import CustomerError
from tenants.customers.fields import plain_values
from tenants.customers.models import ACTIVITY_KINDS, STAGES
from tenants.customers.people import Viewer
from tenants.customers.sanitize import plain_text

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
OPT_INT: dict[str, Any] = {"type": ["integer", "null"]}
OPT_STR: dict[str, Any] = {"type": ["string", "null"]}
DATETIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
STR_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
STAGE: dict[str, Any] = {"type": "string", "enum": list(STAGES)}
CUSTOM: dict[str, Any] = {
    "type": "object",
    "description": (
        "Custom field values by key (see the workspace's custom fields). Values of sensitive fields are "
        "stored encrypted; their filter cf_<key> matches the exact value only (case, spaces and "
        "punctuation aside)."
    ),
}


@dataclass(frozen=True)
class Prop:
    """One field of a resource.

    write: "no" (read only), "yes" (create and update), "create" (create only).
    get: how to read it from the record (default: the attribute of the same name).
    """

    name: str
    schema: dict[str, Any]
    write: str = "yes"
    required: bool = False
    get: Callable[[Any], Any] | None = None
    description: str = ""

    def read(self, record: Any) -> Any:
        return self.get(record) if self.get else getattr(record, self.name)


@dataclass(frozen=True)
class Param:
    """A query parameter of a list."""

    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass
class Resource:
    name: str  # URL segment, e.g. "companies"
    title: str  # schema name, e.g. "Company"
    props: list[Prop]
    list: Callable[[Viewer, Mapping[str, Any]], generic_listing.Page]
    get: Callable[[Viewer, int], Any]
    create: Callable[[Viewer, dict[str, Any]], Any]
    update: Callable[[Viewer, int, dict[str, Any]], Any] | None
    delete: Callable[[Viewer, int], Any]
    list_params: Callable[[], list[Param]]
    # operation -> (permission module, action), as the HTML pages require them
    permissions: dict[str, tuple[str, str]] = field(default_factory=dict)
    description: str = ""

    @property
    def operations(self) -> list[str]:
        ops = ["list", "get", "create", "delete"]
        return [*ops[:3], "update", ops[3]] if self.update else ops

    def to_json(self, record: Any) -> dict[str, Any]:
        return {p.name: p.read(record) for p in self.props}

    def writable(self, operation: str) -> dict[str, Prop]:
        allowed = ("yes", "create") if operation == "create" else ("yes",)
        return {p.name: p for p in self.props if p.write in allowed}


# Lists ----------------------------------------------------------------------------------------

COMMON_PARAMS = [
    Param("sort", STR, "A field to sort on; '-' before it sorts descending."),
    Param("after", STR, "The next_cursor of the previous page."),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": generic_listing.MAX_PAGE_SIZE}, "Page size."),
]
KIND_SCHEMAS = {
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "ref": {"type": "integer"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date"},
}


def spec_params(spec: generic_listing.ListSpec, extra: list[Param] | None = None) -> list[Param]:
    """Query parameters of a list helper spec: each field with each of its operators."""
    params = list(extra or [])
    for fld in spec.fields:
        if not fld.filterable:
            continue
        for op in fld.ops:
            name = fld.key if op == fld.default_op else f"{fld.key}__{op}"
            schema = dict(KIND_SCHEMAS.get(fld.kind, STR))
            if fld.choices and fld.kind == "choice":
                schema = {"type": "string", "enum": [str(k) for k, _v in fld.choices]}
            if op in generic_listing.NO_VALUE_OPS:
                schema = {"type": "string", "enum": ["1"]}
            params.append(Param(name, schema, f"{fld.label} {generic_listing.OPS[op]}"))
    return [*params, *COMMON_PARAMS]


def _owners() -> list[tuple[str, str]]:
    return people.owner_choices()[1:]


def _list_companies(viewer: Viewer, args: Mapping[str, Any]) -> generic_listing.Page:
    return listing.companies_page(viewer, listing.company_spec(_owners()), args)


def _list_contacts(viewer: Viewer, args: Mapping[str, Any]) -> generic_listing.Page:
    return listing.contacts_page(viewer, listing.contact_spec(_owners()), args)


def _record_arg(args: Mapping[str, Any]) -> tuple[str, int]:
    for record_type in ("contact", "company"):
        raw = str(args.get(f"{record_type}_id") or "")
        if raw:
            if not raw.isdigit():
                raise CustomerError(_("Give the id as a number."), f"{record_type}_id")
            return record_type, int(raw)
    raise CustomerError(_("Give company_id or contact_id: a timeline belongs to a record."), "company_id")


def _list_activities(viewer: Viewer, args: Mapping[str, Any]) -> generic_listing.Page:
    record_type, record_id = _record_arg(args)
    return timeline.timeline(viewer, record_type, record_id, args)


def _list_tasks(viewer: Viewer, args: Mapping[str, Any]) -> generic_listing.Page:
    status = str(args.get("status") or "open")
    if status not in ("open", "done"):
        raise CustomerError(_("Choose open or done."), "status")
    return tasks.my_tasks(viewer, status, args)


# Writes that need more than one service call ---------------------------------------------------


def _create_activity(viewer: Viewer, data: dict[str, Any]) -> Any:
    if data.get("contact_id") is not None:
        record_type, record_id = "contact", data["contact_id"]
    elif data.get("company_id") is not None:
        record_type, record_id = "company", data["company_id"]
    else:
        raise CustomerError(_("Give company_id or contact_id: an entry belongs to a record."), "company_id")
    return timeline.log_activity(
        viewer,
        record_type,
        int(record_id),
        str(data.get("kind") or ""),
        subject=data.get("subject") or "",
        body=data.get("body") or "",
        occurred_at=data.get("occurred_at"),
        meta=data.get("meta") or {},
    )


def _create_task(viewer: Viewer, data: dict[str, Any]) -> Any:
    values = {k: v for k, v in data.items() if k not in ("company_id", "contact_id", "done")}
    task = tasks.create_task(
        viewer, values, company_id=data.get("company_id"), contact_id=data.get("contact_id")
    )
    if data.get("done"):
        task = tasks.set_done(viewer, task.id, True)
    return task


def _update_task(viewer: Viewer, task_id: int, data: dict[str, Any]) -> Any:
    values = {k: v for k, v in data.items() if k != "done"}
    task = tasks.update_task(viewer, task_id, values) if values else tasks.get_task(viewer, task_id)
    if "done" in data:
        task = tasks.set_done(viewer, task_id, bool(data["done"]))
    return task


# The resources ---------------------------------------------------------------------------------

ADDRESS = [Prop(n, STR) for n in ("street", "city", "region", "postal_code", "country")]
STAMPS = [
    Prop("created_by", OPT_INT, "no"),
    Prop("created_at", DATETIME, "no"),
    Prop("updated_at", DATETIME, "no"),
]
VIEW, CREATE, EDIT, DELETE = (
    ("customers", "view"),
    ("customers", "create"),
    ("customers", "edit"),
    ("customers", "delete"),
)

COMPANIES = Resource(
    name="companies",
    title="Company",
    description="Companies of the workspace that the token's user may see.",
    props=[
        Prop("id", INT, "no"),
        Prop("name", STR, required=True),
        Prop("industry", STR),
        Prop("size", {"type": "string", "enum": ["", *services.SIZES]}),
        Prop("website", STR),
        Prop("domain", {"type": ["string", "null"]}, "no"),
        Prop("phones", STR_LIST),
        Prop("owner_id", OPT_INT, description="A member's user id; null for nobody."),
        Prop("tags", STR_LIST),
        Prop("source", STR),
        Prop("lifecycle_stage", STAGE),
        *ADDRESS,
        Prop("custom", CUSTOM, get=lambda r: plain_values(r.custom)),
        *STAMPS,
    ],
    list=_list_companies,
    get=services.get_company,
    create=services.create_company,
    update=services.update_company,
    delete=services.delete_company,
    list_params=lambda: spec_params(listing.company_spec([], [])),
    permissions={"list": VIEW, "get": VIEW, "create": CREATE, "update": EDIT, "delete": DELETE},
)

CONTACTS = Resource(
    name="contacts",
    title="Contact",
    description="Contacts of the workspace that the token's user may see.",
    props=[
        Prop("id", INT, "no"),
        Prop("first_name", STR, description="A first or a last name is required."),
        Prop("last_name", STR),
        Prop("full_name", STR, "no"),
        Prop("company_id", OPT_INT, description="A company the user may see; null for none."),
        Prop("job_title", STR),
        Prop("email", {"type": ["string", "null"], "format": "email"}),
        Prop("emails", STR_LIST),
        Prop("phones", STR_LIST),
        Prop("birthday", {"type": ["string", "null"], "format": "date"}),
        Prop("interests", STR),
        Prop("preferences", STR),
        Prop("consent_email", BOOL),
        Prop("consent_email_at", DATETIME, "no"),
        Prop("consent_email_how", STR),
        Prop("consent_sms", BOOL),
        Prop("consent_sms_at", DATETIME, "no"),
        Prop("consent_sms_how", STR),
        Prop("owner_id", OPT_INT, description="A member's user id; null for nobody."),
        Prop("tags", STR_LIST),
        Prop("source", STR),
        Prop("lifecycle_stage", STAGE),
        *ADDRESS,
        Prop("custom", CUSTOM, get=lambda r: plain_values(r.custom)),
        *STAMPS,
    ],
    list=_list_contacts,
    get=services.get_contact,
    create=services.create_contact,
    update=services.update_contact,
    delete=services.delete_contact,
    list_params=lambda: spec_params(listing.contact_spec([], [])),
    permissions={"list": VIEW, "get": VIEW, "create": CREATE, "update": EDIT, "delete": DELETE},
)

ACTIVITIES = Resource(
    name="activities",
    title="Activity",
    description=(
        "Timeline entries of a company or contact the user may see. Entries are history: "
        "they are logged and deleted, not changed; stage changes are written by the records themselves."
    ),
    props=[
        Prop("id", INT, "no"),
        Prop(
            "kind",
            {"type": "string", "enum": list(ACTIVITY_KINDS)},
            "create",
            True,
            description="note, call or meeting when logged through the API.",
        ),
        Prop("subject", STR, "create"),
        Prop("body", STR, "create", description="Plain text, or formatted text as HTML (sanitised)."),
        Prop("body_text", STR, "no", get=lambda a: plain_text(a.body), description="The body as plain text."),
        Prop("occurred_at", DATETIME, "create"),
        Prop("company_id", OPT_INT, "create"),
        Prop("contact_id", OPT_INT, "create"),
        Prop("user_id", OPT_INT, "no"),
        Prop(
            "meta", {"type": "object", "description": "duration_min, direction (in/out) of calls."}, "create"
        ),
        Prop("email_to", OPT_STR, "no", description="Emails sent from the CRM: the recipient's address."),
        Prop(
            "email_status",
            {"type": ["string", "null"], "enum": ["queued", "retrying", "sent", "failed", None]},
            "no",
            description="Emails sent from the CRM: queued, retrying, sent or failed (the send job's word).",
        ),
        Prop("created_at", DATETIME, "no"),
    ],
    list=_list_activities,
    get=timeline.get_activity,
    create=_create_activity,
    update=None,
    delete=timeline.delete_activity,
    list_params=lambda: [
        Param("company_id", INT, "The company whose timeline to list (this or contact_id)."),
        Param("contact_id", INT, "The contact whose timeline to list."),
        *spec_params(timeline.TIMELINE_SPEC),
    ],
    # As on the pages: logging and deleting an entry is editing the record.
    permissions={"list": VIEW, "get": VIEW, "create": EDIT, "delete": EDIT},
)

TASKS = Resource(
    name="tasks",
    title="Task",
    description="Tasks: the list is the user's own (assigned to them); any task they may see can be read.",
    props=[
        Prop("id", INT, "no"),
        Prop("title", STR, required=True),
        Prop("notes", STR),
        Prop("due_at", DATETIME),
        Prop("reminder_at", DATETIME),
        Prop("assignee_id", OPT_INT, description="A member's user id; the caller when left out."),
        Prop("company_id", OPT_INT, "create"),
        Prop("contact_id", OPT_INT, "create"),
        Prop("done", BOOL, get=lambda t: t.done_at is not None),
        Prop("done_at", DATETIME, "no"),
        *STAMPS,
    ],
    list=_list_tasks,
    get=tasks.get_task,
    create=_create_task,
    update=_update_task,
    delete=tasks.delete_task,
    list_params=lambda: [
        Param("status", {"type": "string", "enum": ["open", "done"]}, "Open tasks (default) or done ones."),
        *spec_params(tasks.MY_TASKS_SPEC),
    ],
    # As on the pages: tasks are part of editing a record.
    permissions={"list": VIEW, "get": VIEW, "create": EDIT, "update": EDIT, "delete": EDIT},
)

RESOURCES: list[Resource] = [COMPANIES, CONTACTS, ACTIVITIES, TASKS]
BY_NAME = {r.name: r for r in RESOURCES}

METHODS = {"list": "GET", "get": "GET", "create": "POST", "update": "PATCH", "delete": "DELETE"}


def routes() -> list[tuple[Resource, str, str, str]]:
    """(resource, operation, rule, method) of every resource route (rules below /api/v1)."""
    out = []
    for r in RESOURCES:
        for op in r.operations:
            rule = f"/<slug>/{r.name}" if op in ("list", "create") else f"/<slug>/{r.name}/<int:id>"
            out.append((r, op, rule, METHODS[op]))
    return out
