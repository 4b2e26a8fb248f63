"""Forms of workspace administration."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length


class InviteForm(FlaskForm):
    email = EmailField(
        _l("Email"), validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)]
    )
    role = SelectField(_l("Role"), validators=[DataRequired()])


class RoleChangeForm(FlaskForm):
    role = SelectField(_l("Role"), validators=[DataRequired()])


class RoleForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    description = TextAreaField(_l("Description"), validators=[Length(max=300)])
    visibility = SelectField(
        _l("Records this role sees"),
        choices=[("own", _l("Their own")), ("team", _l("Their team's")), ("all", _l("All"))],
    )


class SettingsForm(FlaskForm):
    name = StringField(_l("Workspace name"), validators=[DataRequired(), Length(max=120)])
    timezone = SelectField(_l("Time zone"))
    currency = SelectField(_l("Currency"))
