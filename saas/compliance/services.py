"""Personal data: exports (one person, or the whole tenant), erasure, tenant deletion, retention.

No request in here: pages, jobs and the CLI call these with plain values.

- An export is a row of privacy_exports made by `request_export` / `request_tenant_export`; the job
  (workers.compliance.run_export) calls `run_export`, which writes the zip to a temporary file,
  stores it under a key made from the row's id and only then marks the row done, so a job killed
  half-way leaves it not done and the retry overwrites whatever it had stored. The download link
  expires (EXPORT_DAYS after the export is made; each link handed out lives at most an hour).
- Erasure asks every registered module to anonymise the person, in one transaction, then records
  the fact (an Erasure row and an audit entry with counts, never values).
- Tenant deletion: an owner requests it; the tenant is "pending deletion" for GRACE_DAYS, still fully
  usable and exportable, and the request can be cancelled; then the job deletes its files, drops its
  schema and deactivates it. The shared tenant_deletions row is the record that survives.
- Retention (per tenant, PrivacySettings): erase contacts untouched for N months; delete audit
  entries older than N days. Export files are purged once their link has expired.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, select, text, update

import tenants.registry  # noqa: F401 - every module's models, exporter and eraser registered
from saas import audit, tenancy
from saas.compliance import account, registry
from saas.compliance.models import Erasure, PrivacyExport, PrivacySettings, TenantDeletion
from saas.compliance.registry import Subject
from saas.compliance.tools import DERIVED
from saas.extensions import db
from saas.models import Invitation, Membership, Tenant, User
from saas.storage import setting, storage
from saas.tenancy import require_tenant

CONFIRM_WORD = "ERASE"
EXPORT_AREA = "exports"
LINK_SECONDS = 3600  # a download link handed out lives at most this long (and never past the export's expiry)
# Tables left out of the whole-tenant export: derived data that the others rebuild.
SKIP_TABLES = {"search_grams"}
MONTH = timedelta(days=30)  # retention months count 30 days
MIN_CONTACT_MONTHS, MAX_CONTACT_MONTHS = 6, 240
MIN_AUDIT_DAYS, MAX_AUDIT_DAYS = 90, 3650
RETENTION_BATCH = 500  # contacts erased per tenant per run


class ComplianceError(ValueError):
    """A refusal with a message for people; nothing was changed."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def now() -> datetime:
    return datetime.now(UTC)


def export_days() -> int:
    return int(setting("CRM_EXPORT_LINK_DAYS", 7))


def grace_days() -> int:
    return int(setting("CRM_TENANT_DELETION_DAYS", 30))


# Subjects ----------------------------------------------------------------------------------------


def subject(kind: str, subject_id: int) -> Subject:
    """The person of this kind and id in the bound tenant; LookupError if there is none."""
    found = registry.resolve(kind, subject_id)
    if found is None:
        raise LookupError(subject_id)
    return found


def member_subject(membership_id: int) -> Subject:
    return account.membership_subject(membership_id)


def erasure_of(found: Subject) -> Erasure | None:
    return db.session.scalar(
        select(Erasure)
        .where(Erasure.subject_kind == found.kind, Erasure.subject_id == found.id)
        .order_by(Erasure.id.desc())
        .limit(1)
    )


# Exports -----------------------------------------------------------------------------------------


def _queue(row: PrivacyExport) -> None:
    from workers.compliance import run_export
    from workers.queues import enqueue

    enqueue(run_export, row.tenant_id, row.id, queue_name="low")


def request_export(found: Subject, user_id: int | None) -> PrivacyExport:
    """Queue the export of everything held about one person."""
    row = PrivacyExport(
        tenant_id=require_tenant().id, kind=found.kind, subject_id=found.id, requested_by=user_id
    )
    db.session.add(row)
    db.session.flush()
    audit.record("privacy_export", "privacy_exports", row.id, summary=f"{found.kind} #{found.id}")
    db.session.commit()
    _queue(row)
    return row


def request_tenant_export(user_id: int | None) -> PrivacyExport:
    """Queue the export of the whole workspace (a CSV per table, a manifest, the attached files)."""
    row = PrivacyExport(tenant_id=require_tenant().id, kind="tenant", subject_id=None, requested_by=user_id)
    db.session.add(row)
    db.session.flush()
    audit.record("privacy_export", "privacy_exports", row.id, summary="whole workspace")
    db.session.commit()
    _queue(row)
    return row


def exports(found: Subject | None = None, limit: int = 20) -> list[PrivacyExport]:
    """The bound tenant's recent exports, newest first (of one person, when given)."""
    stmt = select(PrivacyExport).where(PrivacyExport.tenant_id == require_tenant().id)
    if found is not None:
        stmt = stmt.where(PrivacyExport.kind == found.kind, PrivacyExport.subject_id == found.id)
    return list(db.session.scalars(stmt.order_by(PrivacyExport.id.desc()).limit(limit)))


def get_export(export_id: int) -> PrivacyExport:
    row = db.session.scalar(
        select(PrivacyExport).where(
            PrivacyExport.id == export_id, PrivacyExport.tenant_id == require_tenant().id
        )
    )
    if row is None:
        raise LookupError(export_id)
    return row


def file_name(row: PrivacyExport) -> str:
    stamp = (row.finished_at or row.created_at).strftime("%Y%m%d")
    if row.kind == "tenant":
        return f"{require_tenant().slug}-export-{stamp}.zip"
    return f"personal-data-{row.kind.replace('_', '-')}-{row.subject_id}-{stamp}.zip"


def is_downloadable(row: PrivacyExport) -> bool:
    return row.status == "done" and bool(row.storage_key) and bool(row.expires_at and row.expires_at > now())


def download_url(export_id: int) -> str:
    """A link to the finished export, for at most an hour and never past its expiry (audited)."""
    row = get_export(export_id)
    if row.status != "done" or not row.storage_key:
        raise ComplianceError(_("This export is not ready."))
    left = (row.expires_at - now()).total_seconds() if row.expires_at else 0
    if left <= 0:
        raise ComplianceError(_("This export has expired. Make a new one."))
    url = storage(EXPORT_AREA).download_url(row.storage_key, file_name(row), int(min(left, LINK_SECONDS)))
    audit.record("privacy_export_download", "privacy_exports", row.id)
    db.session.commit()
    return url


def run_export(export_id: int) -> str:
    """The job's work (tenant bound): build, store, and only then mark done. Safe to run again."""
    bound = require_tenant()
    row = db.session.get(PrivacyExport, export_id)
    if row is None or row.tenant_id != bound.id:
        return "missing"
    if row.status in ("done", "expired"):
        return "already done"
    found = None
    if row.kind != "tenant":
        found = registry.resolve(row.kind, row.subject_id)
        if found is None:
            row.status, row.error, row.finished_at = "failed", "The person no longer exists.", now()
            db.session.commit()
            return "failed"
    row.status, row.started_at, row.attempts, row.error = "running", now(), row.attempts + 1, None
    db.session.commit()
    key = f"compliance/{bound.id}/{row.id}.zip"
    with tempfile.TemporaryDirectory(prefix="crm-export-") as tmp:
        path = Path(tmp) / "export.zip"
        if found is None:
            _write_tenant_zip(path, Path(tmp))
        else:
            _write_person_zip(found, path, Path(tmp))
        storage(EXPORT_AREA).put_file(key, path, "application/zip")
        size = path.stat().st_size
    db.session.rollback()  # end the reading transaction; the row is written fresh
    row = db.session.get(PrivacyExport, export_id)
    finished = now()
    row.status, row.storage_key, row.size = "done", key, size
    row.finished_at, row.expires_at = finished, finished + timedelta(days=export_days())
    audit.record("privacy_export_ready", "privacy_exports", row.id, summary=f"{size} bytes")
    db.session.commit()
    return "done"


def export_failed(export_id: int, error: BaseException, final: bool) -> None:
    """After a failed attempt: say why; "failed" only when no retry is left (else queued again)."""
    db.session.rollback()
    row = db.session.get(PrivacyExport, export_id)
    if row is None or row.status == "done":
        return
    row.status = "failed" if final else "queued"
    row.error = f"{type(error).__name__}: {error}"[:2000]
    db.session.commit()


def _safe_part(name: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f\\:*?\"<>|]", "_", name).strip().strip(".")
    return name[-150:] or "file"


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str).encode()


def _add_file(zf: zipfile.ZipFile, arcname: str, source: Any, tmp: Path) -> bool:
    """Put one exported file into the zip: bytes, or a stored object (key, or (area, key))."""
    if isinstance(source, bytes | bytearray):
        zf.writestr(arcname, bytes(source))
        return True
    area, key = source if isinstance(source, tuple) else ("attachments", source)
    target = tmp / "file.part"
    if not storage(area).get_file(key, target):
        return False
    zf.write(target, arcname)
    target.unlink()
    return True


def _write_person_zip(found: Subject, path: Path, tmp: Path) -> None:
    parts = registry.export_all(found)
    manifest: dict[str, Any] = {
        "subject": {"kind": found.kind, "id": found.id},
        "workspace": require_tenant().slug,
        "generated_at": now().isoformat(),
        "modules": {},
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, part in parts.items():
            zf.writestr(f"{name}.json", _json(part["json"]))
            files, missing, used = [], [], set()
            for file_name_, source in part["files"]:
                arcname = f"files/{name}/" + "/".join(_safe_part(p) for p in str(file_name_).split("/") if p)
                while arcname in used:
                    arcname = arcname.replace(f"files/{name}/", f"files/{name}/_", 1)
                used.add(arcname)
                (files if _add_file(zf, arcname, source, tmp) else missing).append(arcname)
            manifest["modules"][name] = {"json": f"{name}.json", "files": files, "missing_files": missing}
        zf.writestr("manifest.json", _json(manifest))


def tenant_tables() -> list[Any]:
    """Every tenant table (from the models' metadata), in dependency order."""
    from saas.migrate import import_tenant_models

    import_tenant_models()
    return [t for t in db.metadata.sorted_tables if tenancy.is_tenant_table(t) and t.name not in SKIP_TABLES]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _write_tenant_zip(path: Path, tmp: Path) -> None:
    """One consistent snapshot: every table as CSV, the attached files, and a manifest of row counts."""
    from tenants.customers.extra_models import Attachment

    bound = require_tenant()
    tenant = db.session.get(Tenant, bound.id)
    members = db.session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == bound.id)
    ).all()
    manifest: dict[str, Any] = {
        "workspace": {
            "slug": tenant.slug,
            "name": tenant.name,
            "timezone": tenant.timezone,
            "currency": tenant.currency,
        },
        "generated_at": now().isoformat(),
        "format": "one CSV per table (UTF-8, header row; empty = null, JSON for lists and objects)",
        "tables": {},
        "skipped_tables": sorted(SKIP_TABLES),
        "members": [
            {"user_id": u.id, "name": u.name, "email": u.email, "role": m.role, "active": m.is_active}
            for m, u in members
        ],
        "attachments": {"files": 0, "missing": []},
    }
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        db.engine.connect() as raw,
    ):
        conn = raw.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("set transaction read only"))
            for table in tenant_tables():
                columns = [c for c in table.columns if c.name not in DERIVED]
                rows = 0
                with zf.open(f"tables/{table.name}.csv", "w", force_zip64=True) as out:
                    writer_io = io.TextIOWrapper(out, encoding="utf-8", newline="")
                    writer = csv.writer(writer_io)
                    writer.writerow([c.name for c in columns])
                    result = conn.execution_options(yield_per=2000).execute(select(*columns))
                    for row in result:
                        writer.writerow([_cell(v) for v in row])
                        rows += 1
                    writer_io.flush()
                    writer_io.detach()
                manifest["tables"][table.name] = {
                    "file": f"tables/{table.name}.csv",
                    "rows": rows,
                    "columns": [c.name for c in columns],
                }
            files = conn.execute(
                select(Attachment.id, Attachment.file_name, Attachment.storage_key).order_by(Attachment.id)
            ).all()
        for file_id, name, key in files:
            arcname = f"attachments/{file_id}/{_safe_part(name)}"
            if _add_file(zf, arcname, key, tmp):
                manifest["attachments"]["files"] += 1
            else:
                manifest["attachments"]["missing"].append(arcname)
        zf.writestr("manifest.json", _json(manifest))


def purge_expired_exports() -> int:
    """Delete the files of exports whose link has expired (all tenants; no tenant bound)."""
    rows = list(
        db.session.scalars(
            select(PrivacyExport).where(
                PrivacyExport.status == "done",
                PrivacyExport.expires_at < now(),
                PrivacyExport.storage_key.is_not(None),
            )
        )
    )
    store = storage(EXPORT_AREA) if rows else None
    for row in rows:
        store.delete(row.storage_key)
        row.status, row.storage_key = "expired", None
    db.session.commit()
    return len(rows)


def _drop_subject_exports(found: Subject) -> int:
    """An erased person's earlier exports hold their data: delete the files."""
    rows = list(
        db.session.scalars(
            select(PrivacyExport).where(
                PrivacyExport.tenant_id == require_tenant().id,
                PrivacyExport.kind == found.kind,
                PrivacyExport.subject_id == found.id,
                PrivacyExport.storage_key.is_not(None),
            )
        )
    )
    for row in rows:
        storage(EXPORT_AREA).delete(row.storage_key)
        row.status, row.storage_key, row.expires_at = "expired", None, now()
    return len(rows)


# Erasure -----------------------------------------------------------------------------------------


def check_confirmation(found: Subject, confirm: str) -> None:
    typed = (confirm or "").strip()
    if typed.upper() == CONFIRM_WORD or (found.email and typed.lower() == found.email.lower()):
        return
    raise ComplianceError(
        _("To confirm, type %(word)s or the person's email address. Nothing was erased.", word=CONFIRM_WORD),
        "confirm",
    )


def erase(found: Subject, confirm: str, actor_id: int | None) -> dict[str, Any]:
    """Erase a person after the confirmation was typed; refuses to erase oneself or an owner."""
    check_confirmation(found, confirm)
    if found.kind == "staff_user":
        if found.id == actor_id:
            raise ComplianceError(_("You cannot erase yourself. Ask another admin."))
        mine = account.member(found.id)
        if mine is not None and mine[0].role == "owner":
            raise ComplianceError(_("An owner cannot be erased. Change their role first."))
    return erase_subject(found, actor_id, "request")


def erase_subject(found: Subject, actor_id: int | None, reason: str) -> dict[str, Any]:
    """Every module anonymises the person; the fact is kept (Erasure row, audit entry), not the data."""
    try:
        summary = registry.erase_all(found)
        summary["exports"] = {"files_deleted": _drop_subject_exports(found)}
        db.session.add(
            Erasure(
                subject_kind=found.kind,
                subject_id=found.id,
                reason=reason,
                by_user_id=actor_id,
                summary=summary,
            )
        )
        audit.record(
            "privacy_erase",
            found.kind,
            found.id,
            {"modules": [None, sorted(summary)]},
            summary=f"personal data erased ({reason})",
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return summary


# Tenant deletion ---------------------------------------------------------------------------------


def pending_deletion() -> TenantDeletion | None:
    return db.session.scalar(
        select(TenantDeletion).where(
            TenantDeletion.tenant_id == require_tenant().id, TenantDeletion.status == "pending"
        )
    )


def deletion_history(limit: int = 5) -> list[TenantDeletion]:
    return list(
        db.session.scalars(
            select(TenantDeletion)
            .where(TenantDeletion.tenant_id == require_tenant().id)
            .order_by(TenantDeletion.id.desc())
            .limit(limit)
        )
    )


def _owner_only(role: str) -> None:
    if role != "owner":
        raise ComplianceError(_("Only an owner can delete the workspace."))


def request_deletion(role: str, user_id: int, confirm: str) -> TenantDeletion:
    """Schedule the workspace's deletion after the grace period (type the workspace's address to confirm)."""
    _owner_only(role)
    bound = require_tenant()
    if (confirm or "").strip().lower() != bound.slug.lower():
        raise ComplianceError(
            _("To confirm, type the workspace's address: %(slug)s. Nothing was changed.", slug=bound.slug),
            "confirm",
        )
    existing = pending_deletion()
    if existing is not None:
        return existing
    row = TenantDeletion(
        tenant_id=bound.id,
        requested_by=user_id,
        requested_at=now(),
        due_at=now() + timedelta(days=grace_days()),
    )
    db.session.add(row)
    db.session.flush()
    audit.record("tenant_deletion_requested", "tenant", bound.id, {"due_at": [None, row.due_at.isoformat()]})
    db.session.commit()
    return row


def cancel_deletion(role: str, user_id: int) -> TenantDeletion:
    _owner_only(role)
    row = pending_deletion()
    if row is None:
        raise ComplianceError(_("The workspace is not going to be deleted."))
    row.status, row.cancelled_by, row.cancelled_at = "cancelled", user_id, now()
    audit.record("tenant_deletion_cancelled", "tenant", row.tenant_id)
    db.session.commit()
    return row


def due_deletions() -> list[int]:
    """Ids of pending deletions whose grace period is over (no tenant bound)."""
    return list(
        db.session.scalars(
            select(TenantDeletion.id)
            .where(TenantDeletion.status == "pending", TenantDeletion.due_at <= now())
            .order_by(TenantDeletion.id)
        )
    )


def delete_tenant(deletion_id: int) -> str:
    """Carry out a due deletion (no tenant bound). Files first, then one transaction that drops the
    schema, deactivates the tenant and its memberships and marks the request done: a crash anywhere
    leaves the request pending, and the next run finishes it."""
    row = db.session.get(TenantDeletion, deletion_id)
    if row is None or row.status != "pending" or row.due_at > now():
        return "skipped"
    tenant = db.session.get(Tenant, row.tenant_id)
    if not tenancy.SCHEMA_RE.match(tenant.schema_name):
        raise ValueError(f"bad schema name in registry: {tenant.schema_name!r}")
    files = _delete_tenant_files(tenant)
    db.session.rollback()
    row = db.session.execute(
        select(TenantDeletion).where(TenantDeletion.id == deletion_id).with_for_update()
    ).scalar_one()
    if row.status != "pending":
        db.session.rollback()
        return "skipped"
    tenant = db.session.get(Tenant, row.tenant_id)
    exists = db.session.execute(
        text("select count(*) from pg_namespace where nspname = :s"), {"s": tenant.schema_name}
    ).scalar_one()
    db.session.execute(text(f'drop schema if exists "{tenant.schema_name}" cascade'))
    tenant.status = "deleted"
    when = now()
    members = db.session.execute(
        update(Membership)
        .where(Membership.tenant_id == tenant.id, Membership.is_active.is_(True))
        .values(is_active=False, deactivated_at=when)
    ).rowcount
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.tenant_id == tenant.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=when)
    )
    db.session.execute(
        update(PrivacyExport)
        .where(PrivacyExport.tenant_id == tenant.id, PrivacyExport.status.in_(("done", "queued", "running")))
        .values(status="expired", storage_key=None)
    )
    row.status, row.done_at = "done", when
    row.summary = (
        f"schema {tenant.schema_name} {'dropped' if exists else 'already gone'}; {files} files deleted; "
        f"{members} memberships deactivated"
    )
    db.session.commit()
    current_app.logger.info("tenant %s deleted: %s", tenant.id, row.summary)
    return "deleted"


def _delete_tenant_files(tenant: Tenant) -> int:
    """Attachments, export files and import uploads of the tenant (idempotent: missing files are fine)."""
    from tenants.customers.extra_models import Attachment

    count = 0
    keys: list[str] = []
    schema_there = db.session.execute(
        text("select count(*) from pg_namespace where nspname = :s"), {"s": tenant.schema_name}
    ).scalar_one()
    if schema_there:
        with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
            keys = list(db.session.scalars(select(Attachment.storage_key)))
    store = storage("attachments")
    for key in keys:
        store.delete(key)
        count += 1
    exports_store = storage(EXPORT_AREA)
    for key in db.session.scalars(
        select(PrivacyExport.storage_key).where(
            PrivacyExport.tenant_id == tenant.id, PrivacyExport.storage_key.is_not(None)
        )
    ):
        exports_store.delete(key)
        count += 1
    uploads = Path(current_app.instance_path) / "imports" / str(int(tenant.id))
    if uploads.is_dir():
        count += sum(1 for p in uploads.rglob("*") if p.is_file())
        shutil.rmtree(uploads, ignore_errors=True)
    return count


# Retention ---------------------------------------------------------------------------------------


def retention_settings() -> PrivacySettings:
    """The workspace's rule (an unsaved default when it never set one)."""
    return db.session.get(PrivacySettings, 1) or PrivacySettings(id=1, contact_months=0, audit_days=0)


def _whole(value: Any, label: str, low: int, high: int, field: str) -> int:
    try:
        number = int(str(value).strip() or 0)
    except ValueError:
        raise ComplianceError(_("%(field)s: enter a whole number.", field=label), field) from None
    if number != 0 and not low <= number <= high:
        raise ComplianceError(
            _("%(field)s: 0 (off) or from %(low)d to %(high)d.", field=label, low=low, high=high), field
        )
    return number


def save_retention(contact_months: Any, audit_days: Any, user_id: int | None) -> PrivacySettings:
    months = _whole(
        contact_months,
        _("Erase untouched contacts after"),
        MIN_CONTACT_MONTHS,
        MAX_CONTACT_MONTHS,
        "contact_months",
    )
    days = _whole(audit_days, _("Delete audit entries after"), MIN_AUDIT_DAYS, MAX_AUDIT_DAYS, "audit_days")
    row = db.session.get(PrivacySettings, 1)
    if row is None:
        row = PrivacySettings(id=1)
        db.session.add(row)
    row.contact_months, row.audit_days, row.updated_by = months, days, user_id
    db.session.commit()
    return row


def apply_retention() -> dict[str, int]:
    """Apply the bound tenant's retention rule once (the daily job); returns what it did."""
    from tenants.admin.models import AuditEvent
    from tenants.customers.privacy import stale_contacts

    rule = db.session.get(PrivacySettings, 1)
    done = {"audit_entries_deleted": 0, "contacts_erased": 0}
    if rule is None:
        return done
    if rule.audit_days:
        cutoff = now() - timedelta(days=rule.audit_days)
        deleted = db.session.execute(
            delete(AuditEvent).where(AuditEvent.at < cutoff), execution_options={"synchronize_session": False}
        ).rowcount
        if deleted:
            audit.record(
                "retention_purge",
                "audit_log",
                summary=f"{deleted} entries older than {rule.audit_days} days deleted",
            )
        db.session.commit()
        done["audit_entries_deleted"] = deleted
    if rule.contact_months:
        cutoff = now() - rule.contact_months * MONTH
        erased = select(Erasure.subject_id).where(Erasure.subject_kind == "contact")
        for contact_id in stale_contacts(cutoff, erased, RETENTION_BATCH):
            found = registry.resolve("contact", contact_id)
            if found is not None:
                erase_subject(found, None, "retention")
                done["contacts_erased"] += 1
    return done
