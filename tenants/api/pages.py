"""The page where each person makes, lists and revokes their own API tokens: "workspace.api_tokens".

A new token is shown once: the POST stores it in Redis for a few minutes under a
random key kept in the session, and the page it redirects to takes it out again.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField

from saas.forms import length, required
from saas.pages import form_errors, render
from saas.permissions import require
from tenants.api import tokens
from tenants.customers.errors import CustomerError, NotFound
from workers.queues import redis_conn

bp = Blueprint("api_tokens", __name__, url_prefix="/api-tokens")
REVEAL_SECONDS = 300


class TokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[required(), length(max=80)])
    days = SelectField(
        _l("Expires after"),
        choices=[(str(d), label) for d, label in tokens.LIFETIMES.items()],
        default="90",
        validate_choice=False,  # the service checks it
    )


class RevokeForm(FlaskForm):
    pass


def _reveal_key(ref: str) -> str:
    return f"api-token-reveal:{g.tenant.id}:{current_user.id}:{ref}"


def _stash(raw: str) -> None:
    ref = secrets.token_urlsafe(16)
    redis_conn().set(_reveal_key(ref), raw, ex=REVEAL_SECONDS)
    session["api_token_reveal"] = ref


def _take_new_token() -> str | None:
    ref = session.pop("api_token_reveal", None)
    if not ref:
        return None
    pipe = redis_conn().pipeline()  # GET then DEL (GETDEL needs Redis 6.2)
    pipe.get(_reveal_key(ref))
    pipe.delete(_reveal_key(ref))
    raw, _deleted = pipe.execute()
    return raw.decode() if raw else None


def _page(form: TokenForm, status: int = 200) -> Any:
    return render(
        "api/tokens.html",
        status=status,
        form=form,
        revoke_form=RevokeForm(),
        token_list=tokens.tokens_of(current_user.id),
        new_token=_take_new_token() if status == 200 else None,
        is_live=tokens.is_live,
        api_base=url_for("api.openapi", _external=False).rsplit("/", 1)[0] + f"/{g.tenant.slug}",
    )


# The API serves the customers module: whoever may not see customers has no use for a token.
@bp.get("")
@require("customers", "view")
def index() -> Any:
    return _page(TokenForm(formdata=None))


@bp.post("")
@require("customers", "view")
def create() -> Any:
    form = TokenForm()
    if form.validate_on_submit():
        try:
            days = int(form.days.data) if str(form.days.data).isdigit() else -1
            _token, raw = tokens.create(current_user.id, form.name.data, days)
        except CustomerError as err:
            form_errors(form, err)
        else:
            _stash(raw)
            flash(_("Token made. Copy it now: it will not be shown again."), "success")
            return redirect(url_for(".index"))
    return _page(form, 422)


@bp.post("/<int:token_id>/revoke")
@require("customers", "view")
def revoke(token_id: int) -> Any:
    if not RevokeForm().validate_on_submit():
        abort(400)
    try:
        token = tokens.revoke(current_user.id, token_id)
    except NotFound:
        abort(404)
    flash(_("Token %(name)s revoked: it no longer works.", name=token.name), "success")
    return redirect(url_for(".index"))
