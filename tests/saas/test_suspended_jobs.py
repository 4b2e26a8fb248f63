"""Background jobs of a suspended tenant (a real RQ burst worker, a real SMTP server): the tenant's own
work (its outgoing mail, imports, reminders) does not run and is not retried; platform work on it
(backups, the seat sync) goes on; after reactivation the held work runs, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text

from tests.factories import Factory, TenantInfo, add_tenant_row, run_jobs, sql_value, unique
from tests.tenants.customers.conftest import in_tenant, viewer_of
from tests.tenants.customers.routes import make_import


@pytest.fixture
def store(app, tmp_path, monkeypatch):
    """Local-folder storage in a temp instance folder (backups, import files)."""
    monkeypatch.setattr(app, "instance_path", str(tmp_path / "instance"))


def _console(app, info: TenantInfo, action: str) -> None:
    """Suspend or reactivate the tenant as the platform console does (saas.console.services)."""
    from saas.console import services
    from saas.extensions import db
    from saas.models import Tenant, User

    email = Factory(app).user(name="Olga Operator")
    with app.test_request_context():
        operator = db.session.scalar(select(User).where(User.email == email))
        change = services.suspend if action == "suspend" else services.reactivate
        change(db.session.get(Tenant, info.id), operator, f"test: {action}")
        db.session.remove()


def _drain(app) -> int:
    """Run jobs until none are left (a job may queue others); how many ran."""
    ran = 0
    for _ in range(5):
        n = run_jobs(app)
        ran += n
        if not n:
            break
    return ran


def _results(app) -> dict[str, list]:
    """Return values of the jobs finished since the last look, by function; also the ids of failed jobs
    and of jobs waiting for a retry."""
    from rq.job import Job

    from workers.queues import QUEUES, queue

    found: dict[str, list] = {"failed": [], "waiting to retry": []}
    with app.app_context():
        for name in QUEUES:
            q = queue(name)
            for job_id in q.finished_job_registry.get_job_ids():
                job = Job.fetch(job_id, connection=q.connection)
                found.setdefault(job.func_name.rsplit(".", 1)[1], []).append(job.return_value())
                q.finished_job_registry.remove(job)
            found["failed"] += q.failed_job_registry.get_job_ids()
            found["waiting to retry"] += q.scheduled_job_registry.get_job_ids()
    return found


def _outbox(app, outbox_id: int) -> str:
    return sql_value(
        app, "select status || ' ' || attempts from public.email_outbox where id = :o", o=outbox_id
    )


def test_a_suspended_tenants_work_waits_and_platform_work_goes_on(app, factory, smtp, store):
    from saas.backups import services as backups
    from saas.extensions import db
    from saas.mail import queue_email
    from tenants.customers import emails, services
    from tenants.customers.models import Task
    from workers.billing import sync_seats
    from workers.imports import run_import
    from workers.queues import enqueue
    from workers.reminders import fan_out_task_reminders, tenant_task_reminders

    t = factory.tenant(roles=("owner", "sales"))
    bystander = factory.tenant()
    sales_id, sales_email, _m = t.people["sales"]
    customer = f"{unique('cust')}@example.com"
    platform_to, other_to = f"{unique('signup')}@example.com", f"{unique('other')}@example.com"

    # Queued while the tenant is active, not yet run: a customer email, a due reminder's round, an
    # import, a backup and the seat sync; beside them a platform mail and another tenant's mail.
    with in_tenant(app, t):
        owner = viewer_of(t, "owner")
        contact = services.create_contact(owner, {"first_name": "Pat", "last_name": "Lee", "email": customer})
        outbox_id = emails.send_email(owner, "contact", contact.id, "Your quote", "Here it is.").outbox_id
    task_id = add_tenant_row(
        app,
        t,
        "tenants.customers.models:Task",
        title=unique("Call Pat "),
        assignee_id=sales_id,
        reminder_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    enqueue(tenant_task_reminders, t.id)
    import_id = make_import(app, t, user_id=t.people["owner"][0])
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(
            text(f"update \"{t.schema}\".imports set status = 'queued' where id = :i"), {"i": import_id}
        )
    enqueue(run_import, t.id, import_id)
    with app.app_context():
        backup = backups.request_backup(t.id, "manual")
        backups.enqueue_backup(backup)
        backup_id = backup.id
        db.session.remove()
    enqueue(sync_seats, t.id)
    with app.test_request_context():
        queue_email(platform_to, "Confirm", "verify", user=SimpleNamespace(name="Al"), link="http://x/")
        queue_email(
            other_to, "Hi", "customer_email", tenant_id=bystander.id, title="Hi", text="Hi", html=None
        )
        db.session.commit()
        db.session.remove()

    _console(app, t, "suspend")
    run_jobs(app)

    # The tenant's own work did not run: nothing sent, no reminder claimed, nothing imported ...
    assert smtp.to(customer) == [] and smtp.to(sales_email) == []
    assert _outbox(app, outbox_id) == "queued 0"
    with in_tenant(app, t):
        assert db.session.get(Task, task_id).reminded_at is None
    assert sql_value(app, f'select status from "{t.schema}".imports where id = :i', i=import_id) == "queued"
    # ... and each job ended at once, held or skipped: no failure, no retry waiting, nothing queued.
    done = _results(app)
    suspended = f"tenant {t.id} is suspended"
    assert done["send_email"].count(f"held: {suspended}") == 1
    assert done["run_import"] == [f"held: {suspended}"]
    assert done["tenant_task_reminders"] == [f"skipped: {suspended}"]
    assert done["failed"] == [] and done["waiting to retry"] == [] and run_jobs(app) == 0
    # Platform work went on: the backup is good, the seat sync ran (billing off: nothing to follow),
    # the platform's mail and the other tenant's mail went out.
    assert sql_value(app, "select status from public.backups where id = :b", b=backup_id) == "good"
    assert [r.split(",")[0] for r in done["run_backup"]] == [f"backup {backup_id}: good"]
    assert done["sync_seats"] == [None]
    assert len(smtp.to(platform_to)) == 1 and len(smtp.to(other_to)) == 1
    # The every-minute reminder round leaves the suspended tenant out (no job of it, not even skipped).
    enqueue(fan_out_task_reminders)
    _drain(app)
    rounds = _results(app)
    assert rounds["tenant_task_reminders"] and f"skipped: {suspended}" not in rounds["tenant_task_reminders"]
    assert smtp.to(sales_email) == []

    # Reactivated: the held mail and import are queued again and run once; the next reminder round
    # sends the reminder.
    _console(app, t, "reactivate")
    assert run_jobs(app) == 2
    [mail] = smtp.to(customer)
    assert mail["Subject"] == "Your quote" and _outbox(app, outbox_id) == "sent 1"
    assert sql_value(app, f'select status from "{t.schema}".imports where id = :i', i=import_id) == "done"
    imported = f"select count(*) from \"{t.schema}\".contacts where email = 'ann.target@example.com'"
    assert sql_value(app, imported) == 1
    enqueue(fan_out_task_reminders)
    _drain(app)
    assert len(smtp.to(sales_email)) == 1
    with in_tenant(app, t):
        assert db.session.get(Task, task_id).reminded_at is not None
    _console(app, t, "suspend")
    _console(app, t, "reactivate")  # nothing held any more: nothing runs twice
    assert run_jobs(app) == 0 and len(smtp.to(customer)) == 1


def test_a_job_held_just_as_its_tenant_is_reactivated_is_queued_at_once(app, factory):
    """The race: a job saw its tenant suspended, the tenant is reactivated (and its held jobs released)
    before the job adds itself to the held list. The job then finds the tenant active and releases it."""
    from saas.extensions import db
    from workers.context import _hold
    from workers.queues import queue, redis_conn

    t = factory.tenant()
    with app.app_context():
        _hold(t.id, "workers.email.send_email", (987654321,), {})
        assert redis_conn().llen(f"crm:held-jobs:{t.id}") == 0
        queued = [(j.func_name, j.args) for j in queue("default").get_jobs()]
        db.session.remove()
    assert queued.count(("workers.email.send_email", (987654321,))) == 1
