"""The email job on a real RQ worker and a real SMTP server: sent exactly once, retried safely,
and written to MAIL_DIR (listed on /dev/mail) when no SMTP server is configured."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from tests.factories import release_retries, run_jobs, unique


def _queue(app, to: str, subject: str = "Confirm your email address") -> int:
    """Queue a mail as the app does (outbox row, job after commit); return the outbox id."""
    from saas.extensions import db
    from saas.mail import queue_email

    with app.test_request_context():
        row = queue_email(
            to, subject, "verify", user=SimpleNamespace(name="Pat"), link="http://crm.localhost/verify/abc"
        )
        db.session.commit()
        outbox_id = row.id
        db.session.remove()
    return outbox_id


def _row(app, outbox_id: int) -> dict:
    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return dict(
            conn.exec_driver_sql("select * from public.email_outbox where id = %s", (outbox_id,))
            .mappings()
            .one()
        )


def _send_now(app, outbox_id: int) -> str:
    from workers.email import send_email

    with app.app_context():
        return send_email(outbox_id)


def _address() -> str:
    return f"{unique('mail')}@example.com"


def test_send_job_delivers_over_smtp_once(app, smtp):
    to = _address()
    outbox_id = _queue(app, to)
    assert _row(app, outbox_id)["status"] == "queued"
    assert run_jobs(app) == 1
    [msg] = smtp.to(to)
    row = _row(app, outbox_id)
    assert msg["Subject"] == "Confirm your email address"
    assert msg["Message-ID"] == row["message_id"]
    assert msg["From"] == app.config["MAIL_FROM"]
    assert "http://crm.localhost/verify/abc" in msg.get_body(preferencelist=("plain",)).get_content()
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] is not None
    assert row["last_error"] is None
    assert run_jobs(app) == 0 and len(smtp.to(to)) == 1


def test_a_rolled_back_mail_is_never_sent(app, smtp):
    from saas.extensions import db
    from saas.mail import queue_email

    to = _address()
    with app.test_request_context():
        queue_email(to, "Never", "verify", user=SimpleNamespace(name="Pat"), link="http://x/")
        db.session.rollback()
        db.session.remove()
    assert run_jobs(app) == 0 and smtp.to(to) == []


def test_a_retried_job_sends_once(app, smtp):
    from workers.email import send_email
    from workers.queues import enqueue

    to = _address()
    outbox_id = _queue(app, to)
    with app.app_context():
        # The same send queued again, as a retry after a lost acknowledgement would.
        enqueue(send_email, outbox_id, queue_name="high")
        enqueue(send_email, outbox_id, queue_name="default")
    assert run_jobs(app) == 3
    assert len(smtp.to(to)) == 1
    assert _send_now(app, outbox_id) == "already sent"
    assert len(smtp.to(to)) == 1
    row = _row(app, outbox_id)
    assert row["status"] == "sent" and row["attempts"] == 1


def test_two_workers_at_once_send_once(app, smtp):
    to = _address()
    outbox_id = _queue(app, to)
    results: list[str] = []
    start = threading.Barrier(2)

    def work() -> None:
        start.wait()
        results.append(_send_now(app, outbox_id))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == ["already sent", "sent"]
    assert len(smtp.to(to)) == 1


def test_send_email_for_a_missing_row(app, smtp):
    assert _send_now(app, 987654321) == "missing"
    assert smtp.messages == []


def test_smtp_down_marks_retrying_then_sends_once(app, smtp):
    to = _address()
    outbox_id = _queue(app, to)
    smtp.stop()
    with pytest.raises(ConnectionRefusedError):
        _send_now(app, outbox_id)
    row = _row(app, outbox_id)
    assert row["status"] == "retrying" and row["attempts"] == 1 and row["sent_at"] is None
    assert row["last_error"].startswith("ConnectionRefusedError")

    smtp.start()
    assert _send_now(app, outbox_id) == "sent"
    assert _send_now(app, outbox_id) == "already sent"
    assert len(smtp.to(to)) == 1
    row = _row(app, outbox_id)
    assert row["status"] == "sent" and row["attempts"] == 2 and row["last_error"] is None


def test_worker_retries_with_back_off_until_the_server_is_back(app, smtp):
    from rq.job import Job, JobStatus

    from workers.queues import queue

    to = _address()
    smtp.stop()
    outbox_id = _queue(app, to)
    with app.app_context():
        [job_id] = queue("high").job_ids
    assert run_jobs(app) == 1
    with app.app_context():
        job = Job.fetch(job_id, connection=queue("high").connection)
        registry = queue("high").scheduled_job_registry
        # Failed once, scheduled for a later try (not failed for good, not run again at once).
        assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == 3
        assert job_id in registry.get_job_ids()
    assert run_jobs(app) == 0
    row = _row(app, outbox_id)
    assert row["status"] == "retrying" and "ConnectionRefusedError" in row["last_error"]

    smtp.start()
    assert release_retries(app) == 1  # its time comes: RQ's scheduler puts it back on the queue
    assert run_jobs(app) == 1
    assert len(smtp.to(to)) == 1
    with app.app_context():
        assert Job.fetch(job_id, connection=queue("high").connection).get_status() == JobStatus.FINISHED
    row = _row(app, outbox_id)
    assert row["status"] == "sent" and row["attempts"] == 2
    assert release_retries(app) == 0 and run_jobs(app) == 0 and len(smtp.to(to)) == 1


def test_without_smtp_mail_goes_to_mail_dir_and_dev_page(app, client, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "SMTP_URL", "")
    monkeypatch.setitem(app.config, "MAIL_DIR", str(tmp_path / "mail"))
    monkeypatch.setitem(app.config, "DEV_PAGES", True)
    to = _address()
    outbox_id = _queue(app, to, subject="Dev mail subject")
    assert run_jobs(app) == 1
    [path] = (tmp_path / "mail").glob("*.eml")
    assert b"Dev mail subject" in path.read_bytes()
    assert _row(app, outbox_id)["status"] == "sent"

    page = client.get("/dev/mail")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Dev mail subject" in html and to in html
    assert f'href="/dev/mail/{path.stem}"' in html
    message = client.get(f"/dev/mail/{path.stem}").get_data(as_text=True)
    assert "http://crm.localhost/verify/abc" in message and to in message
    assert client.get("/dev/mail/..%2Fsecret_key").status_code == 404
    assert client.get("/dev/mail/20990101T000000000000").status_code == 404


def test_dev_mail_page_is_off_with_smtp_or_in_production(app, client, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "MAIL_DIR", str(tmp_path))
    monkeypatch.setitem(app.config, "DEV_PAGES", True)
    monkeypatch.setitem(app.config, "SMTP_URL", "smtp://127.0.0.1:1")
    assert client.get("/dev/mail").status_code == 404
    monkeypatch.setitem(app.config, "SMTP_URL", "")
    monkeypatch.setitem(app.config, "DEV_PAGES", False)
    assert client.get("/dev/mail").status_code == 404
