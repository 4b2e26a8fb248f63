"""Tenant backups: make one (dump, store, prove), list them, restore one, keep the right ones.

A backup is good only once its stored file has been fetched back, checked (signature, digests) and
restored into a scratch schema whose every table matched the manifest (rows and checksums). The
scratch restore runs in a transaction that is rolled back, so it leaves nothing behind, even when
the worker dies half-way. Every attempt writes to a key of its own and a failed attempt deletes what
it wrote, so a retry starts clean and a partial file can never be the good one.

Retention: the newest 7 good daily, 4 weekly and 12 monthly backups, and manual ones for 30 days.
The nightly backup of a tenant is "monthly" when it is the first of the month, else "weekly" when
it is the first of the ISO week, else "daily" (a failed one does not count, so the next night takes
its place).
"""

from __future__ import annotations

import logging
import re
import secrets
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, select, text, update

from saas import audit, tenancy
from saas.backups import archive, dump, restore
from saas.backups.archive import BackupRefused
from saas.backups.models import Backup
from saas.extensions import db
from saas.models import Tenant, TenantSchemaVersion, utcnow
from saas.storage import LocalStorage, S3Storage, storage

log = logging.getLogger(__name__)

KEEP = {"daily": 7, "weekly": 4, "monthly": 12}
KEEP_MANUAL_DAYS = 30
KEEP_FAILED_DAYS = 3
STALE_AFTER = timedelta(hours=12)  # a backup still "running" this long after it started was abandoned
JOB_TIMEOUT = 6 * 3600  # RQ's limit for one attempt (a million-row tenant takes minutes)
LINK_SECONDS = 3600
LOCK_CLASS = 7431101  # advisory lock (class, backup id): one run of a backup at a time
ACTIVE = ("queued", "running", "verifying")
OLD_SCHEMA_RE = re.compile(r"^replaced_[0-9]+_[0-9]+\Z")


class BackupBusy(RuntimeError):
    """Another worker is running this backup right now (the job retries later)."""


@dataclass
class RestoreResult:
    schema: str
    rows: dict[str, int]
    replaced: str | None = None
    files_put: int = 0


@dataclass
class PruneResult:
    deleted: list[int] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)
    uploads_aborted: int = 0


def store() -> LocalStorage | S3Storage:
    return storage("backups")


def new_key(backup: Backup) -> str:
    """A fresh key for each attempt: a retry never writes over (or reuses) a part of an earlier one."""
    return f"backups/{int(backup.tenant_id)}/{int(backup.id)}-{secrets.token_hex(6)}.zip"


# Making backups ----------------------------------------------------------------------------------


def scheduled_kind(now: datetime, earlier: Iterable[datetime]) -> str:
    """The kind of a nightly backup made at `now`, given when this tenant's other live (not failed)
    nightly backups were made."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    week_start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    earlier = [at for at in earlier if at < now]
    if not any(at >= month_start for at in earlier):
        return "monthly"
    if not any(at >= week_start for at in earlier):
        return "weekly"
    return "daily"


def request_backup(tenant_id: int, kind: str = "manual", requested_by: int | None = None) -> Backup:
    """A queued backup row (committed); enqueue_backup() hands it to a worker."""
    if kind not in ("daily", "weekly", "monthly", "manual"):
        raise ValueError(f"unknown kind {kind!r}")
    backup = Backup(tenant_id=tenant_id, kind=kind, status="queued", requested_by=requested_by, attempts=0)
    db.session.add(backup)
    db.session.flush()
    bound = tenancy.current_tenant()
    if bound is not None and bound.id == tenant_id:
        audit.record("backup_requested", "backup", backup.id, summary=kind)
    db.session.commit()
    return backup


def enqueue_backup(backup: Backup) -> None:
    from workers.backups import run_backup
    from workers.queues import enqueue

    enqueue(run_backup, backup.tenant_id, backup.id, queue_name="low", job_timeout=JOB_TIMEOUT)


def schedule_nightly(now: datetime | None = None) -> list[Backup]:
    """Tonight's backup row for every tenant (suspended ones too: their data is kept) that has none
    yet today (a rerun adds nothing)."""
    now = now or utcnow()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    made = []
    tenant_ids = db.session.scalars(select(Tenant.id).where(Tenant.status != "deleted").order_by(Tenant.id))
    for tenant_id in list(tenant_ids):
        earlier = list(
            db.session.scalars(
                select(Backup.created_at).where(
                    Backup.tenant_id == tenant_id,
                    Backup.kind != "manual",
                    Backup.created_at >= now - timedelta(days=32),
                    Backup.status != "failed",
                )
            )
        )
        if any(at >= day_start for at in earlier):
            continue
        backup = Backup(tenant_id=tenant_id, kind=scheduled_kind(now, earlier), status="queued", attempts=0)
        backup.created_at = now
        db.session.add(backup)
        made.append(backup)
    db.session.commit()
    return made


@contextmanager
def _run_lock(backup_id: int) -> Iterator[None]:
    """Hold the backup's advisory lock on a connection of its own (released if the worker dies)."""
    with db.engine.connect() as conn:
        got = conn.execute(
            text("select pg_try_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": _lock_key(backup_id)}
        ).scalar_one()
        conn.commit()
        if not got:
            raise BackupBusy(f"backup {backup_id} is being made by another worker")
        try:
            yield
        finally:
            conn.execute(
                text("select pg_advisory_unlock(:c, :k)"), {"c": LOCK_CLASS, "k": _lock_key(backup_id)}
            )
            conn.commit()


def _lock_key(backup_id: int) -> int:
    return int(backup_id) % 2_147_483_647


def run_backup(backup_id: int) -> Backup:
    """Make the backup (the job's body; the tenant is bound): dump, store, fetch back, prove.

    Idempotent: a good backup is left alone; any other state starts over from nothing. Raises on
    failure (after marking the row failed and deleting what it stored), so the job retries.
    """
    bound = tenancy.require_tenant()
    backup = db.session.get(Backup, backup_id)
    if backup is None or backup.tenant_id != bound.id:
        raise LookupError(f"backup {backup_id} of tenant {bound.id} does not exist")
    if backup.status == "good":
        return backup
    with _run_lock(backup_id):
        db.session.refresh(backup)
        if backup.status == "good":
            return backup
        leftover = backup.storage_key
        backup.status, backup.attempts = "running", (backup.attempts or 0) + 1
        backup.storage_key = new_key(backup)
        backup.size_bytes = backup.manifest = backup.error = None
        backup.started_at, backup.finished_at, backup.verified_at = utcnow(), None, None
        key = backup.storage_key
        db.session.commit()
        if leftover:
            _forget(leftover)  # an earlier attempt's file, whatever state it was left in
        try:
            size, manifest, seconds = _make(backup_id, key, bound)
            backup.status, backup.size_bytes = "good", size
            backup.manifest = {**summary(manifest), "seconds": seconds}
            backup.verified_at = backup.finished_at = utcnow()
            db.session.commit()
        except BaseException as exc:
            db.session.rollback()
            backup.status, backup.finished_at = "failed", utcnow()
            backup.error = f"{type(exc).__name__}: {exc}"[:2000]
            db.session.commit()
            if key:
                _forget(key)
            raise
    return backup


def _make(
    backup_id: int, key: str, bound: tenancy.BoundTenant
) -> tuple[int, dict[str, Any], dict[str, float]]:
    """Dump, store, fetch back and prove; returns (file size, manifest, seconds per phase). Holds no
    session transaction open while it works (only short commits of the row's status)."""
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="crm-backup-") as tmp:
        path = Path(tmp) / "backup.zip"
        with _timed(seconds, "dump"), db.engine.connect() as conn:
            snapshot = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            dump.dump(
                snapshot,
                path,
                tenant_id=bound.id,
                slug=bound.slug,
                schema=bound.schema,
                backup_id=backup_id,
                key=archive.signing_key(),
                fetch=_fetch,
                seconds=seconds,
            )
        size = path.stat().st_size
        with _timed(seconds, "store"):
            store().put_file(key, path, "application/zip")
        path.unlink()
        db.session.execute(
            update(Backup).where(Backup.id == backup_id).values(status="verifying", size_bytes=size)
        )
        db.session.commit()
        # The proof works on the stored object, fetched back: what a restore would get.
        fetched = Path(tmp) / "fetched.zip"
        with _timed(seconds, "fetch"):
            if not store().get_file(key, fetched):
                raise RuntimeError(f"backup file {key} is not in the store after the upload")
        with _timed(seconds, "prove"):
            manifest = prove(fetched, bound.id, backup_id)
    return size, manifest, seconds


@contextmanager
def _timed(into: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    into[name] = round(time.perf_counter() - start, 3)


def _fetch(area: str, key: str, target: Path) -> bool:
    return storage(area).get_file(key, target)


def _forget(key: str) -> None:
    try:
        store().delete(key)
    except Exception:  # noqa: BLE001 - the store may be what failed; retention clears it up later
        log.warning("could not delete backup object %s", key, exc_info=True)


def prove(path: Path, tenant_id: int, backup_id: int) -> dict[str, Any]:
    """Check the file and restore it into scratch_<id> (rolled back): raises unless every table matches.

    The rows, primary keys, unique indexes and foreign keys are restored and checked; the other
    indexes are left to real restores (see restore.load).
    """
    zf, manifest = archive.read_checked(path, tenant_id=tenant_id, backup_id=backup_id)
    with zf:
        restore.check_revision(manifest)
        with db.engine.connect() as conn:
            try:
                loaded = restore.load(conn, zf, manifest, f"scratch_{int(backup_id)}", all_indexes=False)
            finally:
                conn.rollback()
    if loaded.mismatches:
        raise BackupRefused("restored copy differs from the backup: " + "; ".join(loaded.mismatches))
    return manifest


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the row keeps of a manifest: per-table rows and checksums, files and revision."""
    return {
        "revision": manifest["revision"],
        "snapshot_at": manifest["snapshot_at"],
        "tables": {t: {"rows": v["rows"], "checksum": v["checksum"]} for t, v in manifest["tables"].items()},
        "table_bytes": sum(t["bytes"] for t in manifest["tables"].values()),
        "files": len(manifest["files"]),
        "file_bytes": sum(f["bytes"] for f in manifest["files"]),
        "missing_files": len(manifest["missing_files"]),
    }


# Listing -----------------------------------------------------------------------------------------


def list_backups(tenant_id: int, limit: int = 100) -> list[Backup]:
    return list(
        db.session.scalars(
            select(Backup).where(Backup.tenant_id == tenant_id).order_by(Backup.id.desc()).limit(limit)
        )
    )


def download_url(backup: Backup, slug: str) -> str | None:
    """An expiring link to a good backup's file (S3 presigned, or a signed local link)."""
    if backup.status != "good" or not backup.storage_key:
        return None
    stamp = (backup.started_at or backup.created_at).strftime("%Y%m%d-%H%M")
    return store().download_url(backup.storage_key, f"{slug}-backup-{stamp}-{backup.id}.zip", LINK_SECONDS)


def last_good(tenant_ids: list[int]) -> dict[int, datetime]:
    """For the platform console: when the snapshot of each tenant's newest good backup was taken
    (tenants with none are left out)."""
    if not tenant_ids:
        return {}
    rows = db.session.execute(
        select(Backup.tenant_id, func.max(Backup.started_at))
        .where(Backup.tenant_id.in_(tenant_ids), Backup.status == "good")
        .group_by(Backup.tenant_id)
    )
    return {tenant_id: at for tenant_id, at in rows if at is not None}


def has_active(backups: list[Backup]) -> bool:
    return any(b.status in ACTIVE for b in backups)


# Restoring ---------------------------------------------------------------------------------------


def good_backup(backup_id: int) -> Backup:
    """The backup, if it is good; detached, with the session's read transaction ended (a restore
    runs for minutes and must not sit idle in a transaction meanwhile)."""
    backup = db.session.get(Backup, backup_id)
    if backup is None:
        raise BackupRefused(f"There is no backup #{backup_id}.")
    if backup.status != "good" or not backup.storage_key:
        raise BackupRefused(f"Backup #{backup_id} is not a good (proven) backup, so it cannot be restored.")
    db.session.expunge(backup)
    db.session.rollback()
    return backup


@contextmanager
def _fetched(backup: Backup) -> Iterator[tuple[zipfile.ZipFile, dict[str, Any]]]:
    with tempfile.TemporaryDirectory(prefix="crm-restore-") as tmp:
        path = Path(tmp) / "backup.zip"
        if not store().get_file(backup.storage_key, path):
            raise BackupRefused(f"The file of backup #{backup.id} is missing from the store.")
        zf, manifest = archive.read_checked(path, tenant_id=backup.tenant_id, backup_id=backup.id)
        with zf:
            restore.check_revision(manifest)
            yield zf, manifest


def _schema_exists(conn: Connection, name: str) -> bool:
    return bool(conn.execute(text("select 1 from pg_namespace where nspname = :n"), {"n": name}).first())


def restore_new_schema(backup_id: int) -> RestoreResult:
    """Restore a good backup into a new schema restored_<id> beside the tenant (for looking at, or
    copying records back); the tenant itself is not touched."""
    backup = good_backup(backup_id)
    schema = f"restored_{int(backup.id)}"
    with _fetched(backup) as (zf, manifest), db.engine.connect() as conn:
        if _schema_exists(conn, schema):
            conn.rollback()
            raise BackupRefused(
                f"Schema {schema} already exists (an earlier restore of this backup). Drop it first: "
                f"crm backups drop-schema {schema}"
            )
        loaded = _load_checked(conn, zf, manifest, schema)
        conn.commit()
        files = _put_back_files(zf, manifest)
    return RestoreResult(schema, loaded.rows, files_put=files)


def restore_over(backup_id: int, tenant_id: int) -> RestoreResult:
    """Replace the tenant's data with a good backup of its own, in one transaction.

    The backup is restored into incoming_<id> and checked; then the tenant's schema is renamed away
    to replaced_<tenant>_<time> (kept until an operator drops it) and incoming_<id> takes its name.
    Either all of it happens or none of it. Writes made during the restore stay in the old schema.
    """
    backup = good_backup(backup_id)
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None or tenant.status == "deleted":
        raise BackupRefused(f"There is no workspace with id {tenant_id}.")
    if backup.tenant_id != tenant.id:
        raise BackupRefused(
            f"Backup #{backup.id} belongs to another workspace: it cannot be restored over {tenant.slug}."
        )
    from saas.migrate import tenant_head

    version = db.session.get(TenantSchemaVersion, tenant.id)
    if version is None or version.revision != tenant_head():
        raise BackupRefused(
            "The workspace's schema is not at this release's revision: run crm db upgrade first."
        )
    slug, current, incoming = tenant.slug, tenant.schema_name, f"incoming_{int(backup.id)}"
    replaced = f"replaced_{int(tenant.id)}_{utcnow():%Y%m%d%H%M%S}"
    if not tenancy.SCHEMA_RE.match(current) or not OLD_SCHEMA_RE.match(replaced):
        raise ValueError(f"odd schema name {current!r}")
    db.session.rollback()  # nothing held while the restore runs
    with _fetched(backup) as (zf, manifest), db.engine.connect() as conn:
        for name in (incoming, replaced):
            if _schema_exists(conn, name):
                conn.rollback()
                raise BackupRefused(f"Schema {name} is in the way: drop it first.")
        loaded = _load_checked(conn, zf, manifest, incoming)
        conn.execute(text("select set_config('lock_timeout', '10s', true)"))
        conn.exec_driver_sql(f'alter schema "{current}" rename to "{replaced}"')
        conn.exec_driver_sql(f'alter schema "{incoming}" rename to "{current}"')
        conn.commit()
        files = _put_back_files(zf, manifest)
    with tenancy.bound(tenant_id, current, slug):
        audit.record("restore", "tenant", tenant_id, {"backup": [None, backup.id]}, f"backup #{backup.id}")
        db.session.commit()
    return RestoreResult(current, loaded.rows, replaced=replaced, files_put=files)


def _load_checked(
    conn: Connection, zf: zipfile.ZipFile, manifest: dict[str, Any], schema: str
) -> restore.Loaded:
    loaded = restore.load(conn, zf, manifest, schema)
    if loaded.mismatches:
        conn.rollback()
        raise BackupRefused(
            f"The restored copy does not match the backup ({'; '.join(loaded.mismatches)}): "
            "nothing was changed."
        )
    return loaded


def _put_back_files(zf: zipfile.ZipFile, manifest: dict[str, Any]) -> int:
    """Put back any of the backup's files that are no longer in the store (keys are the tenant's own)."""
    put = 0
    with tempfile.TemporaryDirectory(prefix="crm-restore-file-") as tmp:
        target = Path(tmp) / "file"
        for entry in manifest["files"]:
            area_store = storage(entry["area"])
            if area_store.size(entry["key"]) is not None:
                continue
            with zf.open(entry["member"]) as src, target.open("wb") as out:
                while chunk := src.read(archive.CHUNK):
                    out.write(chunk)
            area_store.put_file(entry["key"], target)
            put += 1
    return put


def drop_work_schema(name: str) -> None:
    """Drop a schema a restore left for the operator (restored_<id>, replaced_<tenant>_<time>)."""
    if not (OLD_SCHEMA_RE.match(name) or re.fullmatch(r"restored_[0-9]+", name)):
        raise BackupRefused("Only restored_… and replaced_… schemas can be dropped this way.")
    with db.engine.begin() as conn:
        if not _schema_exists(conn, name):
            raise BackupRefused(f"There is no schema {name}.")
        conn.exec_driver_sql(f'drop schema "{name}" cascade')


def work_schemas() -> list[str]:
    rows = db.session.execute(
        text("select nspname from pg_namespace where nspname ~ '^(restored|replaced)_[0-9_]+$' order by 1")
    ).scalars()
    return list(rows)


# Retention ---------------------------------------------------------------------------------------


def retention(backups: Iterable[Backup], now: datetime) -> set[int]:
    """Ids of the good backups to keep: the newest 7 daily, 4 weekly, 12 monthly, manual ones for 30 days."""
    good = sorted(
        (b for b in backups if b.status == "good"), key=lambda b: (b.created_at, b.id), reverse=True
    )
    keep: set[int] = set()
    for kind, count in KEEP.items():
        keep.update(b.id for b in [b for b in good if b.kind == kind][:count])
    keep.update(
        b.id for b in good if b.kind == "manual" and b.created_at >= now - timedelta(days=KEEP_MANUAL_DAYS)
    )
    return keep


def prune(tenant_id: int, now: datetime | None = None) -> PruneResult:
    """Apply the retention policy to one tenant: delete expired good backups and old failed ones
    (their objects first), and mark backups abandoned by a dead worker as failed."""
    now = now or utcnow()
    result = PruneResult()
    backups = list(db.session.scalars(select(Backup).where(Backup.tenant_id == tenant_id)))
    keep = retention(backups, now)
    for b in backups:
        if b.status in ACTIVE and (b.started_at or b.created_at) < now - STALE_AFTER and not _running(b.id):
            b.status, b.finished_at = "failed", now
            b.error = (b.error or "") + " abandoned: no worker finished it"
            result.abandoned.append(b.id)
    db.session.commit()
    for b in backups:
        expired = b.status == "good" and b.id not in keep
        stale_failure = b.status == "failed" and (b.finished_at or b.created_at) < now - timedelta(
            days=KEEP_FAILED_DAYS
        )
        if expired or stale_failure:
            if b.storage_key:
                store().delete(b.storage_key)
            db.session.execute(delete(Backup).where(Backup.id == b.id))
            db.session.commit()
            result.deleted.append(b.id)
    return result


def _running(backup_id: int) -> bool:
    with db.engine.connect() as conn:
        free = conn.execute(
            text("select pg_try_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": _lock_key(backup_id)}
        ).scalar_one()
        if free:
            conn.execute(
                text("select pg_advisory_unlock(:c, :k)"), {"c": LOCK_CLASS, "k": _lock_key(backup_id)}
            )
        conn.commit()
    return not free


def abort_stale_uploads(older_than: timedelta = timedelta(days=1)) -> int:
    """S3 only: abort multipart uploads of backups that a dead worker left unfinished (they are
    invisible, but their parts are billed)."""
    s = store()
    if not isinstance(s, S3Storage):
        return 0
    prefix = s._key("backups") + "/"
    cutoff = utcnow() - older_than
    aborted = 0
    for page in s.client.get_paginator("list_multipart_uploads").paginate(Bucket=s.bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if upload["Initiated"] < cutoff:
                s.client.abort_multipart_upload(
                    Bucket=s.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted += 1
    return aborted
