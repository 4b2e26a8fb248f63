"""Tenant backups: a proven restore that equals the original, S3 (moto's real server) with SSE and
failures, a killed worker, refused files (damaged, altered, foreign), retention, the CLI and the page.

Every test works in a store of its own (the app's instance folder or bucket moved to a temp place),
so helpers running their own databases never share backup files.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import free_port
from tests.factories import db_state, release_retries, run_jobs, sql_value, unique

ROOT = Path(__file__).resolve().parents[2]
TRICKY = "tab\there, new\nline, back\\slash, quote\" and 'single', ไทย 中文 繁體, emoji 🎉, NUL-free"


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def store(app, tmp_path, monkeypatch):
    """Local-folder storage in a temp instance folder (attachments and backups)."""
    monkeypatch.setattr(app, "instance_path", str(tmp_path / "instance"))
    return tmp_path / "instance"


def fill(
    app, info, contacts: int = 40, attachment: bytes | None = b"%PDF-1.4 the signed contract\n"
) -> str | None:
    """Companies, contacts (odd text, arrays, JSON, NULLs), activities, tasks and an attachment in the
    tenant's schema; returns the attachment's storage key."""
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.extra_models import Attachment
    from tenants.customers.models import Activity, Company, Contact, Task

    with app.app_context(), tenancy.bound(info.id, info.schema, info.slug):
        companies = [
            Company(name=f"Company {i} {TRICKY if i == 0 else ''}", tags=["vip", 'a,"b"'], custom={"n": i})
            for i in range(5)
        ]
        db.session.add_all(companies)
        db.session.flush()
        rng = random.Random(info.id)
        people = []
        for i in range(contacts):
            people.append(
                Contact(
                    first_name=rng.choice(["Ann", "สมชาย", "伟", "O'Neil"]),
                    last_name=f"Lee {i}",
                    full_name=f"Person {i}",
                    email=None if i % 7 == 0 else f"p{i}@example.com",
                    phones=[f"+66 2 {i:03d} 0000"],
                    interests=TRICKY if i % 5 == 0 else "",
                    custom={"score": i * 1.5, "nested": {"x": [1, None, "y"]}},
                    company_id=companies[i % 5].id if i % 3 else None,
                    birthday=None if i % 2 else datetime(1980, 1, 1 + i % 28).date(),
                )
            )
        db.session.add_all(people)
        db.session.flush()
        for i, person in enumerate(people[:20]):
            db.session.add(
                Activity(
                    kind="note", body=f"<p>call {i}</p>", contact_id=person.id, company_id=person.company_id
                )
            )
            db.session.add(Task(title=f"Follow up {i}", contact_id=person.id))
        key = None
        if attachment is not None:
            from tenants.customers import attachments

            key = f"{info.id}/{unique('att')}"
            attachments.storage().put(key, attachment, "application/pdf")
            db.session.add(
                Attachment(
                    record_type="company",
                    record_id=companies[0].id,
                    file_name="contract.pdf",
                    content_type="application/pdf",
                    size=len(attachment),
                    storage_key=key,
                )
            )
        db.session.commit()
        db.session.remove()
    return key


def tables_of(app, schema: str) -> dict[str, tuple[int, str]]:
    """Row count and digest of every table of a schema, by table name (alembic_version included)."""
    return {name.split(".", 1)[1]: value for name, value in db_state(app, schema).items()}


def backup_row(app, backup_id: int):
    from saas.backups.models import Backup
    from saas.extensions import db

    with app.app_context():
        row = db.session.get(Backup, backup_id)
        db.session.expunge(row)
        db.session.remove()
    return row


def request(app, info, kind: str = "manual") -> int:
    from saas.backups import services

    with app.app_context():
        backup = services.request_backup(info.id, kind)
        services.enqueue_backup(backup)
        backup_id = backup.id
        from saas.extensions import db

        db.session.remove()
    return backup_id


def in_app(app, fn, *args, **kwargs):
    from saas.extensions import db

    with app.app_context():
        try:
            return fn(*args, **kwargs)
        finally:
            db.session.remove()


def schema_exists(app, name: str) -> bool:
    return bool(sql_value(app, "select count(*) from pg_namespace where nspname = :n", n=name))


# --- the round trip ------------------------------------------------------------------------------


def test_backup_is_proven_and_restores_equal_to_the_original(app, factory, store):
    from saas.backups import services
    from tenants.customers import attachments

    info = factory.tenant()
    key = fill(app, info)
    backup_id = request(app, info)
    run_jobs(app)
    row = backup_row(app, backup_id)
    assert (row.status, row.attempts, row.error) == ("good", 1, None)
    assert row.verified_at is not None and row.size_bytes > 0
    assert row.storage_key.startswith(f"backups/{info.id}/{backup_id}-")
    assert (store / "backups" / row.storage_key).stat().st_size == row.size_bytes
    original = tables_of(app, info.schema)
    assert row.manifest["tables"]["contacts"]["rows"] == original["contacts"][0] == 40
    assert row.manifest["files"] == 1
    # Idempotent: the job run again for a good backup leaves it alone.
    from saas import tenancy

    with app.app_context(), tenancy.bound(info.id, info.schema, info.slug):
        assert services.run_backup(backup_id).attempts == 1
        from saas.extensions import db

        db.session.remove()

    # Into a new schema beside the tenant: every table equal, row for row.
    result = in_app(app, services.restore_new_schema, backup_id)
    assert result.schema == f"restored_{backup_id}"
    assert tables_of(app, result.schema) == original

    # Over the tenant: later changes are undone, a lost file is put back, the old data is kept aside.
    with app.app_context():
        from saas.extensions import db

        with db.engine.begin() as conn:
            conn.execute(text(f'delete from "{info.schema}".tasks'))
            conn.execute(text(f"update \"{info.schema}\".contacts set last_name = 'changed'"))
        in_app(app, lambda: attachments.storage().delete(key))
    changed = tables_of(app, info.schema)
    assert changed != original
    result = in_app(app, services.restore_over, backup_id, info.id)
    assert result.replaced.startswith(f"replaced_{info.id}_") and result.files_put == 1
    after = tables_of(app, info.schema)
    assert {t: v for t, v in after.items() if t != "audit_log"} == {
        t: v for t, v in original.items() if t != "audit_log"
    }
    assert after["audit_log"][0] == original["audit_log"][0] + 1  # the restore itself is recorded
    assert tables_of(app, result.replaced) == changed
    assert in_app(app, lambda: attachments.storage().get(key)) == b"%PDF-1.4 the signed contract\n"
    # New rows still get fresh ids: the identity sequences came back too.
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.models import Contact

    top = sql_value(app, f'select max(id) from "{info.schema}".contacts')
    with app.app_context(), tenancy.bound(info.id, info.schema, info.slug):
        contact = Contact(first_name="New", last_name="One", full_name="New One")
        db.session.add(contact)
        db.session.commit()
        assert contact.id > top
        db.session.remove()


# --- S3 (moto's standalone server) ---------------------------------------------------------------


def test_s3_backup_is_encrypted_at_rest_and_its_link_downloads_it(app, factory, s3):
    import urllib.request

    from saas.backups import services

    client, bucket = s3
    info = factory.tenant()
    fill(app, info)
    backup_id = request(app, info)
    run_jobs(app)
    row = backup_row(app, backup_id)
    assert row.status == "good", row.error
    head = client.head_object(Bucket=bucket, Key=f"attachments/{row.storage_key}")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentLength"] == row.size_bytes
    with app.test_request_context():
        url = services.download_url(row, info.slug)
    assert "Expires=" in url or "X-Amz-Expires=" in url
    with urllib.request.urlopen(url) as resp:  # noqa: S310 - moto on localhost
        body = resp.read()
        assert f"{info.slug}-backup-" in resp.headers["Content-Disposition"]
    assert body == client.get_object(Bucket=bucket, Key=f"attachments/{row.storage_key}")["Body"].read()
    with zipfile.ZipFile(__import__("io").BytesIO(body)) as zf:
        assert "manifest.json" in zf.namelist() and "tables/contacts.copy" in zf.namelist()


class DyingProxy:
    """A TCP proxy in front of moto that dies on cue: once `limit` bytes went upstream it drops every
    connection and stops listening (connection refused) until revive()."""

    def __init__(self, target_port: int) -> None:
        self.port, self.target = free_port(), target_port
        self.limit: int | None = None
        self.sent = 0
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.server: socket.socket | None = None
        self.revive()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def revive(self) -> None:
        self.limit, self.sent = None, 0
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self.server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def arm(self, limit: int) -> None:
        with self.lock:
            self.limit, self.sent = limit, 0

    def die(self) -> None:
        with self.lock:
            sockets, self.sockets = [self.server, *self.sockets], []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _addr = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream:
                    with self.lock:
                        self.sent += len(data)
                        over = self.limit is not None and self.sent > self.limit
                    if over:
                        self.die()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_s3_failing_mid_upload_fails_the_attempt_and_the_retry_makes_it_good(app, factory, s3, monkeypatch):
    from saas.backups import services

    client, bucket = s3
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # boto's own retries: keep the dead proxy's refusals quick
    proxy = DyingProxy(int(client.meta.endpoint_url.rsplit(":", 1)[1]))
    monkeypatch.setitem(app.config, "CRM_S3_ENDPOINT_URL", proxy.url)
    info = factory.tenant()
    # 20 MB that do not compress: the backup file goes up in several multipart parts.
    fill(app, info, contacts=10, attachment=os.urandom(20 * 1024 * 1024))
    backup_id = request(app, info)
    proxy.arm(10 * 1024 * 1024)  # S3 goes away half-way through the upload
    run_jobs(app)
    first = backup_row(app, backup_id)
    assert first.status == "failed" and first.attempts == 1 and first.verified_at is None
    assert "Error" in first.error or "error" in first.error
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"attachments/backups/{info.id}/")
    assert listed.get("KeyCount", 0) == 0  # nothing half-written is visible, nothing marked good
    assert in_app(app, services.last_good, [info.id]) == {}

    proxy.revive()  # S3 is back; RQ's retry (its back-off made due now) finishes the backup
    assert release_retries(app) == 1
    run_jobs(app)
    second = backup_row(app, backup_id)
    assert (second.status, second.attempts, second.error) == ("good", 2, None)
    assert second.storage_key != first.storage_key  # a fresh key: nothing of the first attempt reused
    head = client.head_object(Bucket=bucket, Key=f"attachments/{second.storage_key}")
    assert (
        head["ServerSideEncryption"] == "AES256" and head["ContentLength"] == second.size_bytes > 20_000_000
    )
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"attachments/backups/{info.id}/")
    assert [o["Key"] for o in listed["Contents"]] == [f"attachments/{second.storage_key}"]
    # The dead attempt's unfinished multipart upload is invisible; retention aborts it.
    assert in_app(app, services.abort_stale_uploads, timedelta(0)) >= 1
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert in_app(app, services.last_good, [info.id]) == {info.id: second.started_at}


# --- a worker killed half-way --------------------------------------------------------------------


def test_a_worker_killed_mid_backup_leaves_nothing_good_and_the_retry_finishes_it(app, factory, store):
    from rq.registry import StartedJobRegistry

    from saas.backups import services
    from saas.extensions import db
    from workers.queues import queue

    info = factory.tenant()
    fill(app, info)
    backup_id = request(app, info)
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "CRM_INSTANCE": str(store),
    }
    with app.app_context(), db.engine.connect() as blocker:
        # Hold one table, so the real worker's dump stops half-way (mid-COPY) where we can kill it.
        blocker.execute(text(f'lock table "{info.schema}".contacts in access exclusive mode'))
        worker = subprocess.Popen(
            [sys.executable, "-m", "saas.cli", "worker", "--burst"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            waiting = _wait_for(
                app,
                "select pid from pg_stat_activity where wait_event_type = 'Lock' and query ilike :q",
                q=f'copy "{info.schema}"."contacts"%',
            )
            assert backup_row(app, backup_id).status == "running"
        finally:
            # The worker and its work horse (RQ gives the horse a session of its own, so killing
            # the worker's process group alone would leave the horse running the job).
            horses = _children(worker.pid)
            os.killpg(worker.pid, signal.SIGKILL)
            for pid in horses:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            worker.wait()
        # PostgreSQL notices a dead client only when it next writes to it; end its sessions as
        # TCP keepalive would (the waiting COPY, and whichever holds the backup's advisory lock).
        dead = {waiting} | {
            int(pid)
            for pid in sql_rows(
                app,
                "select pid from pg_locks where locktype = 'advisory' and classid = :c and objid = :k",
                c=services.LOCK_CLASS,
                k=services._lock_key(backup_id),
            )
        }
        for pid in dead:
            sql_value(app, "select pg_terminate_backend(:p)", p=pid)
        blocker.rollback()
        _wait_for(
            app,
            "select true where not exists (select 1 from pg_stat_activity where pid = any(:p))",
            p=list(dead),
        )
    row = backup_row(app, backup_id)
    assert (row.status, row.attempts, row.verified_at) == ("running", 1, None)
    assert not list(store.rglob("*.zip"))  # the half-made file never reached the store

    # RQ's cleanup finds the abandoned job and retries it; the retry starts over and finishes.
    with app.app_context():
        StartedJobRegistry(queue=queue("low")).cleanup(timestamp=time.time() + 10**6)
    assert release_retries(app) == 1
    run_jobs(app)
    row = backup_row(app, backup_id)
    assert (row.status, row.attempts, row.error) == ("good", 2, None)
    assert [p.name for p in (store / "backups").rglob("*.zip")] == [Path(row.storage_key).name]


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def sql_rows(app, sql: str, **params: object) -> list[object]:
    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return [row[0] for row in conn.execute(text(sql), params)]


def _wait_for(app, sql: str, seconds: float = 60, **params: object) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = sql_value(app, sql, **params)
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {sql}")


# --- refused files -------------------------------------------------------------------------------


def good_backup(app, info) -> tuple[int, Path]:
    """A good backup of the tenant (made by a real worker) and the path of its file."""
    backup_id = request(app, info)
    run_jobs(app)
    row = backup_row(app, backup_id)
    assert row.status == "good", row.error
    return backup_id, Path(app.instance_path) / "backups" / row.storage_key


def rewrite(path: Path, edit=None, key: bytes | None = None, drop: str | None = None) -> None:  # noqa: ANN001
    """Rewrite a backup file: edit(manifest) changes the manifest; key re-signs it (else the old
    signature stays); drop leaves a member out."""
    from saas.backups import archive

    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    body = __import__("json").loads(members.pop(archive.MANIFEST))
    if edit:
        edit(body["manifest"])
    if key is not None:
        body["signature"] = archive.sign(body["manifest"], key)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if name != drop:
                zf.writestr(name, data)
        zf.writestr(archive.MANIFEST, __import__("json").dumps(body))


def refused(app, fn, *args) -> str:
    from saas.backups.archive import BackupRefused

    with pytest.raises(BackupRefused) as err:
        in_app(app, fn, *args)
    return str(err.value)


def test_damaged_altered_and_foreign_files_are_refused_and_change_nothing(app, factory, store):
    from saas.backups import archive, services

    info = factory.tenant()
    fill(app, info)
    backup_id, path = good_backup(app, info)
    good = path.read_bytes()
    before = db_state(app, "public", info.schema)

    def attempts() -> list[str]:
        messages = [refused(app, services.restore_new_schema, backup_id)]
        messages.append(refused(app, services.restore_over, backup_id, info.id))
        assert db_state(app, "public", info.schema) == before
        assert not schema_exists(app, f"restored_{backup_id}") and not schema_exists(
            app, f"incoming_{backup_id}"
        )
        path.write_bytes(good)
        return messages

    # Bytes flipped in the middle of a table's data.
    middle = good.index(b"tables/contacts.copy") + 200
    path.write_bytes(
        good[:middle] + bytes(b ^ 0xFF for b in good[middle : middle + 16]) + good[middle + 16 :]
    )
    assert all("damaged" in m or "does not match" in m for m in attempts())
    # Cut short, as by an interrupted copy.
    path.write_bytes(good[: len(good) // 2])
    assert all("damaged" in m for m in attempts())
    # The manifest edited (more contacts claimed), its signature left as it was.
    rewrite(path, lambda m: m["tables"]["contacts"].update(rows=999))
    assert all("signature does not match" in m for m in attempts())
    # A table's data changed and the manifest re-signed by another installation's key.
    rewrite(path, lambda m: m["tables"]["tasks"].update(rows=0), key=b"another installation")
    assert all("signature does not match" in m for m in attempts())
    # A member taken out, the manifest re-signed with the right key: the contents differ from it.
    with app.app_context():
        right_key = archive.signing_key()
    rewrite(path, key=right_key, drop="tables/tasks.copy")
    assert all("differ from its manifest" in m for m in attempts())
    # Signed properly, but taken at another schema revision: refused with what to do.
    rewrite(path, lambda m: m.update(revision="0000dead0000"), key=right_key)
    assert all("revision 0000dead0000" in m and "crm db upgrade" in m for m in attempts())
    # And the untouched file still restores.
    assert in_app(app, services.restore_new_schema, backup_id).schema == f"restored_{backup_id}"


def test_another_tenants_backup_is_refused_for_restore_over(app, factory, store):
    from saas.backups import services

    a, b = factory.tenant(name="Alpha"), factory.tenant(name="Bravo")
    fill(app, a)
    fill(app, b, contacts=7)
    a_backup, a_path = good_backup(app, a)
    _b_backup, b_path = good_backup(app, b)
    before = db_state(app, "public", a.schema, b.schema)

    message = refused(app, services.restore_over, a_backup, b.id)
    assert f"Backup #{a_backup} belongs to another workspace" in message and b.slug in message
    # B's file put where A's backup is stored (a mix-up, or on purpose): the signed manifest names B.
    a_path.write_bytes(b_path.read_bytes())
    for fn, args in ((services.restore_over, (a_backup, a.id)), (services.restore_new_schema, (a_backup,))):
        message = refused(app, fn, *args)
        assert f"another workspace's data (workspace {b.id}, not {a.id})" in message
    assert db_state(app, "public", a.schema, b.schema) == before
    assert "There is no backup #" in refused(app, services.restore_over, 10**9, a.id)


# --- retention -----------------------------------------------------------------------------------


def test_retention_keeps_7_daily_4_weekly_12_monthly_and_recent_manual_ones(app, factory, store):
    from saas.backups import services
    from saas.backups.models import Backup
    from saas.extensions import db

    now = datetime(2027, 3, 15, 1, 30, tzinfo=UTC)  # a Monday
    info = factory.tenant()
    with app.app_context():
        earlier: list[datetime] = []
        rows = []
        for days_ago in range(400, -1, -1):  # every night for 400 nights
            at = now - timedelta(days=days_ago)
            kind = services.scheduled_kind(at, earlier)
            earlier.append(at)
            rows.append(Backup(tenant_id=info.id, kind=kind, status="good", created_at=at, started_at=at))
        extra = {
            "manual_recent": Backup(
                tenant_id=info.id, kind="manual", status="good", created_at=now - timedelta(days=29)
            ),
            "manual_old": Backup(
                tenant_id=info.id, kind="manual", status="good", created_at=now - timedelta(days=31)
            ),
            "failed_old": Backup(
                tenant_id=info.id, kind="daily", status="failed", created_at=now - timedelta(days=5)
            ),
            "failed_new": Backup(
                tenant_id=info.id, kind="daily", status="failed", created_at=now - timedelta(days=1)
            ),
            "abandoned": Backup(
                tenant_id=info.id, kind="manual", status="running", created_at=now - timedelta(days=1)
            ),
        }
        for r in extra.values():
            r.finished_at = r.started_at = r.created_at
        db.session.add_all(rows + list(extra.values()))
        db.session.flush()
        for r in rows + list(extra.values()):
            r.storage_key = f"backups/{info.id}/{r.id}-test.zip"
            services.store().put(r.storage_key, b"zip")
        db.session.commit()
        ids = {r.id: r.created_at.date() for r in rows}
        extra_ids = {name: r.id for name, r in extra.items()}
        db.session.remove()

    # What the policy means, spelled out on the calendar: the 1st of each month is its monthly
    # backup, other Mondays weekly ones, every other night a daily one.
    days = sorted(ids.values(), reverse=True)
    monthly = [d for d in days if d.day == 1][:12]
    weekly = [d for d in days if d.weekday() == 0 and d.day != 1][:4]
    daily = [d for d in days if d.weekday() != 0 and d.day != 1][:7]
    assert monthly[-1] == datetime(2026, 4, 1).date() and weekly[0] == now.date()
    expected = {i for i, d in ids.items() if d in set(monthly + weekly + daily)} | {
        extra_ids["manual_recent"]
    }

    result = in_app(app, services.prune, info.id, now)
    assert result.abandoned == [extra_ids["abandoned"]]
    with app.app_context():
        left = dict(
            db.session.execute(
                text("select id, status from public.backups where tenant_id = :t"), {"t": info.id}
            ).all()
        )
        db.session.remove()
    assert {i for i, s in left.items() if s == "good"} == expected
    assert len(expected) == 7 + 4 + 12 + 1
    assert extra_ids["failed_old"] not in left and left[extra_ids["failed_new"]] == "failed"
    assert left[extra_ids["abandoned"]] == "failed"
    stored = {p.name.split("-")[0] for p in (store / "backups").rglob("*.zip")}
    assert stored == {str(i) for i in left}  # objects of pruned backups are deleted with them
    assert in_app(app, services.prune, info.id, now).deleted == []  # a second pass changes nothing


def test_nightly_kinds_follow_the_calendar_and_a_failed_one_is_replaced():
    from saas.backups.services import scheduled_kind

    first = datetime(2027, 3, 1, 1, 30, tzinfo=UTC)
    assert scheduled_kind(first, []) == "monthly"
    assert scheduled_kind(first + timedelta(days=1), [first]) == "daily"
    # The 1st's backup failed (not among the live ones): the 2nd is the month's.
    assert scheduled_kind(first + timedelta(days=1), []) == "monthly"
    monday = datetime(2027, 3, 8, 1, 30, tzinfo=UTC)
    assert scheduled_kind(monday, [first, first + timedelta(days=6)]) == "weekly"
    assert scheduled_kind(monday + timedelta(days=1), [first, monday]) == "daily"


def test_nightly_scheduling_makes_one_backup_per_tenant_per_night(app, factory, store):
    from saas.backups import services
    from saas.backups.models import Backup
    from saas.extensions import db

    info = factory.tenant()
    night = datetime.now(UTC).replace(hour=1, minute=30)
    with app.app_context():
        made = [b for b in services.schedule_nightly(night) if b.tenant_id == info.id]
        again = [b for b in services.schedule_nightly(night + timedelta(hours=1)) if b.tenant_id == info.id]
        rows = list(db.session.scalars(db.select(Backup).where(Backup.tenant_id == info.id)))
        db.session.remove()
    assert len(made) == 1 and again == [] and len(rows) == 1
    assert rows[0].status == "queued" and rows[0].kind in ("monthly", "weekly", "daily")


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_backup_list_and_restore(app, factory, store):
    info = factory.tenant()
    fill(app, info)
    runner = app.test_cli_runner()
    out = runner.invoke(args=["backup", info.slug])
    assert out.exit_code == 0, out.output
    backup_id = int(out.output.split()[1])
    assert f"backup {backup_id} of {info.slug}: good" in out.output

    out = runner.invoke(args=["backups", "list", info.slug])
    assert out.exit_code == 0 and f"{backup_id}\t" in out.output and "\tgood\t" in out.output

    assert runner.invoke(args=["restore", str(backup_id)]).exit_code != 0  # neither --new-schema nor --over
    out = runner.invoke(args=["restore", str(backup_id), "--new-schema"])
    assert out.exit_code == 0, out.output
    assert f"into schema restored_{backup_id}" in out.output
    assert tables_of(app, f"restored_{backup_id}") == tables_of(app, info.schema)

    before = db_state(app, info.schema)
    out = runner.invoke(args=["restore", str(backup_id), "--over"], input="not-the-slug\n")
    assert out.exit_code != 0 and "not confirmed" in out.output
    assert db_state(app, info.schema) == before
    out = runner.invoke(args=["restore", str(backup_id), "--over"], input=f"{info.slug}\n")
    assert out.exit_code == 0, out.output
    replaced = out.output.split("crm backups drop-schema ")[1].strip().strip("`")
    assert replaced.startswith(f"replaced_{info.id}_") and schema_exists(app, replaced)

    out = runner.invoke(args=["backups", "schemas"])
    assert replaced in out.output and f"restored_{backup_id}" in out.output
    for name in (replaced, f"restored_{backup_id}"):
        assert runner.invoke(args=["backups", "drop-schema", name]).exit_code == 0
        assert not schema_exists(app, name)
    out = runner.invoke(args=["backups", "drop-schema", info.schema])
    assert out.exit_code != 0 and schema_exists(app, info.schema)
    assert runner.invoke(args=["backup", unique("nosuch")]).exit_code != 0
    out = runner.invoke(args=["restore", str(10**9), "--new-schema"])
    assert out.exit_code != 0 and f"no backup #{10**9}" in out.output


# --- the page ------------------------------------------------------------------------------------


def test_page_lists_backups_runs_one_and_links_to_the_file(app, factory, client, make_client, store):
    from tests.factories import add_role

    info = factory.tenant(roles=("owner", "sales"))
    fill(app, info, contacts=5)
    url = f"/{info.slug}/admin/backups"
    client.sign_in(info.owner_email)
    page = client.get(url)
    assert page.status_code == 200 and "Back up now" in page.get_data(as_text=True)
    assert "No backups yet" in page.get_data(as_text=True)
    resp = client.form(f"{url}/run")
    assert resp.status_code == 302
    count = sql_value(app, "select count(*) from public.backups where tenant_id = :t", t=info.id)
    assert count == 1
    who = sql_value(
        app, f"select user_email from \"{info.schema}\".audit_log where action = 'backup_requested'"
    )
    assert who == info.owner_email
    html = client.get(url).get_data(as_text=True)
    assert "Waiting" in html and 'hx-trigger="every 5s"' in html
    run_jobs(app)
    html = client.get(url).get_data(as_text=True)
    assert "Good" in html and "every 5s" not in html
    partial = client.get(url, headers={"HX-Request": "true"})
    assert partial.status_code == 286  # nothing running: htmx stops polling
    link = next(part.split('"')[0] for part in html.split('href="') if "/files/" in part.split('"')[0])
    download = client.get(link.replace("http://crm.localhost", ""))
    assert download.status_code == 200
    backup_id = sql_value(app, "select max(id) from public.backups where tenant_id = :t", t=info.id)
    row = backup_row(app, backup_id)
    assert download.data == (store / "backups" / row.storage_key).read_bytes()
    assert f"{info.slug}-backup-" in download.headers["Content-Disposition"]

    # Sales may neither see nor run backups.
    sales = make_client()
    sales.sign_in(info.email("sales"))
    assert sales.get(url).status_code == 403
    assert sales.form(f"{url}/run").status_code == 403
    # A role that may see settings but not change them sees the list, without links or the button.
    role_id = add_role(app, info, {"settings": ["view"]})
    with app.app_context():
        from saas.extensions import db
        from saas.models import Membership

        db.session.get(Membership, info.membership("sales")).role = f"custom:{role_id}"
        db.session.commit()
        db.session.remove()
    html = sales.get(url).get_data(as_text=True)
    assert "Good" in html and "/files/" not in html and "disabled" in html
    assert sales.form(f"{url}/run").status_code == 403
    assert sql_value(app, "select count(*) from public.backups where tenant_id = :t", t=info.id) == 1
