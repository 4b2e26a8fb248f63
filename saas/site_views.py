"""Site-wide routes: health, language switch, and the development mailbox."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

from flask import Blueprint, abort, current_app, jsonify, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import text

from saas.extensions import db
from saas.pages import render
from workers.queues import redis_conn

bp = Blueprint("site", __name__)


@bp.get("/healthz")
def healthz():  # noqa: ANN201
    checks = {}
    for name, probe in (
        ("database", lambda: db.session.execute(text("select 1")).scalar()),
        ("redis", lambda: redis_conn().ping()),
    ):
        started = time.perf_counter()
        try:
            probe()
            checks[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks[name] = {"ok": False, "error": type(exc).__name__}
    ok = all(c["ok"] for c in checks.values())
    return jsonify(status="ok" if ok else "degraded", **checks), 200 if ok else 503


@bp.post("/lang/<code>")
def set_language(code: str):  # noqa: ANN201
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    session["lang"] = code
    if current_user.is_authenticated:
        current_user.locale = code
        db.session.commit()
    target = request.form.get("next") or request.referrer or url_for("signup.landing")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("signup.landing")
    return redirect(target)


def _mail_dir() -> Path:
    if not current_app.config.get("DEV_PAGES") or current_app.config.get("SMTP_URL"):
        abort(404)
    return Path(current_app.config["MAIL_DIR"])


@bp.get("/dev/mail")
def dev_mail():  # noqa: ANN201
    folder = _mail_dir()
    messages = []
    for path in sorted(folder.glob("*.eml"), reverse=True)[:200]:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        messages.append({"id": path.stem, "to": msg["To"], "subject": msg["Subject"], "date": msg["Date"]})
    return render("site/dev_mail.html", messages=messages)


@bp.get("/dev/mail/<msg_id>")
def dev_mail_message(msg_id: str):  # noqa: ANN201
    folder = _mail_dir()
    if not msg_id.replace("T", "").isdigit():
        abort(404)
    path = folder / f"{msg_id}.eml"
    if not path.exists():
        abort(404)
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    return render("site/dev_mail_message.html", msg=msg, body=body.get_content() if body else "")


@bp.get("/files/<token>")
def stored_file(token: str):  # noqa: ANN201
    """A local-folder download link made by saas.storage (S3 gives presigned URLs instead)."""
    from flask import send_file

    from saas.storage import LocalStorage, resolve_link, storage

    found = resolve_link(token)
    if found is None:
        message = _("This download link has expired or is not valid.")
        return render("errors/error.html", None, 410, status_code=410, message=message)
    area, key, filename = found
    store = storage(area)
    if not isinstance(store, LocalStorage) or not store.path(key).is_file():
        abort(404)
    return send_file(store.path(key), as_attachment=True, download_name=filename, max_age=0)
