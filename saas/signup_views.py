"""Landing page, sign-up with a live address check, and new workspaces for signed-in people."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from saas import ratelimit, signup
from saas.accounts import AccountError
from saas.forms import NewWorkspaceForm, SignupForm
from saas.pages import form_errors, render
from saas.signup import slug_problem

bp = Blueprint("signup", __name__)


@bp.get("/")
def landing():  # noqa: ANN201
    return render("signup/landing.html")


@bp.route("/signup", methods=["GET", "POST"])
def signup_page():  # noqa: ANN201
    form = SignupForm()
    if form.validate_on_submit():
        if not ratelimit.hit(
            "signup-ip", request.remote_addr or "", *current_app.config["SIGNUP_LIMIT_PER_IP"]
        ):
            abort(429)
        try:
            tenant = signup.signup(
                form.company.data, form.slug.data, form.name.data, form.email.data, form.password.data
            )
        except AccountError as err:
            form_errors(form, err)
        else:
            from saas.accounts import user_by_email

            login_user(user_by_email(form.email.data))
            flash(
                _("Welcome! Your workspace is ready. We sent you an email to confirm your address."),
                "success",
            )
            return redirect(url_for("workspace.dashboard", slug=tenant.slug))
    status = 422 if form.errors or form.form_errors else 200
    return render("signup/signup.html", form=form, status=status)


@bp.route("/workspaces/new", methods=["GET", "POST"])
@login_required
def new_workspace():  # noqa: ANN201
    form = NewWorkspaceForm()
    if form.validate_on_submit():
        try:
            tenant = signup.signup(form.company.data, form.slug.data, "", "", "", user=current_user)
        except AccountError as err:
            form_errors(form, err)
        else:
            flash(_("Your new workspace is ready."), "success")
            return redirect(url_for("workspace.dashboard", slug=tenant.slug))
    return render("signup/new_workspace.html", form=form, status=422 if form.errors else 200)


@bp.get("/signup/check-slug")
def check_slug():  # noqa: ANN201
    slug = (request.args.get("slug") or "").strip().lower()
    problem = slug_problem(slug) if slug else None
    return render("_partials/slug_check.html", slug=slug, problem=problem)
