"""Blueprint registration and the error pages."""

from __future__ import annotations

from flask import Flask, g, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from saas.crypto import CryptoError
from saas.extensions import login_manager
from saas.pages import render, wants_partial
from saas.permissions import can, role_for


def register(app: Flask) -> None:
    from saas import accounts
    from saas.auth_views import bp as auth_bp
    from saas.signup_views import bp as signup_bp
    from saas.site_views import bp as site_bp
    from saas.workspace import bp as workspace_bp
    from tenants.api.views import bp as api_bp

    login_manager.user_loader(accounts.load_user)

    from saas import current_locale

    # The same functions for every render (they read the request when called): built once.
    helpers = {
        "can": can,
        "current_locale": current_locale,
        "role_name": _role_name,
        "nav_items": _nav_items,
        "admin_items": _admin_items,
    }
    app.context_processor(lambda: helpers)

    app.register_blueprint(site_bp)
    app.register_blueprint(signup_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(api_bp)  # /api/v1/...: bearer tokens, JSON only
    app.register_blueprint(workspace_bp)  # last: its "/<slug>/" prefix catches the rest

    @app.template_filter("dict_without")
    def _dict_without(d: dict, *keys: str) -> dict:
        return {k: v for k, v in d.items() if k not in keys}

    @app.errorhandler(CSRFError)
    def _csrf(err: CSRFError):  # noqa: ANN202
        return _error(400, _("Your form expired or was sent from elsewhere. Reload the page and try again."))

    @app.errorhandler(403)
    def _forbidden(_err):  # noqa: ANN001, ANN202
        return _error(403, _("Your role does not allow this. Ask an admin of this workspace for access."))

    @app.errorhandler(404)
    def _not_found(_err):  # noqa: ANN001, ANN202
        return _error(404, _("There is nothing here. The address may be wrong, or the record was removed."))

    @app.errorhandler(429)
    def _too_many(_err):  # noqa: ANN001, ANN202
        return _error(429, _("Too many requests. Wait a little and try again."))

    @app.errorhandler(405)
    def _method(_err):  # noqa: ANN001, ANN202
        return _error(405, _("This address does not take that kind of request."))

    @app.errorhandler(CryptoError)
    def _crypto(err: CryptoError):  # noqa: ANN202
        from saas.extensions import db

        db.session.rollback()
        app.logger.error("encryption: %s", err)  # the operator's message (saas.crypto); no value in it
        return _error(
            500,
            _("Encrypted data could not be read: an encryption key is missing or wrong. Tell the operators."),
        )

    @app.errorhandler(500)
    def _server_error(_err):  # noqa: ANN001, ANN202
        from saas.extensions import db

        db.session.rollback()  # nothing half-written survives an error
        return _error(500, _("Something went wrong on our side. It was recorded; please try again."))


def _role_name(key: str) -> str:
    return str(role_for(key).name) if not key.startswith("custom:") or g.get("tenant") else _("Custom role")


def _nav_items() -> list:
    from tenants.registry import NAV

    return [i for i in NAV if can(i.module)]


def _admin_items() -> list:
    from tenants.registry import ADMIN_MENU

    return [i for i in ADMIN_MENU if can(*i.permission)]


def _error(status: int, message: str):  # noqa: ANN202
    if request.path.startswith("/api/"):
        from tenants.api.errors import error_response

        return error_response(status, message)
    if wants_partial():
        # htmx swaps nothing on an error status by default; the page's script shows this as a toast.
        return render(
            "errors/error.html", "_partials/error_message.html", status, status_code=status, message=message
        )
    return render("errors/error.html", status=status, status_code=status, message=message)
