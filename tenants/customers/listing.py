"""The company and contact lists, described once for the generic list helper (tenants.listing)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, func, select

from tenants import listing
from tenants.customers import fields as custom_fields
from tenants.customers.models import Company, Contact, CustomField
from tenants.customers.people import Viewer
from tenants.customers.services import SIZES, STAGE_LABELS
from tenants.customers.visibility import visible

CUSTOM_KINDS = {
    "text": "text",
    "number": "number",
    "date": "date",
    "select": "choice",
    "multi_select": "multi",
    "checkbox": "bool",
}


def custom_list_fields(model: Any, defs: list[CustomField]) -> list[listing.Field]:
    return [
        _sensitive_field(model, d)
        if d.sensitive
        else listing.json_field(
            model.custom,
            d.key,
            CUSTOM_KINDS[d.field_type],
            d.label,
            choices=[(o, o) for o in d.options] if d.options else None,
        )
        for d in defs
    ]


def _sensitive_field(model: Any, d: CustomField) -> listing.Field:
    """An encrypted field: "is" by its blind index (containment, so the GIN index serves it); no sort."""
    # A copy outside the session: exports run the query after the request's session has committed.
    snap = CustomField(
        record_type=d.record_type, key=d.key, label=d.label, field_type=d.field_type, options=list(d.options)
    )

    def build(_op: str, value: Any) -> Any:
        return model.custom.contains({snap.key: {"bi": custom_fields.index_of(snap, str(value))}})

    return listing.Field(
        key=f"cf_{d.key}",
        label=d.label,
        expr=model.custom[d.key]["bi"].astext,
        kind="secret",
        sortable=False,
        build=build,
    )


def _stages() -> list[tuple[str, Any]]:
    return list(STAGE_LABELS.items())


def company_spec(owners: list[tuple[str, str]], defs: list[CustomField] | None = None) -> listing.ListSpec:
    if defs is None:
        defs = custom_fields.definitions("company")
    f = listing.Field
    return listing.ListSpec(
        fields=[
            f("name", _l("Name"), Company.name, "text", nullable=False),
            f("industry", _l("Industry"), Company.industry, "text", nullable=False),
            f("lifecycle_stage", _l("Stage"), Company.lifecycle_stage, "choice", _stages(), nullable=False),
            f("owner_id", _l("Owner"), Company.owner_id, "ref", owners, sortable=False),
            f("size", _l("Size"), Company.size, "choice", [(s, s) for s in SIZES], nullable=False),
            f("domain", _l("Domain"), Company.domain, "text"),
            f("phones", _l("Phone"), func.array_to_string(Company.phones, " "), "text", sortable=False),
            f("city", _l("City"), Company.city, "text", nullable=False),
            f("country", _l("Country"), Company.country, "text", nullable=False),
            f("source", _l("Source"), Company.source, "text", nullable=False),
            f("tags", _l("Tags"), Company.tags, "tags", sortable=False),
            f("created_at", _l("Created"), Company.created_at, "datetime", nullable=False),
            f("updated_at", _l("Updated"), Company.updated_at, "datetime", nullable=False),
            *custom_list_fields(Company, defs),
        ],
        id_column=Company.id,
        default_sort="name",
    )


def contact_spec(owners: list[tuple[str, str]], defs: list[CustomField] | None = None) -> listing.ListSpec:
    if defs is None:
        defs = custom_fields.definitions("contact")
    f = listing.Field
    return listing.ListSpec(
        fields=[
            f("name", _l("Name"), Contact.full_name, "text", nullable=False),
            f("email", _l("Email"), Contact.email, "text"),
            f("company", _l("Company"), Company.name, "text"),
            f("company_id", _l("Company"), Contact.company_id, "ref", sortable=False),
            f("job_title", _l("Job title"), Contact.job_title, "text", nullable=False),
            f("lifecycle_stage", _l("Stage"), Contact.lifecycle_stage, "choice", _stages(), nullable=False),
            f("owner_id", _l("Owner"), Contact.owner_id, "ref", owners, sortable=False),
            f("phones", _l("Phone"), func.array_to_string(Contact.phones, " "), "text", sortable=False),
            f("city", _l("City"), Contact.city, "text", nullable=False),
            f("country", _l("Country"), Contact.country, "text", nullable=False),
            f("source", _l("Source"), Contact.source, "text", nullable=False),
            f("tags", _l("Tags"), Contact.tags, "tags", sortable=False),
            f("birthday", _l("Birthday"), Contact.birthday, "date"),
            f("consent_email", _l("Email consent"), Contact.consent_email, "bool", sortable=False),
            f("consent_sms", _l("SMS consent"), Contact.consent_sms, "bool", sortable=False),
            f("created_at", _l("Created"), Contact.created_at, "datetime", nullable=False),
            f("updated_at", _l("Updated"), Contact.updated_at, "datetime", nullable=False),
            *custom_list_fields(Contact, defs),
        ],
        id_column=Contact.id,
        default_sort="name",
    )


def company_base(viewer: Viewer) -> Select:
    return select(Company).where(visible(viewer, Company))


def contact_base(viewer: Viewer) -> Select:
    """Contacts the viewer may see, with the name of their company when the viewer may see it too."""
    return (
        select(Contact, Company.name.label("company_name"))
        .outerjoin(Company, and_(Company.id == Contact.company_id, visible(viewer, Company)))
        .where(visible(viewer, Contact))
    )


def companies_page(viewer: Viewer, spec: listing.ListSpec, args: Any) -> listing.Page:
    return listing.fetch_page(company_base(viewer), listing.parse_args(spec, args))


def contacts_page(viewer: Viewer, spec: listing.ListSpec, args: Any) -> listing.Page:
    return listing.fetch_page(contact_base(viewer), listing.parse_args(spec, args))
