"""Customer 360 pages: the blueprint "workspace.customers" (a thin layer over the services).

Routes live in three files on this one blueprint: this one (lists, companies,
contacts, the 360 pages), views_timeline.py (timeline entries and tasks) and
views_setup.py (custom fields and teams). Every route carries
@require("customers", action) (setup routes: the settings and users modules).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, g, redirect, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict

from saas import current_locale
from saas.i18n import Resolved
from saas.pages import form_errors, render
from saas.permissions import require
from tenants import listing as generic_listing
from tenants.customers import demo, listing, people, services, tasks, timeline
from tenants.customers import fields as custom_fields
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.forms import (
    ActivityForm,
    CompanyForm,
    ContactForm,
    StageForm,
    custom_data,
    custom_initial,
    with_custom_fields,
)
from tenants.customers.models import Company, Contact
from tenants.customers.panels import page_panels
from tenants.customers.sanitize import sanitize_html
from tenants.registry import DEMO_SEEDERS

bp = Blueprint("customers", __name__, url_prefix="/customers")

if demo.seed not in DEMO_SEEDERS:  # sample customers for `crm demo` / `make dev`
    DEMO_SEEDERS.append(demo.seed)


# Helpers shared by the view modules -----------------------------------------------------


def viewer() -> people.Viewer:
    return people.Viewer.current()


def tenant_zone() -> ZoneInfo:
    try:
        return ZoneInfo(g.tenant.timezone or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def to_utc(local: datetime | None) -> datetime | None:
    """A date-time typed in a form (the workspace's zone) as UTC."""
    if local is None:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=tenant_zone())
    return local.astimezone(UTC)


def to_local(moment: datetime | None) -> datetime | None:
    """A stored UTC time for a form's date-time box (naive, in the workspace's zone)."""
    if moment is None:
        return None
    return moment.astimezone(tenant_zone()).replace(tzinfo=None, second=0, microsecond=0)


def found(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a service; a record that is not there (or not visible) is a 404."""
    try:
        return fn(*args, **kwargs)
    except NotFound:
        abort(404)


def safe_next(default: str) -> str:
    """Where to go back to: a path on this site, never another host."""
    target = request.values.get("next") or ""
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.scheme and not parts.netloc:
        return target
    return default


def record_url(record_type: str, record_id: int, **kwargs: Any) -> str:
    if record_type == "company":
        return url_for("workspace.customers.company", company_id=record_id, **kwargs)
    return url_for("workspace.customers.contact", contact_id=record_id, **kwargs)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    def ago(moment: datetime | None) -> str:
        if moment is None:
            return ""
        return format_timedelta(moment - datetime.now(UTC), add_direction=True, granularity="minute")

    return {
        "stage_labels": Resolved(services.STAGE_LABELS),
        "kind_labels": Resolved(timeline.KIND_LABELS),
        "kind_icons": timeline.KIND_ICONS,
        "note_html": sanitize_html,
        "ago": ago,
        "now_utc": datetime.now(UTC),
        "shown_value": custom_fields.shown,
        "record_url": record_url,
    }


# Lists --------------------------------------------------------------------------------


def _canonical_filter_redirect(endpoint: str, spec: generic_listing.ListSpec) -> Any:
    """The "add a filter" box sends field/op/value; turn them into the list's own query arguments."""
    key = request.args.get("add_field", "")
    fld = spec.get(key)
    args = MultiDict(request.args)
    for name in ("add_field", "add_op", "add_value", "after"):
        args.poplist(name)
    if fld is not None and fld.filterable:
        op = request.args.get("add_op", "")
        op = op if op in fld.ops else fld.default_op
        value = request.args.get("add_value", "")
        param = fld.key if op == fld.default_op else f"{fld.key}__{op}"
        if op in generic_listing.NO_VALUE_OPS:
            args.setlist(param, ["1"])
        elif value.strip():
            args.add(param, value.strip())
    return redirect(url_for(endpoint, **args.to_dict(flat=False)))


# The "filter on any field" control of a list as text, by everything it is made of: the language,
# the list, its owners (ids and names) and the tenant's field definitions, all read afresh for each
# request; a change to any of them is another key, so nothing stale or another tenant's is served.
_FILTER_BUILDERS: dict[tuple, tuple[Markup, Markup, Markup]] = {}
_FILTER_BUILDERS_MAX = 512


def _filter_builder(
    kind: str, owners: list[tuple[str, str]], defs: list[Any], spec: generic_listing.ListSpec
) -> tuple[Markup, Markup, Markup]:
    """(fields as escaped JSON, the field options, the first field's condition options)."""
    key = (
        current_locale(),
        kind,
        tuple(owners),
        tuple((d.key, d.label, d.field_type, tuple(d.options or ()), d.sensitive) for d in defs),
    )
    found_builder = _FILTER_BUILDERS.get(key)
    if found_builder is None:
        choices = generic_listing.filter_choices(spec)
        policies = current_app.jinja_env.policies
        data = htmlsafe_json_dumps(choices, policies["json.dumps_function"], **policies["json.dumps_kwargs"])
        found_builder = (
            escape(str(data)),
            Markup("").join(
                Markup('<option value="{}">{}</option>').format(f["key"], f["label"]) for f in choices
            ),
            Markup("").join(
                Markup('<option value="{}">{}</option>').format(op, label) for op, label in choices[0]["ops"]
            ),
        )
        if len(_FILTER_BUILDERS) >= _FILTER_BUILDERS_MAX:
            _FILTER_BUILDERS.clear()
        _FILTER_BUILDERS[key] = found_builder
    return found_builder


def _list_page(kind: str) -> Any:
    owners = people.owner_choices()[1:]
    defs = custom_fields.definitions(kind)
    spec = listing.company_spec(owners, defs) if kind == "company" else listing.contact_spec(owners, defs)
    endpoint = "workspace.customers.companies" if kind == "company" else "workspace.customers.contacts"
    if "add_field" in request.args:
        return _canonical_filter_redirect(endpoint, spec)
    v = viewer()
    page = (listing.companies_page if kind == "company" else listing.contacts_page)(v, spec, request.args)
    owner_names = people.names(row[0].owner_id for row in page.rows)
    company_names: dict[int, str] = {}
    ref = page.query.value_of("company_id")
    if kind == "contact" and ref:
        try:
            company_names[int(ref)] = services.get_company(v, int(ref)).name
        except (NotFound, ValueError):
            pass
    ctx = {
        "kind": kind,
        "page": page,
        "query": page.query,
        "spec": spec,
        "defs": defs,
        "list_defs": defs[:4],
        "owner_names": owner_names,
        "owners": owners,
        "company_names": company_names,
        "endpoint": endpoint,
        "filter_builder": _filter_builder(kind, owners, defs, spec),
        "sortable": [f for f in spec.fields if f.sortable],
        "first_page": not request.args.get("after"),
    }
    template = "customers/companies.html" if kind == "company" else "customers/contacts.html"
    return render(template, "customers/_list_rows.html", **ctx)


@bp.get("/contacts")
@require("customers", "view")
def contacts() -> Any:
    return _list_page("contact")


@bp.get("/companies")
@require("customers", "view")
def companies() -> Any:
    return _list_page("company")


@bp.get("/companies/lookup")
@require("customers", "view")
def company_lookup() -> Any:
    """Suggestions for the contact form's company box (a <datalist>)."""
    found_companies = services.find_companies_by_name(viewer(), request.args.get("company", ""))
    return render(
        "customers/_company_options.html", "customers/_company_options.html", companies=found_companies
    )


# Companies ----------------------------------------------------------------------------


def _company_form(company: Company | None) -> Any:
    defs = custom_fields.definitions("company")
    form_class = with_custom_fields(CompanyForm, defs)
    initial = custom_initial(defs, company.custom if company else {})
    if company is None:
        form = form_class(owner_id=str(g.membership.user_id), lifecycle_stage="lead", **initial)
    else:
        form = form_class(obj=company, **initial)
    form.owner_id.choices = _owner_choices(company)
    return form, defs


def _owner_choices(record: Company | Contact | None) -> list[tuple[str, str]]:
    """The active members, plus the record's present owner if they have left (so a save keeps them)."""
    choices = people.owner_choices()
    if record is not None and record.owner_id and str(record.owner_id) not in {k for k, _v in choices}:
        name = people.names([record.owner_id]).get(record.owner_id, f"#{record.owner_id}")
        choices.append((str(record.owner_id), _("%(name)s (no longer a member)", name=name)))
    return choices


def _company_data(form: Any, defs: list) -> dict[str, Any]:
    data = {name: form[name].data for name in (*CompanyForm.BASIC, *CompanyForm.ADDRESS)}
    data["custom"] = custom_data(form, defs)
    return data


def _after_save(record_type: str, record_id: int, message: str) -> Any:
    flash(message, "success")
    try:
        services.get_record(viewer(), record_type, record_id)
    except NotFound:
        flash(_("It now belongs to someone whose records you do not see."), "info")
        return redirect(url_for(".companies" if record_type == "company" else ".contacts"))
    return redirect(record_url(record_type, record_id))


@bp.route("/companies/new", methods=["GET", "POST"])
@require("customers", "create")
def new_company() -> Any:
    form, defs = _company_form(None)
    if form.validate_on_submit():
        try:
            company = services.create_company(viewer(), _company_data(form, defs))
        except CustomerError as err:
            form_errors(form, err)
        else:
            return _after_save("company", company.id, _("Company %(name)s added.", name=company.name))
    status = 422 if form.errors or form.form_errors else 200
    return render("customers/company_form.html", form=form, defs=defs, company=None, status=status)


@bp.route("/companies/<int:company_id>/edit", methods=["GET", "POST"])
@require("customers", "edit")
def edit_company(company_id: int) -> Any:
    company = found(services.get_company, viewer(), company_id)
    form, defs = _company_form(company)
    if form.validate_on_submit():
        try:
            services.update_company(viewer(), company_id, _company_data(form, defs))
        except CustomerError as err:
            form_errors(form, err)
        else:
            return _after_save("company", company_id, _("Changes saved."))
    status = 422 if form.errors or form.form_errors else 200
    return render("customers/company_form.html", form=form, defs=defs, company=company, status=status)


@bp.post("/companies/<int:company_id>/delete")
@require("customers", "delete")
def delete_company(company_id: int) -> Any:
    found(services.delete_company, viewer(), company_id)
    flash(_("Company deleted."), "success")
    return redirect(url_for(".companies"))


@bp.post("/companies/<int:company_id>/stage")
@require("customers", "edit")
def company_stage(company_id: int) -> Any:
    return _change_stage("company", company_id)


def _change_stage(record_type: str, record_id: int) -> Any:
    form = StageForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        found(services.change_stage, viewer(), record_type, record_id, form.stage.data)
    except CustomerError as err:
        flash(str(err), "danger")
    else:
        flash(_("Lifecycle stage: %(stage)s.", stage=services.STAGE_LABELS[form.stage.data]), "success")
    return redirect(record_url(record_type, record_id))


def _key_figures(record_type: str, record: Company | Contact, v: people.Viewer) -> dict[str, Any]:
    open_count, overdue = tasks.open_counts(record_type, record.id)
    history = services.stage_history(record_type, record.id)
    figures = {
        "last_contact": timeline.last_contact(record_type, record.id),
        "open_tasks": open_count,
        "overdue_tasks": overdue,
        "stage_since": history[0].at if history else record.created_at,
        "history": history,
    }
    if record_type == "company":
        figures["contact_count"] = services.count_company_contacts(v, record.id)
    return figures


def _record_page(
    record_type: str,
    record: Company | Contact,
    activity_form: ActivityForm | None = None,
    status: int = 200,
    email_form: Any = None,
) -> Any:
    v = viewer()
    defs = custom_fields.definitions(record_type)
    panels = page_panels(record_type, record, v)
    template = "customers/company.html" if record_type == "company" else "customers/contact.html"
    figures = _key_figures(record_type, record, v)
    names_needed = [record.owner_id, *[h.by_user_id for h in figures["history"]]]
    return render(
        template,
        status=status,
        record=record,
        record_type=record_type,
        company=record if record_type == "company" else None,
        contact=record if record_type == "contact" else None,
        parent=(
            _visible_company(v, record.company_id) if record_type == "contact" and record.company_id else None
        ),
        defs=defs,
        figures=figures,
        panels=panels,
        stage_form=StageForm(stage=record.lifecycle_stage),
        **timeline_context(record_type, record, activity_form, email_form),
        owner_names=people.names(names_needed),
    )


def _visible_company(v: people.Viewer, company_id: int) -> Company | None:
    try:
        return services.get_company(v, company_id)
    except NotFound:
        return None


def timeline_context(
    record_type: str, record: Any, activity_form: ActivityForm | None = None, email_form: Any = None
) -> dict[str, Any]:
    """What the timeline block needs: the log and email forms, a page of entries, their authors' names."""
    from tenants.customers.views_emails import email_context

    form = activity_form or ActivityForm(formdata=None, kind=request.args.get("log", "note"))
    entries = timeline.timeline(
        viewer(), record_type, record.id, request.args if request.args.get("after") else {}
    )
    return {
        "activity_form": form,
        "entries": entries,
        "entry_authors": people.names(a.user_id for a in entries.items),
        "entry_contacts": services.contact_names(
            viewer(),
            {a.contact_id for a in entries.items if a.contact_id} if record_type == "company" else set(),
        ),
        "log_url": url_for(
            ".log_company_activity" if record_type == "company" else ".log_contact_activity",
            **{f"{record_type}_id": record.id},
        ),
        "timeline_url": url_for(
            ".company_timeline" if record_type == "company" else ".contact_timeline",
            **{f"{record_type}_id": record.id},
        ),
        **email_context(record_type, record, email_form),
    }


def timeline_block(
    record_type: str,
    record: Any,
    status: int = 200,
    activity_form: ActivityForm | None = None,
    email_form: Any = None,
    **extra: Any,
) -> Any:
    """The timeline block alone (an htmx answer after logging or sending), with its forms."""
    ctx = timeline_context(record_type, record, activity_form, email_form)
    return render(
        "customers/_timeline.html", "customers/_timeline.html", status, record=record, record_type=record_type,
        **ctx, **extra,
    )  # fmt: skip


@bp.get("/companies/<int:company_id>")
@require("customers", "view")
def company(company_id: int) -> Any:
    return _record_page("company", found(services.get_company, viewer(), company_id))


# Contacts -----------------------------------------------------------------------------


def _contact_form(contact: Contact | None) -> Any:
    defs = custom_fields.definitions("contact")
    form_class = with_custom_fields(ContactForm, defs)
    initial = custom_initial(defs, contact.custom if contact else {})
    if contact is None:
        company_name, company_id = "", ""
        if request.args.get("company_id", "").isdigit():
            parent = _visible_company(viewer(), int(request.args["company_id"]))
            if parent is not None:
                company_name, company_id = parent.name, str(parent.id)
        form = form_class(
            owner_id=str(g.membership.user_id),
            lifecycle_stage="lead",
            company=company_name,
            company_id=company_id,
            **initial,
        )
    else:
        parent = _visible_company(viewer(), contact.company_id) if contact.company_id else None
        form = form_class(
            obj=contact,
            company=parent.name if parent else "",
            **initial,
        )
        if request.method == "GET":
            form.company_id.data = str(parent.id) if parent else ""
    form.owner_id.choices = _owner_choices(contact)
    return form, defs


CONTACT_FIELDS = (
    "first_name", "last_name", "job_title", "email", "emails", "phones", "birthday", "interests",
    "preferences", "consent_email", "consent_email_how", "consent_sms", "consent_sms_how", "owner_id",
    "lifecycle_stage", "tags", "source", *ContactForm.ADDRESS,
)  # fmt: skip


def _contact_data(form: Any, defs: list, contact: Contact | None) -> dict[str, Any]:
    data = {name: form[name].data for name in CONTACT_FIELDS}
    data["custom"] = custom_data(form, defs)
    # The hidden id stands for the company only while the name box still shows that company's name.
    company_id = str(form.company_id.data or "").strip()
    name = (form.company.data or "").strip()
    if company_id.isdigit():
        chosen = _visible_company(viewer(), int(company_id))
        if chosen is not None and chosen.name.strip().lower() == name.lower():
            data["company_id"] = chosen.id
            return data
    if (
        not name
        and contact is not None
        and contact.company_id
        and _visible_company(viewer(), contact.company_id) is None
    ):
        return data  # linked to a company this person does not see: leave the link alone
    data["company"] = name
    data["company_id"] = None
    return data


@bp.route("/contacts/new", methods=["GET", "POST"])
@require("customers", "create")
def new_contact() -> Any:
    form, defs = _contact_form(None)
    if form.validate_on_submit():
        try:
            contact = services.create_contact(viewer(), _contact_data(form, defs, None))
        except CustomerError as err:
            form_errors(form, err)
        else:
            return _after_save("contact", contact.id, _("Contact %(name)s added.", name=contact.full_name))
    status = 422 if form.errors or form.form_errors else 200
    return render("customers/contact_form.html", form=form, defs=defs, contact=None, status=status)


@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
@require("customers", "edit")
def edit_contact(contact_id: int) -> Any:
    contact = found(services.get_contact, viewer(), contact_id)
    form, defs = _contact_form(contact)
    if form.validate_on_submit():
        try:
            services.update_contact(viewer(), contact_id, _contact_data(form, defs, contact))
        except CustomerError as err:
            form_errors(form, err)
        else:
            return _after_save("contact", contact_id, _("Changes saved."))
    status = 422 if form.errors or form.form_errors else 200
    return render("customers/contact_form.html", form=form, defs=defs, contact=contact, status=status)


@bp.post("/contacts/<int:contact_id>/delete")
@require("customers", "delete")
def delete_contact(contact_id: int) -> Any:
    found(services.delete_contact, viewer(), contact_id)
    flash(_("Contact deleted."), "success")
    return redirect(url_for(".contacts"))


@bp.post("/contacts/<int:contact_id>/stage")
@require("customers", "edit")
def contact_stage(contact_id: int) -> Any:
    return _change_stage("contact", contact_id)


@bp.get("/contacts/<int:contact_id>")
@require("customers", "view")
def contact(contact_id: int) -> Any:
    return _record_page("contact", found(services.get_contact, viewer(), contact_id))


def record_page(
    record_type: str,
    record: Any,
    activity_form: ActivityForm | None = None,
    status: int = 200,
    email_form: Any = None,
) -> Any:
    return _record_page(record_type, record, activity_form, status, email_form)


from tenants.customers import (  # noqa: E402, F401
    builtin_panels,
    views_attachments,
    views_duplicates,
    views_emails,
    views_imports,
    views_lists,
    views_search,
    views_setup,
    views_timeline,
)
