"""Forms of workspace administration."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField, TextAreaField

from saas.forms import NOT_A_CHOICE, length, required, valid_email
from saas.labels import VISIBILITY


class InviteForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[required(), valid_email(), length(max=254)])
    role = SelectField(_l("Role"), validators=[required()], invalid_choice_message=NOT_A_CHOICE)


class RoleChangeForm(FlaskForm):
    role = SelectField(_l("Role"), validators=[required()], invalid_choice_message=NOT_A_CHOICE)


class RoleForm(FlaskForm):
    name = StringField(_l("Name"), validators=[required(), length(max=60)])
    description = TextAreaField(_l("Description"), validators=[length(max=300)])
    visibility = SelectField(
        _l("Records this role sees"),
        choices=list(VISIBILITY.items()),
        invalid_choice_message=NOT_A_CHOICE,
    )


class SettingsForm(FlaskForm):
    name = StringField(_l("Workspace name"), validators=[required(), length(max=120)])
    timezone = SelectField(_l("Time zone"), invalid_choice_message=NOT_A_CHOICE)
    currency = SelectField(_l("Currency"), invalid_choice_message=NOT_A_CHOICE)
