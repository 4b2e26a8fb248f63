"""Queue an email: a row in the outbox now, a send job once the transaction commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import current_app, render_template
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from saas.extensions import db
from saas.models import EmailOutbox


def after_commit(fn: Callable[[], None]) -> None:
    """Run fn once the current transaction commits; never if it rolls back."""
    db.session.info.setdefault("after_commit", []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for fn in session.info.pop("after_commit", []):
        fn()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop("after_commit", None)


def queue_email(
    to: str, subject: str, template: str, tenant_id: int | None = None, **ctx: object
) -> EmailOutbox:
    """Render templates/email/<template>.txt (and .html if present) and queue it for sending."""
    text = render_template(f"email/{template}.txt", **ctx)
    try:
        html = render_template(f"email/{template}.html", **ctx)
    except Exception:  # noqa: BLE001 - the HTML part is optional
        html = None
    domain = current_app.config.get("MAIL_FROM", "localhost").rsplit("@", 1)[-1].strip(">") or "localhost"
    row = EmailOutbox(
        to_addr=to,
        subject=subject,
        body_text=text,
        body_html=html,
        tenant_id=tenant_id,
        message_id=f"<{uuid.uuid4().hex}@{domain}>",
    )
    db.session.add(row)
    db.session.flush()
    outbox_id = row.id

    def send() -> None:
        from workers.email import send_email
        from workers.queues import enqueue

        enqueue(send_email, outbox_id, queue_name="high")

    after_commit(send)
    return row


UNSENT = ("queued", "retrying", "failed")


def cancel(outbox_ids: list[int], tenant_id: int) -> int:
    """Stop this tenant's emails that have not gone out: the send job skips a cancelled row.

    SKIP LOCKED: a row the send job holds is being sent right now; it goes, and the page does not
    wait for the mail server. The caller commits. Returns how many were stopped.
    """
    if not outbox_ids:
        return 0
    rows = db.session.scalars(
        select(EmailOutbox)
        .where(
            EmailOutbox.id.in_(outbox_ids),
            EmailOutbox.tenant_id == tenant_id,
            EmailOutbox.status.in_(UNSENT),
        )
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.status = "cancelled"
    return len(rows)
