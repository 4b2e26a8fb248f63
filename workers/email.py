"""The email job: deliver one outbox row over SMTP (or into instance/mail/ in development)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from flask import current_app
from sqlalchemy import select

from workers.context import job_context, refuse_suspended, tenant_job

log = logging.getLogger(__name__)

# Tenant modules that keep their own record of a mail (the CRM's timeline) register here. Each hook
# gets the outbox row, runs inside the row's tenant and in the send's transaction (a savepoint):
#   HEADER_HOOKS: (row) -> headers to set on the message (From, Reply-To), before it goes out;
#   STATUS_HOOKS: (row) after every attempt, row.status then being "sent", "retrying" or "failed".
HEADER_HOOKS: list[Callable[[Any], dict[str, str]]] = []
STATUS_HOOKS: list[Callable[[Any], None]] = []


def on_headers(fn: Callable[[Any], dict[str, str]]) -> Callable[[Any], dict[str, str]]:
    if fn not in HEADER_HOOKS:
        HEADER_HOOKS.append(fn)
    return fn


def on_status(fn: Callable[[Any], None]) -> Callable[[Any], None]:
    if fn not in STATUS_HOOKS:
        STATUS_HOOKS.append(fn)
    return fn


@contextmanager
def _in_row_tenant(row) -> Iterator[bool]:  # noqa: ANN001 - an EmailOutbox row
    """Bind the row's tenant (from the registry) around the hooks; False for a platform mail."""
    from saas import tenancy
    from saas.extensions import db
    from saas.models import Tenant

    tenant = db.session.get(Tenant, row.tenant_id) if row.tenant_id else None
    if tenant is None or tenant.status == "deleted":
        yield False
        return
    with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
        yield True


def _extra_headers(row) -> dict[str, str]:  # noqa: ANN001
    headers: dict[str, str] = {}
    if not HEADER_HOOKS or not row.tenant_id:
        return headers
    from saas.extensions import db

    with _in_row_tenant(row) as bound, db.session.begin_nested():
        if bound:
            for hook in HEADER_HOOKS:
                headers.update(hook(row) or {})
    return headers


def _report_status(row) -> None:  # noqa: ANN001
    """Tell the hooks what became of the row; their failure never undoes the send's own bookkeeping."""
    if not STATUS_HOOKS or not row.tenant_id:
        return
    from saas.extensions import db

    try:
        with _in_row_tenant(row) as bound, db.session.begin_nested():
            if bound:
                for hook in STATUS_HOOKS:
                    hook(row)
    except Exception:
        log.exception("email status hook failed for outbox row %s", row.id)


def _last_attempt() -> bool:
    """Whether this run is the job's last try (RQ retries it no more after a failure)."""
    from rq import get_current_job

    job = get_current_job()
    return job is not None and not (job.retries_left and job.retries_left > 0)


def build_message(
    row,  # noqa: ANN001 - an EmailOutbox row
    sender: str,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """The message of an outbox row; a hook's headers may set From and Reply-To, nothing else."""
    headers = headers or {}
    msg = EmailMessage()
    msg["From"] = headers.get("From") or sender
    msg["To"] = row.to_addr
    msg["Subject"] = row.subject
    msg["Message-ID"] = row.message_id
    msg["Date"] = formatdate(localtime=False)
    if headers.get("Reply-To"):
        msg["Reply-To"] = headers["Reply-To"]
    msg.set_content(row.body_text)
    if row.body_html:
        msg.add_alternative(row.body_html, subtype="html")
    return msg


def deliver(msg: EmailMessage, smtp_url: str, mail_dir: str) -> None:
    if not smtp_url:
        folder = Path(mail_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        (folder / f"{stamp}.eml").write_bytes(bytes(msg))
        return
    url = urlparse(smtp_url)
    opts = {k: v[0] for k, v in parse_qs(url.query).items()}
    host, port = url.hostname or "localhost", url.port
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port or 465, timeout=30, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(host, port or 25, timeout=30)
    with client:
        if url.scheme == "smtp" and opts.get("starttls") in {"1", "true", "yes"}:
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(msg)


@tenant_job(hold=True)
def send_email(outbox_id: int) -> str:
    """Idempotent: the row is locked while sending and a row already sent is skipped. A suspended
    tenant's mail (its invitations, customer emails, reminders) stays unsent and the job is held until
    reactivation; platform mail (no tenant) always goes."""
    from saas.extensions import db
    from saas.models import EmailOutbox, Tenant

    with job_context():
        row = db.session.execute(
            select(EmailOutbox).where(EmailOutbox.id == outbox_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            return "missing"
        if row.status in ("sent", "cancelled"):  # cancelled: its timeline entry was deleted
            db.session.rollback()
            return "already sent" if row.status == "sent" else "cancelled"
        if row.tenant_id:
            refuse_suspended(db.session.get(Tenant, row.tenant_id))  # the row is left as it is
        row.attempts += 1
        try:
            deliver(
                build_message(row, current_app.config["MAIL_FROM"], _extra_headers(row)),
                current_app.config["SMTP_URL"],
                current_app.config["MAIL_DIR"],
            )
        except Exception as exc:
            row.status = "failed" if _last_attempt() else "retrying"
            row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            _report_status(row)
            db.session.commit()
            raise
        row.status = "sent"
        row.sent_at = datetime.now(UTC)
        row.last_error = None
        _report_status(row)
        db.session.commit()
        return "sent"
