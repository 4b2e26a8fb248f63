"""Sign-in and out, password reset, email verification, invitations, workspace switch."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from saas import accounts
from saas.accounts import AccountError
from saas.extensions import db
from saas.forms import AcceptInviteForm, ForgotForm, LoginForm, ResetForm
from saas.pages import form_errors, render
from tenants.admin import services as admin

bp = Blueprint("auth", __name__)


def _safe_next(default: str) -> str:
    target = request.args.get("next") or request.form.get("next") or ""
    return target if target.startswith("/") and not target.startswith("//") else default


def _home_for(user) -> str:  # noqa: ANN001
    spaces = accounts.workspaces_of(user)
    if not spaces:
        return url_for("auth.workspaces")
    for tenant, _m in spaces:
        if tenant.id == user.last_tenant_id:
            return url_for("workspace.dashboard", slug=tenant.slug)
    if len(spaces) == 1:
        return url_for("workspace.dashboard", slug=spaces[0][0].slug)
    return url_for("auth.workspaces")


@bp.route("/login", methods=["GET", "POST"])
def login():  # noqa: ANN201
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(_home_for(current_user)))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = accounts.authenticate(form.email.data, form.password.data, request.remote_addr or "")
        if result.user is not None:
            login_user(result.user, remember=form.remember.data)
            return redirect(_safe_next(_home_for(result.user)))
        form.form_errors.append(result.error)
        status = 429 if result.limited else 401
    elif form.errors:
        status = 422
    return render("auth/login.html", form=form, status=status)


@bp.post("/logout")
def logout():  # noqa: ANN201
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():  # noqa: ANN201
    form = ForgotForm()
    if form.validate_on_submit():
        try:
            accounts.request_password_reset(form.email.data, request.remote_addr or "")
        except AccountError as err:
            form_errors(form, err)
            return render("auth/forgot.html", form=form, status=429)
        flash(_("If an account exists for this address, we sent it a link to reset the password."), "info")
        return redirect(url_for("auth.login"))
    return render("auth/forgot.html", form=form, status=422 if form.errors else 200)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):  # noqa: ANN201
    problem = accounts.peek_token(token, "reset")
    if problem:
        return render("auth/link_problem.html", message=problem, status=410)
    form = ResetForm()
    if form.validate_on_submit():
        try:
            user = accounts.reset_password(token, form.password.data)
        except AccountError as err:
            form_errors(form, err)
        else:
            logout_user()
            login_user(user)
            flash(_("Your password is changed. Other sessions were signed out."), "success")
            return redirect(_home_for(user))
    return render("auth/reset.html", form=form, status=422 if form.errors else 200)


@bp.get("/verify/<token>")
def verify_email(token: str):  # noqa: ANN201
    try:
        user = accounts.verify_email(token)
    except AccountError as err:
        return render("auth/link_problem.html", message=str(err), status=410)
    flash(_("Thank you, %(email)s is confirmed.", email=user.email), "success")
    return redirect(url_for("auth.login"))


@bp.post("/verify/resend")
@login_required
def resend_verification():  # noqa: ANN201
    if current_user.email_verified_at is None:
        accounts.send_verification(current_user)
        db.session.commit()
        flash(_("We sent you a new confirmation link."), "info")
    return redirect(request.referrer or _home_for(current_user))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):  # noqa: ANN201
    try:
        inv = admin.invitation_by_token(token)
    except AccountError as err:
        return render("auth/link_problem.html", message=str(err), status=410)
    form = AcceptInviteForm()
    signed_in = current_user.is_authenticated
    if signed_in and current_user.email != inv.email:
        return render("auth/invite.html", inv=inv, form=None, wrong_account=True, status=403)
    existing_account = not signed_in and accounts.user_by_email(inv.email) is not None
    if request.method == "POST" and (signed_in or form.validate_on_submit()):
        try:
            tenant, user = admin.accept_invitation(
                token, current_user if signed_in else None, form.name.data or "", form.password.data or ""
            )
        except AccountError as err:
            form_errors(form, err)
        else:
            if not signed_in:
                login_user(user)
            flash(_("Welcome to %(name)s.", name=tenant.name), "success")
            return redirect(url_for("workspace.dashboard", slug=tenant.slug))
    return render(
        "auth/invite.html",
        inv=inv,
        form=form,
        existing_account=existing_account,
        status=422 if form.errors or form.form_errors else 200,
    )


@bp.get("/workspaces")
@login_required
def workspaces():  # noqa: ANN201
    return render("auth/workspaces.html", spaces=accounts.workspaces_of(current_user))


@bp.post("/workspaces/<slug>/switch")
@login_required
def switch(slug: str):  # noqa: ANN201
    for tenant, _m in accounts.workspaces_of(current_user):
        if tenant.slug == slug:
            current_user.last_tenant_id = tenant.id
            db.session.commit()
            return redirect(url_for("workspace.dashboard", slug=slug))
    abort(404)
