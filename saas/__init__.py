"""The platform: app factory, tenancy, auth, signup, roles, audit, CLI, migrations."""

from __future__ import annotations

import os
import uuid
from typing import Any

from flask import Flask, g, request, session
from flask_babel import get_locale as babel_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from saas.config import INSTANCE, Config


def create_app(config: type[Config] | None = None, **overrides: Any) -> Flask:
    from saas import audit, i18n, tenancy
    from saas.extensions import babel, csrf, db, htmx, login_manager
    from saas.tenancy import TenantSession

    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        from saas.embedded import ensure_services

        ensure_services(INSTANCE)

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(
        __name__,
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
        instance_path=str(INSTANCE),
    )
    app.config.from_object(config or Config)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    app.config["REDIS_URL"] = os.environ["REDIS_URL"]
    app.config.update(overrides)
    app.config["SQLALCHEMY_DATABASE_URI"] = _psycopg_url(app.config["SQLALCHEMY_DATABASE_URI"])

    db.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    i18n.init_app(app)  # WTForms' own messages in zh_Hans / zh_Hant / th too
    audit.install(TenantSession)

    from saas import monitoring

    monitoring.init_sentry(app)

    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.localize_callback = str  # flash the text of the lazy string, in the request's language
    login_manager.login_message_category = "warning"

    @app.before_request
    def _start() -> None:
        tenancy.unbind()
        g.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        audit.set_actor(audit.Actor(ip=client_ip(), request_id=g.request_id))

    @app.teardown_request
    def _end(_exc: BaseException | None) -> None:
        tenancy.unbind()

    @app.after_request
    def _headers(resp):  # noqa: ANN001, ANN202
        resp.headers.add("Vary", "HX-Request")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers["X-Request-ID"] = g.get("request_id", "")
        return resp

    from saas import views

    views.register(app)
    from saas.console.views import bp as console_bp

    app.register_blueprint(console_bp)  # /console: platform operators only
    from saas.billing.webhooks import bp as stripe_webhook_bp

    app.register_blueprint(stripe_webhook_bp)  # POST /billing/stripe/webhook

    from saas.cli import register_cli

    register_cli(app)
    return app


def _psycopg_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def client_ip() -> str:
    # Behind a proxy, ProxyFix (saas/wsgi.py) sets remote_addr from X-Forwarded-For.
    return request.remote_addr or ""


def select_locale() -> str:
    from flask import current_app

    langs = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in langs:
        return chosen
    if current_user and getattr(current_user, "is_authenticated", False) and current_user.locale in langs:
        return current_user.locale
    best = request.accept_languages.best_match(["en", "zh-CN", "zh-TW", "zh-HK", "zh", "th"])
    return {"zh-CN": "zh_Hans", "zh": "zh_Hans", "zh-TW": "zh_Hant", "zh-HK": "zh_Hant"}.get(
        best or "", best or "en"
    )


def select_timezone() -> str | None:
    tenant = g.get("tenant")
    return tenant.timezone if tenant is not None else None


def current_locale() -> str:
    return str(babel_locale())
