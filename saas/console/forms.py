"""Forms of the platform console."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField

from saas.forms import length


class StatusForm(FlaskForm):
    """Suspend or reactivate: suspending asks for the workspace's address, typed, as confirmation."""

    confirm = StringField(_l("Type the workspace's address to confirm"), validators=[length(max=40)])
    reason = StringField(
        _l("Reason"),
        validators=[length(max=300)],
        description=_l("Written to the workspace's audit log."),
    )
