"""Setting Customer 360 up: custom fields (settings permission) and teams (users permission)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from saas.pages import form_errors, render
from saas.permissions import require
from tenants.customers import fields as custom_fields
from tenants.customers import people, teams
from tenants.customers.errors import CustomerError
from tenants.customers.forms import CustomFieldEditForm, CustomFieldForm, TeamForm, TeamMemberForm
from tenants.customers.views import bp, found

# Custom fields ------------------------------------------------------------------------


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _fields_page(form: CustomFieldForm | None = None, status: int = 200) -> Any:
    return render(
        "customers/fields.html",
        form=form or CustomFieldForm(formdata=None, record_type=request.args.get("record_type", "contact")),
        definitions={rt: custom_fields.definitions(rt) for rt in custom_fields.RECORD_LABELS},
        record_labels=custom_fields.RECORD_LABELS,
        type_labels=custom_fields.TYPE_LABELS,
        status=status,
    )


@bp.get("/fields")
@require("settings", "view")
def fields() -> Any:
    return _fields_page()


@bp.post("/fields/new")
@require("settings", "edit")
def new_field() -> Any:
    form = CustomFieldForm()
    if form.validate_on_submit():
        try:
            made = custom_fields.create_field(
                form.record_type.data,
                form.label.data,
                form.field_type.data,
                _lines(form.options.data),
                form.key.data or "",
                sensitive=bool(form.sensitive.data),
            )
        except CustomerError as err:
            form_errors(form, err)
        else:
            flash(_("Field %(label)s added.", label=made.label), "success")
            return redirect(url_for(".fields"))
    return _fields_page(form, 422)


@bp.route("/fields/<int:field_id>/edit", methods=["GET", "POST"])
@require("settings", "edit")
def edit_field(field_id: int) -> Any:
    definition = found(custom_fields.get_field, field_id)
    form = CustomFieldEditForm(
        label=definition.label, options="\n".join(definition.options), position=str(definition.position)
    )
    if form.validate_on_submit():
        try:
            position = int(form.position.data) if (form.position.data or "").strip() else None
        except ValueError:
            form.position.errors = [_("Enter a whole number.")]
        else:
            try:
                found(
                    custom_fields.update_field, field_id, form.label.data, _lines(form.options.data), position
                )
            except CustomerError as err:
                form_errors(form, err)
            else:
                flash(_("Field saved."), "success")
                return redirect(url_for(".fields"))
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "customers/field_form.html",
        form=form,
        definition=definition,
        type_labels=custom_fields.TYPE_LABELS,
        record_labels=custom_fields.RECORD_LABELS,
        status=status,
    )


@bp.post("/fields/<int:field_id>/delete")
@require("settings", "edit")
def delete_field(field_id: int) -> Any:
    found(custom_fields.delete_field, field_id)
    flash(_("Field deleted, with its values."), "success")
    return redirect(url_for(".fields"))


# Teams --------------------------------------------------------------------------------


def _teams_page(form: TeamForm | None = None, status: int = 200) -> Any:
    member_form = TeamMemberForm(formdata=None)
    member_form.user_id.choices = people.owner_choices(blank="—")
    return render(
        "customers/teams.html",
        form=form or TeamForm(formdata=None),
        member_form=member_form,
        team_list=teams.teams(),
        status=status,
    )


@bp.get("/teams")
@require("users", "view")
def team_list() -> Any:
    return _teams_page()


@bp.post("/teams/new")
@require("users", "edit")
def new_team() -> Any:
    form = TeamForm()
    if form.validate_on_submit():
        try:
            team = teams.create_team(form.name.data)
        except CustomerError as err:
            form_errors(form, err)
        else:
            flash(_("Team %(name)s added.", name=team.name), "success")
            return redirect(url_for(".team_list"))
    return _teams_page(form, 422)


@bp.post("/teams/<int:team_id>/rename")
@require("users", "edit")
def rename_team(team_id: int) -> Any:
    found(teams.get_team, team_id)
    form = TeamForm()
    try:
        if not form.validate_on_submit():
            raise CustomerError(_("Give the team a name."))
        found(teams.rename_team, team_id, form.name.data)
    except CustomerError as err:
        flash(str(err), "danger")
    else:
        flash(_("Team renamed."), "success")
    return redirect(url_for(".team_list"))


@bp.post("/teams/<int:team_id>/delete")
@require("users", "edit")
def delete_team(team_id: int) -> Any:
    found(teams.delete_team, team_id)
    flash(_("Team deleted."), "success")
    return redirect(url_for(".team_list"))


@bp.post("/teams/<int:team_id>/members")
@require("users", "edit")
def add_team_member(team_id: int) -> Any:
    found(teams.get_team, team_id)
    form = TeamMemberForm()
    try:
        if not form.validate_on_submit() or not (form.user_id.data or "").isdigit():
            raise CustomerError(_("Choose someone from the list."))
        found(teams.add_member, team_id, int(form.user_id.data))
    except CustomerError as err:
        flash(str(err), "danger")
    else:
        flash(_("Added to the team."), "success")
    return redirect(url_for(".team_list"))


@bp.post("/teams/<int:team_id>/members/remove")
@require("users", "edit")
def remove_team_member(team_id: int) -> Any:
    found(teams.get_team, team_id)
    form = TeamMemberForm()
    try:
        if not form.validate_on_submit() or not (form.user_id.data or "").isdigit():
            raise CustomerError(_("Choose someone from the list."))
        found(teams.remove_member, team_id, int(form.user_id.data))
    except CustomerError as err:
        flash(str(err), "danger")
    else:
        flash(_("Removed from the team."), "success")
    return redirect(url_for(".team_list"))
