"""Task reminders and the rule "no contact with a customer in N days -> a task for its owner".

Both run from jobs (workers/reminders.py) with the tenant bound; both are idempotent: a reminder
is claimed (reminded_at set) in the same transaction that queues its email, and the rule makes no
second task for a company while the task it made before is still open.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, select, update

from saas import tenancy
from saas.extensions import db
from saas.models import Membership, Tenant, User
from tenants.customers.errors import CustomerError
from tenants.customers.extra_models import ReminderRule, RuleTask
from tenants.customers.models import Activity, Company, Task
from tenants.customers.people import Viewer

RULE_STAGES = ("customer", "loyal")
MAX_DAYS = 3650


# Reminders of tasks -------------------------------------------------------------------------


def send_due_reminders(now: datetime | None = None) -> int:
    """Claim every due reminder of the bound tenant and queue its email, in one transaction."""
    from saas.mail import queue_email

    now = now or datetime.now(UTC)
    bound = tenancy.require_tenant()
    claimed = db.session.execute(
        update(Task)
        .where(Task.reminder_at <= now, Task.done_at.is_(None), Task.reminded_at.is_(None))
        .values(reminded_at=now)
        .returning(Task.id, Task.title, Task.due_at, Task.assignee_id)
    ).all()
    tenant = db.session.get(Tenant, bound.id)
    assignees = {t.assignee_id for t in claimed if t.assignee_id}
    users = {}
    if assignees:
        users = {
            u.id: u
            for u in db.session.scalars(
                select(User)
                .join(Membership, Membership.user_id == User.id)
                .where(
                    Membership.tenant_id == bound.id,
                    Membership.is_active.is_(True),
                    User.id.in_(assignees),
                )
            )
        }
    sent = 0
    for task in claimed:
        user = users.get(task.assignee_id)
        if user is None:
            continue
        with force_locale(user.locale or tenant.locale or "en"):
            link = url_for("workspace.customers.my_tasks", slug=bound.slug, _external=True)
            queue_email(
                user.email,
                _("Reminder: %(title)s", title=task.title),
                "task_reminder",
                tenant_id=bound.id,
                user=user,
                task=task,
                tenant=tenant,
                link=link,
            )
        sent += 1
    db.session.commit()
    return sent


# The "no contact in N days" rule ------------------------------------------------------------


def get_rule() -> ReminderRule:
    return db.session.get(ReminderRule, 1) or ReminderRule(id=1, enabled=False, days=30)


def save_rule(viewer: Viewer, enabled: bool, days: Any) -> ReminderRule:
    try:
        number = int(str(days).strip())
    except (TypeError, ValueError):
        raise CustomerError(_("Enter a number of days."), "days") from None
    if not 1 <= number <= MAX_DAYS:
        raise CustomerError(_("Enter a number of days between 1 and %(max)d.", max=MAX_DAYS), "days")
    rule = db.session.get(ReminderRule, 1)
    if rule is None:
        rule = ReminderRule(id=1)
        db.session.add(rule)
    rule.enabled, rule.days, rule.updated_by = bool(enabled), number, viewer.user_id
    db.session.commit()
    return rule


def create_neglect_tasks(now: datetime | None = None) -> int:
    """One open task per neglected customer company for its owner; none while an earlier one is open."""
    rule = db.session.get(ReminderRule, 1)
    if rule is None or not rule.enabled:
        return 0
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=rule.days)
    last_activity = (
        select(func.max(Activity.occurred_at)).where(Activity.company_id == Company.id).scalar_subquery()
    )
    open_rule_task = exists().where(
        RuleTask.company_id == Company.id,
        RuleTask.task_id == Task.id,
        Task.done_at.is_(None),
    )
    companies = db.session.execute(
        select(Company.id, Company.name, Company.owner_id, last_activity.label("last"))
        .where(
            Company.lifecycle_stage.in_(RULE_STAGES),
            Company.owner_id.is_not(None),
            and_(func.coalesce(last_activity, Company.created_at) < cutoff),
            ~open_rule_task,
        )
        .order_by(Company.id)
        .with_for_update(of=Company, skip_locked=True)
    ).all()
    made = 0
    tenant = db.session.get(Tenant, tenancy.require_tenant().id)
    for company_id, name, owner_id, _last in companies:
        with force_locale(tenant.locale or "en"):
            title = _("Get back in touch with %(name)s", name=name)[:200]
            notes = _("Nobody has been in touch for %(days)d days.", days=rule.days)
        task = Task(
            title=title,
            notes=notes,
            due_at=now + timedelta(days=1),
            assignee_id=owner_id,
            company_id=company_id,
        )
        db.session.add(task)
        db.session.flush()
        db.session.add(RuleTask(task_id=task.id, company_id=company_id))
        made += 1
    db.session.commit()
    return made
