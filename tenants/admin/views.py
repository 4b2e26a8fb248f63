"""Workspace administration pages: people, invitations, roles, audit log, settings."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from saas import labels
from saas.accounts import AccountError
from saas.pages import form_errors, render
from saas.permissions import ACTIONS, BUILTIN_ROLES, MODULES, require
from tenants.admin import services
from tenants.admin.forms import InviteForm, RoleChangeForm, RoleForm, SettingsForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _people_page(invite_form: InviteForm | None = None, status: int = 200):  # noqa: ANN202
    form = invite_form or InviteForm()
    form.role.choices = services.role_choices()
    if not form.role.data:
        form.role.data = "sales"  # the least surprising default; "owner" must be chosen on purpose
    return render(
        "admin/people.html",
        "admin/_people_table.html",
        status,
        members=services.members(),
        invitations=services.pending_invitations(),
        invite_form=form,
        role_choices=services.role_choices(),
        role_label=services.role_label,
    )


@bp.get("/people")
@require("users", "view")
def people():  # noqa: ANN201
    return _people_page()


@bp.post("/people/invite")
@require("users", "create")
def invite():  # noqa: ANN201
    form = InviteForm()
    form.role.choices = services.role_choices()
    if form.validate_on_submit():
        try:
            services.invite(g.membership.role, current_user, form.email.data, form.role.data)
        except AccountError as err:
            form_errors(form, err)
        else:
            flash(_("Invitation sent to %(email)s.", email=form.email.data), "success")
            return redirect(url_for(".people"))
    return _people_page(form, 422)


@bp.post("/invitations/<int:invitation_id>/revoke")
@require("users", "edit")
def revoke(invitation_id: int):  # noqa: ANN201
    try:
        services.revoke_invitation(invitation_id)
    except LookupError:
        abort(404)
    flash(_("Invitation withdrawn."), "info")
    return redirect(url_for(".people"))


@bp.post("/people/<int:membership_id>/role")
@require("users", "edit")
def change_role(membership_id: int):  # noqa: ANN201
    form = RoleChangeForm()
    form.role.choices = services.role_choices()
    try:
        if not form.validate_on_submit():
            raise AccountError(_("Choose a role from the list."))
        services.change_role(g.membership.role, membership_id, form.role.data)
    except LookupError:
        abort(404)
    except AccountError as err:
        flash(str(err), "danger")
        return _people_page(status=422)
    flash(_("Role changed."), "success")
    return redirect(url_for(".people"))


@bp.post("/people/<int:membership_id>/deactivate")
@require("users", "edit")
def deactivate(membership_id: int):  # noqa: ANN201
    return _set_active(membership_id, False)


@bp.post("/people/<int:membership_id>/reactivate")
@require("users", "edit")
def reactivate(membership_id: int):  # noqa: ANN201
    return _set_active(membership_id, True)


def _set_active(membership_id: int, active: bool):  # noqa: ANN202
    try:
        services.set_active(g.membership.role, membership_id, active)
    except LookupError:
        abort(404)
    except AccountError as err:
        flash(str(err), "danger")
        return _people_page(status=422)
    flash(_("Access restored.") if active else _("Access removed. Their sessions have ended."), "success")
    return redirect(url_for(".people"))


# Roles ----------------------------------------------------------------------


@bp.get("/roles")
@require("users", "view")
def roles():  # noqa: ANN201
    return render(
        "admin/roles.html",
        builtin=BUILTIN_ROLES,
        custom=services.custom_roles(),
        modules=MODULES,
        actions=ACTIONS,
        labels=labels,
    )


def _matrix_from_form() -> dict[str, list[str]]:
    return {m: request.form.getlist(f"perm-{m}") for m in MODULES}


@bp.route("/roles/new", methods=["GET", "POST"], defaults={"role_id": None})
@bp.route("/roles/<int:role_id>", methods=["GET", "POST"])
@require("users", "edit")
def edit_role(role_id: int | None):  # noqa: ANN201
    try:
        role = services.get_role(role_id) if role_id else None
    except LookupError:
        abort(404)
    form = RoleForm(obj=role)
    matrix = (
        {m: set((role.permissions or {}).get(m, [])) for m in MODULES}
        if role
        else {m: set() for m in MODULES}
    )
    if form.validate_on_submit():
        matrix = {m: set(a) for m, a in _matrix_from_form().items()}
        try:
            services.save_role(
                role_id,
                form.name.data,
                form.description.data or "",
                form.visibility.data,
                _matrix_from_form(),
            )
        except AccountError as err:
            form_errors(form, err)
        else:
            flash(_("Role saved."), "success")
            return redirect(url_for(".roles"))
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "admin/role_form.html",
        form=form,
        role=role,
        matrix=matrix,
        modules=MODULES,
        actions=ACTIONS,
        status=status,
    )


@bp.post("/roles/<int:role_id>/delete")
@require("users", "delete")
def delete_role(role_id: int):  # noqa: ANN201
    try:
        services.delete_role(role_id)
    except LookupError:
        abort(404)
    except AccountError as err:
        flash(str(err), "danger")
        return redirect(url_for(".roles"))
    flash(_("Role deleted."), "success")
    return redirect(url_for(".roles"))


# Audit log ------------------------------------------------------------------


def _date(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


@bp.get("/audit")
@require("audit", "view")
def audit_log():  # noqa: ANN201
    filters = {
        "action": request.args.get("action", ""),
        "entity": request.args.get("entity", ""),
        "user": request.args.get("user", "").strip(),
        "since": _date("since"),
        "until": _date("until"),
    }
    before = request.args.get("before", type=int)
    events, next_before = services.audit_page(filters, before)
    actions, entities = services.audit_facets()
    return render(
        "admin/audit.html",
        "admin/_audit_rows.html",
        events=events,
        next_before=next_before,
        filters=filters,
        actions=actions,
        entities=entities,
        labels=labels,
    )


# Settings -------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@require("settings", "view")
def settings():  # noqa: ANN201
    form = SettingsForm(obj=g.tenant)
    form.timezone.choices = services.timezones()
    form.currency.choices = list(services.CURRENCIES)
    if request.method == "POST":
        if not _can_edit_settings():
            abort(403)
        if form.validate_on_submit():
            try:
                services.update_settings(form.name.data, form.timezone.data, form.currency.data)
            except AccountError as err:
                form_errors(form, err)
            else:
                flash(_("Settings saved."), "success")
                return redirect(url_for(".settings"))
    return render("admin/settings.html", form=form, status=422 if form.errors or form.form_errors else 200)


def _can_edit_settings() -> bool:
    from saas.permissions import can

    return can("settings", "edit")
