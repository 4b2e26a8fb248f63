"""Emails written on a 360 page (tenants.customers.emails): the form, sending, sending a failed one again.

Like logging an entry: an htmx request gets the timeline block back (the new email on top), a plain
form post is redirected to the record's timeline.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from saas.i18n import Resolved
from saas.pages import form_errors, wants_partial
from saas.permissions import require
from tenants.customers import emails, services, timeline
from tenants.customers.errors import CustomerError
from tenants.customers.forms import SelectField
from tenants.customers.models import Company, Contact
from tenants.customers.views import (
    bp,
    found,
    record_page,
    record_url,
    safe_next,
    timeline_block,
    viewer,
)

BADGES = {
    "queued": "text-bg-secondary",
    "retrying": "text-bg-warning",
    "sent": "text-bg-success",
    "failed": "text-bg-danger",
}


class EmailForm(FlaskForm):
    """An email to a contact. On a company's page: one of its contacts, or an address typed in."""

    to_contact = SelectField(_l("To"), validate_choice=False)
    to_address = StringField(_l("Email address"), validators=[Length(max=254)])
    subject = StringField(_l("Subject"), validators=[Length(max=300)])
    body = TextAreaField(_l("Text"))


def email_context(
    record_type: str, record: Company | Contact, form: EmailForm | None = None
) -> dict[str, Any]:
    """What the email form of a timeline needs (views.timeline_context adds it to every timeline)."""
    form = form or EmailForm(formdata=None)
    if isinstance(record, Contact):
        choices = [(a, a) for a in emails.addresses(record)]
        form.to_contact.choices = []
    else:
        contacts = emails.company_recipients(viewer(), record.id)
        form.to_contact.choices = [
            ("", _("— type an address —")),
            *[(str(cid), f"{name} <{email}>") for cid, name, email in contacts],
        ]
        choices = []
    return {
        "email_form": form,
        "email_addresses": choices,
        "email_url": url_for(
            ".email_company" if record_type == "company" else ".email_contact",
            **{f"{record_type}_id": record.id},
        ),
    }


@bp.context_processor
def _email_helpers() -> dict[str, Any]:
    return {"email_labels": Resolved(emails.STATUS_LABELS), "email_badges": BADGES}


def _send(record_type: str, record_id: int) -> Any:
    record = found(services.get_record, viewer(), record_type, record_id)
    form = EmailForm()
    if form.validate_on_submit():
        try:
            activity = found(
                emails.send_email,
                viewer(),
                record_type,
                record_id,
                form.subject.data or "",
                form.body.data or "",
                to_contact_id=form.to_contact.data if record_type == "company" else None,
                to_address=form.to_address.data or "",
            )
        except CustomerError as err:
            form_errors(form, err)
        else:
            message = _("Email to %(address)s queued: it goes out in a moment.", address=activity.email_to)
            if wants_partial():
                return timeline_block(record_type, record, logged=message, email_form=None)
            flash(message, "success")
            return redirect(record_url(record_type, record_id, _anchor="timeline"))
    if wants_partial():
        return timeline_block(record_type, record, 422, email_form=form)
    return record_page(record_type, record, status=422, email_form=form)


@bp.post("/companies/<int:company_id>/emails")
@require("customers", "edit")
def email_company(company_id: int) -> Any:
    return _send("company", company_id)


@bp.post("/contacts/<int:contact_id>/emails")
@require("customers", "edit")
def email_contact(contact_id: int) -> Any:
    return _send("contact", contact_id)


@bp.post("/activities/<int:activity_id>/send-again")
@require("customers", "edit")
def email_send_again(activity_id: int) -> Any:
    activity = found(timeline.get_activity, viewer(), activity_id)
    back = (
        record_url("contact", activity.contact_id)
        if activity.contact_id
        else record_url("company", activity.company_id)
        if activity.company_id
        else url_for(".contacts")
    )
    try:
        found(emails.send_again, viewer(), activity_id)
    except CustomerError as err:
        flash(str(err), "danger")
    else:
        flash(_("The email is queued again."), "success")
    return redirect(safe_next(back + "#timeline"))
