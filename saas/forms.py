"""Forms of the public side: sign-up, sign-in, password reset, invitation acceptance."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length

# WTForms' own messages, given explicitly so that they come from the project's catalogs: WTForms
# ships no Thai catalog, and gettext would hand zh_Hant its simplified "zh" one. The English text
# is WTForms' own. Every form of the project builds its validators with these helpers.
REQUIRED = _l("This field is required.")
INVALID_EMAIL = _l("Invalid email address.")
NOT_A_CHOICE = _l("Not a valid choice.")


def required() -> DataRequired:
    return DataRequired(message=REQUIRED)


def valid_email() -> Email:
    return Email(check_deliverability=False, message=INVALID_EMAIL)


def length(min: int = -1, max: int = -1) -> Length:
    if min == -1:
        message = _l("Field cannot be longer than %(max)d characters.")
    elif max == -1:
        message = _l("Field must be at least %(min)d characters long.")
    else:
        message = _l("Field must be between %(min)d and %(max)d characters long.")
    return Length(min=min, max=max, message=message)


SLUG_HELP = _l("Lowercase letters, digits and dashes.")


class SignupForm(FlaskForm):
    company = StringField(_l("Company name"), validators=[required(), length(max=120)])
    slug = StringField(
        _l("Workspace address"), validators=[required(), length(max=40)], description=SLUG_HELP
    )
    name = StringField(_l("Your name"), validators=[required(), length(max=120)])
    email = EmailField(_l("Work email"), validators=[required(), valid_email(), length(max=254)])
    password = PasswordField(_l("Password"), validators=[required(), length(min=10, max=200)])


class NewWorkspaceForm(FlaskForm):
    company = StringField(_l("Company name"), validators=[required(), length(max=120)])
    slug = StringField(
        _l("Workspace address"), validators=[required(), length(max=40)], description=SLUG_HELP
    )


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[required(), valid_email()])
    password = PasswordField(_l("Password"), validators=[required()])
    remember = BooleanField(_l("Keep me signed in"))


class ForgotForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[required(), valid_email()])


class ResetForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[required(), length(min=10, max=200)])


class AcceptInviteForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[required(), length(max=120)])
    password = PasswordField(_l("Password"), validators=[required(), length(min=10, max=200)])
