"""Forms of Customer 360. The services do the real checking; forms carry values and show errors."""

from __future__ import annotations

from datetime import date
from typing import Any

import wtforms
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    Field,
    HiddenField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import Select

from tenants.customers.fields import RECORD_LABELS, TYPE_LABELS, plain_values
from tenants.customers.models import CustomField
from tenants.customers.services import SIZES, STAGE_LABELS


def _str_or_blank(value: Any) -> str:
    return "" if value is None else str(value)


class _Select(Select):
    """WTForms' select with the same HTML, each option written directly: WTForms builds an option's
    attributes with html_params and str.format, and a company's email form offers a hundred."""

    @classmethod
    def render_option(cls, choice: Any, **kwargs: Any) -> Markup:
        if kwargs or choice.render_kw:
            return super().render_option(choice, **kwargs)
        value = str(choice.value) if isinstance(choice.value, bool) else choice.value
        value = escape(value).replace(Markup('"'), Markup("&quot;"))
        label = escape(choice.label or choice.value)
        return Markup(f'<option {"selected " if choice.selected else ""}value="{value}">{label}</option>')


class SelectField(wtforms.SelectField):
    widget = _Select()


class ListField(StringField):
    """A list of strings edited as text: comma-separated (tags) or one per line (phones, emails)."""

    def __init__(self, *args: Any, joiner: str = ", ", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.joiner = joiner

    def process_data(self, value: Any) -> None:
        self.data = self.joiner.join(value) if isinstance(value, list | tuple) else (value or "")


class ListArea(ListField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("joiner", "\n")
        super().__init__(*args, **kwargs)
        self.widget = TextAreaField.widget


def _stage_choices() -> list[tuple[str, Any]]:
    return list(STAGE_LABELS.items())


class CompanyForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    industry = StringField(_l("Industry"), validators=[Length(max=120)])
    size = SelectField(_l("Size"), choices=[("", "—"), *[(s, s) for s in SIZES]], validate_choice=False)
    website = StringField(_l("Website"), validators=[Length(max=300)])
    phones = ListArea(_l("Phones"), description=_l("One per line."))
    street = StringField(_l("Street"), validators=[Length(max=300)])
    city = StringField(_l("City"), validators=[Length(max=120)])
    region = StringField(_l("Region"), validators=[Length(max=120)])
    postal_code = StringField(_l("Postal code"), validators=[Length(max=20)])
    country = StringField(_l("Country"), validators=[Length(max=120)])
    owner_id = SelectField(_l("Owner"), coerce=_str_or_blank, validate_choice=False)
    lifecycle_stage = SelectField(_l("Lifecycle stage"), choices=_stage_choices, validate_choice=False)
    tags = ListField(_l("Tags"), description=_l("Separated by commas."))
    source = StringField(_l("Source"), validators=[Length(max=120)], description=_l("Where they came from."))

    BASIC = ("name", "industry", "size", "website", "phones", "owner_id", "lifecycle_stage", "tags", "source")
    ADDRESS = ("street", "city", "region", "postal_code", "country")


class ContactForm(FlaskForm):
    first_name = StringField(_l("First name"), validators=[Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[Length(max=100)])
    company = StringField(_l("Company"), validators=[Length(max=200)])
    company_id = HiddenField()
    job_title = StringField(_l("Job title"), validators=[Length(max=120)])
    email = StringField(_l("Email"), validators=[Length(max=254)])
    emails = ListArea(_l("Other email addresses"), description=_l("One per line."))
    phones = ListArea(_l("Phones"), description=_l("One per line."))
    birthday = DateField(_l("Birthday"), validators=[Optional()])
    street = StringField(_l("Street"), validators=[Length(max=300)])
    city = StringField(_l("City"), validators=[Length(max=120)])
    region = StringField(_l("Region"), validators=[Length(max=120)])
    postal_code = StringField(_l("Postal code"), validators=[Length(max=20)])
    country = StringField(_l("Country"), validators=[Length(max=120)])
    interests = TextAreaField(_l("Interests"), validators=[Length(max=5000)])
    preferences = TextAreaField(_l("Preferences"), validators=[Length(max=5000)])
    consent_email = BooleanField(_l("Agrees to marketing by email"))
    consent_email_how = StringField(
        _l("How they agreed (email)"), validators=[Length(max=200)], description=_l("A web form, a call...")
    )
    consent_sms = BooleanField(_l("Agrees to marketing by SMS"))
    consent_sms_how = StringField(_l("How they agreed (SMS)"), validators=[Length(max=200)])
    owner_id = SelectField(_l("Owner"), coerce=_str_or_blank, validate_choice=False)
    lifecycle_stage = SelectField(_l("Lifecycle stage"), choices=_stage_choices, validate_choice=False)
    tags = ListField(_l("Tags"), description=_l("Separated by commas."))
    source = StringField(_l("Source"), validators=[Length(max=120)])

    ADDRESS = ("street", "city", "region", "postal_code", "country")


def custom_form_field(d: CustomField) -> Field:
    label = d.label
    if d.field_type == "number":
        return StringField(label, render_kw={"inputmode": "decimal"})
    if d.field_type == "date":
        return DateField(label, validators=[Optional()])
    if d.field_type == "select":
        return SelectField(label, choices=[("", "—"), *[(o, o) for o in d.options]], validate_choice=False)
    if d.field_type == "multi_select":
        return SelectMultipleField(label, choices=[(o, o) for o in d.options], validate_choice=False)
    if d.field_type == "checkbox":
        return BooleanField(label)
    return StringField(label)


def with_custom_fields(form_class: type[FlaskForm], defs: list[CustomField]) -> type[FlaskForm]:
    """The form class with one field "cf_<key>" per custom field definition."""
    attrs = {f"cf_{d.key}": custom_form_field(d) for d in defs}
    return type(form_class.__name__, (form_class,), attrs)


def custom_initial(defs: list[CustomField], values: dict[str, Any] | None) -> dict[str, Any]:
    """Form data for the custom fields from a record's stored values."""
    out: dict[str, Any] = {}
    plain = plain_values(values)  # sensitive values decrypted for the form
    for d in defs:
        value = plain.get(d.key)
        if d.field_type == "date" and isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                value = None
        out[f"cf_{d.key}"] = value
    return out


def custom_data(form: FlaskForm, defs: list[CustomField]) -> dict[str, Any]:
    return {d.key: form[f"cf_{d.key}"].data for d in defs}


class StageForm(FlaskForm):
    stage = SelectField(_l("Lifecycle stage"), choices=_stage_choices, validate_choice=False)


ACTIVITY_KINDS = [("note", _l("Note")), ("call", _l("Call")), ("meeting", _l("Meeting"))]


class ActivityForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=ACTIVITY_KINDS, validate_choice=False)
    subject = StringField(_l("Subject"), validators=[Length(max=300)])
    body = TextAreaField(_l("Text"))
    occurred_at = DateTimeLocalField(
        _l("When"), validators=[Optional()], format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
    )
    duration_min = StringField(_l("Minutes"), render_kw={"inputmode": "numeric"})
    direction = SelectField(
        _l("Direction"), choices=[("out", _l("Outgoing")), ("in", _l("Incoming"))], validate_choice=False
    )


class TaskForm(FlaskForm):
    title = StringField(_l("Task"), validators=[DataRequired(), Length(max=200)])
    due_at = DateTimeLocalField(
        _l("Due"), validators=[Optional()], format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
    )
    reminder_at = DateTimeLocalField(
        _l("Remind me"), validators=[Optional()], format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
    )
    assignee_id = SelectField(_l("Assigned to"), coerce=_str_or_blank, validate_choice=False)
    notes = TextAreaField(_l("Notes"), validators=[Length(max=5000)])


class CustomFieldForm(FlaskForm):
    record_type = SelectField(_l("For"), choices=list(RECORD_LABELS.items()), validate_choice=False)
    label = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    key = StringField(
        _l("Key"),
        validators=[Length(max=40)],
        description=_l("Used in filters, imports and the API. Left empty, it is made from the name."),
    )
    field_type = SelectField(_l("Type"), choices=list(TYPE_LABELS.items()), validate_choice=False)
    options = TextAreaField(_l("Choices"), description=_l("One per line (for the choice types)."))
    sensitive = BooleanField(
        _l("Sensitive"),
        description=_l(
            "Stored encrypted (text, number and date fields). Lists find it by its exact value only "
            "and cannot sort on it."
        ),
    )


class CustomFieldEditForm(FlaskForm):
    label = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    options = TextAreaField(_l("Choices"), description=_l("One per line (for the choice types)."))
    position = StringField(_l("Position"), render_kw={"inputmode": "numeric"})


class TeamForm(FlaskForm):
    name = StringField(_l("Team name"), validators=[DataRequired(), Length(max=80)])


class TeamMemberForm(FlaskForm):
    user_id = SelectField(_l("Person"), coerce=_str_or_blank, validate_choice=False)
