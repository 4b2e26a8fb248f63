"""The email job: deliver one outbox row over SMTP (or into instance/mail/ in development)."""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from flask import current_app
from sqlalchemy import select

from workers.context import job_context


def build_message(row, sender: str) -> EmailMessage:  # noqa: ANN001 - an EmailOutbox row
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = row.to_addr
    msg["Subject"] = row.subject
    msg["Message-ID"] = row.message_id
    msg["Date"] = formatdate(localtime=False)
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


def send_email(outbox_id: int) -> str:
    """Idempotent: the row is locked while sending and a row already sent is skipped."""
    from saas.extensions import db
    from saas.models import EmailOutbox

    with job_context():
        row = db.session.execute(
            select(EmailOutbox).where(EmailOutbox.id == outbox_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            return "missing"
        if row.status == "sent":
            db.session.rollback()
            return "already sent"
        row.attempts += 1
        try:
            deliver(
                build_message(row, current_app.config["MAIL_FROM"]),
                current_app.config["SMTP_URL"],
                current_app.config["MAIL_DIR"],
            )
        except Exception as exc:
            row.status = "retrying"
            row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            db.session.commit()
            raise
        row.status = "sent"
        row.sent_at = datetime.now(UTC)
        row.last_error = None
        db.session.commit()
        return "sent"
