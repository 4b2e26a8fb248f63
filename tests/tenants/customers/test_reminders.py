"""Task reminders (a real RQ burst worker, a real SMTP server) and the "no contact in N days" rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.factories import run_jobs, unique
from tests.saas.conftest import SmtpServer
from tests.tenants.customers.conftest import in_tenant, viewer_of


@pytest.fixture
def smtp(app, monkeypatch):
    server = SmtpServer()
    server.start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    yield server
    server.stop()


def _drain(app) -> None:
    """Run jobs until none are left (a job may queue others: per-tenant jobs, then emails)."""
    for _ in range(5):
        if not run_jobs(app):
            return


def _task(app, crm, **values) -> int:
    from saas.extensions import db
    from tenants.customers.models import Task

    with in_tenant(app, crm):
        task = Task(**values)
        db.session.add(task)
        db.session.commit()
        return task.id


def _reminded_at(app, crm, task_id):
    from saas.extensions import db
    from tenants.customers.models import Task

    with in_tenant(app, crm):
        return db.session.get(Task, task_id).reminded_at


def test_due_reminders_are_emailed_once(app, crm, smtp):
    from workers.queues import enqueue
    from workers.reminders import fan_out_task_reminders, tenant_task_reminders

    sales_id, sales_email, _m = crm.people["sales"]
    past = datetime.now(UTC) - timedelta(minutes=5)
    title = unique("Call Somchai ")
    due = _task(app, crm, title=title, assignee_id=sales_id, reminder_at=past)
    later = _task(
        app, crm, title=unique("Later "), assignee_id=sales_id, reminder_at=past + timedelta(days=2)
    )
    done = _task(app, crm, title=unique("Done "), assignee_id=sales_id, reminder_at=past, done_at=past)
    enqueue(fan_out_task_reminders)
    _drain(app)

    mails = [m for m in smtp.to(sales_email) if title in m["Subject"]]
    assert len(mails) == 1
    body = mails[0].get_body(("plain",)).get_content()
    assert title in body and f"/{crm.slug}/customers/tasks" in body
    assert _reminded_at(app, crm, due) is not None
    assert _reminded_at(app, crm, later) is None
    assert _reminded_at(app, crm, done) is None
    for m in smtp.messages:
        assert "Later " not in m["Subject"] and "Done " not in m["Subject"]

    # A retried (or repeated) job reminds nobody twice.
    with app.app_context():
        assert tenant_task_reminders(crm.id) == 0
    enqueue(fan_out_task_reminders)
    _drain(app)
    assert len([m for m in smtp.to(sales_email) if title in m["Subject"]]) == 1


def test_a_moved_reminder_is_sent_again(app, crm, smtp):
    from tenants.customers import tasks
    from workers.reminders import tenant_task_reminders

    past = datetime.now(UTC) - timedelta(minutes=1)
    title = unique("Moved ")
    with in_tenant(app, crm):
        viewer = viewer_of(crm, "owner")
        task = tasks.create_task(viewer, {"title": title, "reminder_at": past})
        task_id = task.id
    with app.app_context():
        assert tenant_task_reminders(crm.id) >= 1
    with in_tenant(app, crm):
        tasks.update_task(viewer, task_id, {"reminder_at": datetime.now(UTC) - timedelta(seconds=5)})
    with app.app_context():
        assert tenant_task_reminders(crm.id) >= 1
    _drain(app)
    assert len([m for m in smtp.to(crm.email("owner")) if title in m["Subject"]]) == 2


def test_reminder_jobs_are_scheduled():
    from workers.reminders import fan_out_neglect_rule, fan_out_task_reminders
    from workers.schedules import register_periodic

    seen = {}

    class Cron:
        def register(self, func, queue_name, cron):
            seen[func] = cron

    register_periodic(Cron())
    assert seen[fan_out_task_reminders] == "* * * * *"
    assert fan_out_neglect_rule in seen


# The "no contact in N days" rule ------------------------------------------------------------


def _company(app, crm, stage: str, days_since_contact: int | None, age_days: int = 100) -> int:
    from saas.extensions import db
    from tenants.customers.models import Activity, Company

    now = datetime.now(UTC)
    with in_tenant(app, crm):
        company = Company(
            name=unique("Neglect Co "),
            lifecycle_stage=stage,
            owner_id=crm.people["sales"][0],
            created_at=now - timedelta(days=age_days),
        )
        db.session.add(company)
        db.session.flush()
        if days_since_contact is not None:
            db.session.add(
                Activity(
                    kind="call",
                    subject="hi",
                    company_id=company.id,
                    occurred_at=now - timedelta(days=days_since_contact),
                )
            )
        db.session.commit()
        return company.id


def _rule_tasks(app, crm, company_id: int) -> list:
    from saas.extensions import db
    from tenants.customers.models import Task

    with in_tenant(app, crm):
        return [
            (t.id, t.assignee_id, t.done_at)
            for t in db.session.scalars(select(Task).where(Task.company_id == company_id).order_by(Task.id))
        ]


def test_neglected_customers_get_one_task_for_their_owner(app, crm):
    from tenants.customers import reminders
    from workers.queues import enqueue
    from workers.reminders import fan_out_neglect_rule, tenant_neglect_rule

    with in_tenant(app, crm):
        reminders.save_rule(viewer_of(crm, "owner"), False, 10)
    old = _company(app, crm, "customer", 20)
    never = _company(app, crm, "loyal", None, age_days=30)
    recent = _company(app, crm, "customer", 2)
    lead = _company(app, crm, "lead", 40)
    young = _company(app, crm, "customer", None, age_days=3)

    with app.app_context():
        assert tenant_neglect_rule(crm.id) == 0  # the rule is off
    with in_tenant(app, crm):
        reminders.save_rule(viewer_of(crm, "owner"), True, 10)

    enqueue(fan_out_neglect_rule)
    _drain(app)
    sales_id = crm.people["sales"][0]
    for company_id in (old, never):
        made = _rule_tasks(app, crm, company_id)
        assert [(a, d) for _i, a, d in made] == [(sales_id, None)], company_id
    for company_id in (recent, lead, young):
        assert _rule_tasks(app, crm, company_id) == []

    # Never a second task while the first is open; a new one once it is done.
    with app.app_context():
        tenant_neglect_rule(crm.id)
    assert len(_rule_tasks(app, crm, old)) == 1
    from tenants.customers import tasks

    first_id = _rule_tasks(app, crm, old)[0][0]
    with in_tenant(app, crm):
        tasks.set_done(viewer_of(crm, "owner"), first_id)
    with app.app_context():
        tenant_neglect_rule(crm.id)
    after = _rule_tasks(app, crm, old)
    assert len(after) == 2 and after[1][2] is None
    assert len(_rule_tasks(app, crm, never)) == 1
    with in_tenant(app, crm):
        reminders.save_rule(viewer_of(crm, "owner"), False, 10)


def test_rule_form(app, crm, login):
    url = f"/{crm.slug}/customers/reminder-rule"
    owner = login("owner")
    page = owner.get(url)
    assert page.status_code == 200 and "Days without contact" in page.get_data(as_text=True)
    resp = owner.form(url, {"enabled": "on", "days": "0"})
    assert resp.status_code == 422
    assert "between 1 and 3650" in resp.get_data(as_text=True)
    resp = owner.form(url, {"days": "45"})
    assert resp.status_code == 302
    from tenants.customers import reminders

    with in_tenant(app, crm):
        rule = reminders.get_rule()
        assert (rule.enabled, rule.days) == (False, 45)
    assert login("sales").get(url).status_code == 403
    assert login("sales").form(url, {"enabled": "on", "days": "5"}).status_code == 403
