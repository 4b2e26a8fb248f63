"""Attachments: files on any record, by (record_type, record_id).

The bytes live in S3 (through boto3, server-side encrypted) when CRM_S3_BUCKET is configured,
otherwise in a folder under the instance path. The storage key is always made here,
"<tenant id>/<random hex>", never from anything the user sent. Whoever may see the record sees
its attachments; a record type is attachable once a checker for it is registered (companies and
contacts here; other modules add theirs with register_record_type).

Deleting a company or contact leaves its attachments where they are (a bulk delete can be undone,
and undo must find them); purge_deleted_records, run hourly per tenant (workers/attachments.py),
deletes the files and then the rows of records that are gone for good. delete_files is the one way
stored attachment files are deleted: here, in the purge and in a contact's erasure (privacy.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from flask_babel import gettext as _
from sqlalchemy import and_, exists, or_, select
from sqlalchemy import delete as delete_rows

from saas import audit, tenancy
from saas.extensions import db
from saas.storage import LocalStorage, S3Storage, setting
from saas.storage import storage as shared_storage
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.extra_models import Attachment
from tenants.customers.list_models import undoable_delete
from tenants.customers.models import Company, Contact
from tenants.customers.people import Viewer

DEFAULT_MAX_BYTES = 20 * 1024 * 1024

# extension -> (content type served, magic check name)
ALLOWED: dict[str, tuple[str, str]] = {
    "png": ("image/png", "png"),
    "jpg": ("image/jpeg", "jpeg"),
    "jpeg": ("image/jpeg", "jpeg"),
    "gif": ("image/gif", "gif"),
    "webp": ("image/webp", "webp"),
    "pdf": ("application/pdf", "pdf"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "zip"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "zip"),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "zip"),
    "odt": ("application/vnd.oasis.opendocument.text", "zip"),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet", "zip"),
    "zip": ("application/zip", "zip"),
    "doc": ("application/msword", "ole"),
    "xls": ("application/vnd.ms-excel", "ole"),
    "ppt": ("application/vnd.ms-powerpoint", "ole"),
    "txt": ("text/plain; charset=utf-8", "text"),
    "csv": ("text/csv; charset=utf-8", "text"),
    "md": ("text/markdown; charset=utf-8", "text"),
}


def _is_text(head: bytes) -> bool:
    return b"\x00" not in head


MAGIC: dict[str, Callable[[bytes], bool]] = {
    "png": lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"),
    "jpeg": lambda h: h.startswith(b"\xff\xd8\xff"),
    "gif": lambda h: h[:6] in (b"GIF87a", b"GIF89a"),
    "webp": lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP",
    "pdf": lambda h: h.startswith(b"%PDF-"),
    "zip": lambda h: h[:4] in (b"PK\x03\x04", b"PK\x05\x06"),
    "ole": lambda h: h.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    "text": _is_text,
}

# record type -> function (viewer, record_id) that raises NotFound when the viewer may not see it.
RECORD_CHECKERS: dict[str, Callable[[Viewer, int], Any]] = {}


def register_record_type(record_type: str, checker: Callable[[Viewer, int], Any]) -> None:
    RECORD_CHECKERS[record_type] = checker


def _customer_checker(record_type: str) -> Callable[[Viewer, int], Any]:
    def check(viewer: Viewer, record_id: int) -> Any:
        from tenants.customers.services import get_record

        return get_record(viewer, record_type, record_id)

    return check


register_record_type("company", _customer_checker("company"))
register_record_type("contact", _customer_checker("contact"))


def check_record(viewer: Viewer, record_type: str, record_id: int) -> Any:
    checker = RECORD_CHECKERS.get(record_type)
    if checker is None:
        raise NotFound(record_id)
    return checker(viewer, record_id)


# Storage --------------------------------------------------------------------------------------


def max_bytes() -> int:
    return int(setting("CRM_ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES))


def storage() -> LocalStorage | S3Storage:
    return shared_storage("attachments")


def delete_files(keys: Iterable[str]) -> None:
    """Delete stored attachment files; one already gone is fine. Only for rows that are deleted, or
    are being deleted in a transaction whose failure leaves nothing anyone can see them through."""
    store = storage()
    for key in keys:
        store.delete(key)


# Services -------------------------------------------------------------------------------------


def clean_name(name: str) -> str:
    """A file name to show and offer on download: the last path part, no control characters."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"]", "", name).strip().strip(".")
    return name[-255:] or "file"


def _read_limited(stream: BinaryIO, limit: int) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise CustomerError(
            _("The file is too large: at most %(mb)s MB.", mb=f"{limit / (1024 * 1024):g}"), "file"
        )
    return data


def sniff(file_name: str, data: bytes) -> str:
    """The content type to serve the file with, or CustomerError when its type is not allowed."""
    ext = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if ext not in ALLOWED:
        raise CustomerError(
            _(
                "Files of this type cannot be attached. Allowed: %(types)s.",
                types=", ".join(sorted(ALLOWED)),
            ),
            "file",
        )
    content_type, magic = ALLOWED[ext]
    if not MAGIC[magic](data[:8192]):
        raise CustomerError(_("The file's content does not match its type (.%(ext)s).", ext=ext), "file")
    return content_type


def upload(viewer: Viewer, record_type: str, record_id: int, file_name: str, stream: BinaryIO) -> Attachment:
    check_record(viewer, record_type, record_id)
    name = clean_name(file_name)
    data = _read_limited(stream, max_bytes())
    if not data:
        raise CustomerError(_("The file is empty."), "file")
    content_type = sniff(name, data)
    tenant_id = tenancy.require_tenant().id
    key = f"{int(tenant_id)}/{uuid.uuid4().hex}"
    store = storage()
    store.put(key, data, content_type)
    try:
        row = Attachment(
            record_type=record_type,
            record_id=record_id,
            file_name=name,
            content_type=content_type,
            size=len(data),
            storage_key=key,
            uploaded_by=viewer.user_id,
        )
        db.session.add(row)
        db.session.commit()
    except Exception:
        db.session.rollback()
        store.delete(key)
        raise
    return row


def get_attachment(viewer: Viewer, attachment_id: int) -> Attachment:
    """An attachment of a record the viewer may see (else NotFound)."""
    row = db.session.get(Attachment, attachment_id)
    if row is None:
        raise NotFound(attachment_id)
    check_record(viewer, row.record_type, row.record_id)
    return row


def read(viewer: Viewer, attachment_id: int) -> tuple[Attachment, bytes]:
    row = get_attachment(viewer, attachment_id)
    data = storage().get(row.storage_key)
    if data is None:
        raise NotFound(attachment_id)
    return row, data


def delete(viewer: Viewer, attachment_id: int) -> Attachment:
    row = get_attachment(viewer, attachment_id)
    key = row.storage_key
    db.session.delete(row)
    db.session.commit()
    delete_files([key])
    return row


PURGE_LIMIT = 1000  # attachments per tenant per run; the rest go in the next runs


def _record_gone() -> Any:
    """SQL: the attachment's company or contact no longer exists (other record types are left alone)."""
    return or_(
        *(
            and_(Attachment.record_type == record_type, ~exists().where(model.id == Attachment.record_id))
            for record_type, model in (("company", Company), ("contact", Contact))
        )
    )


def purge_deleted_records(limit: int = PURGE_LIMIT) -> int:
    """Delete the attachments of deleted companies and contacts that no bulk undo can bring back:
    each file first, then the rows, with one audit entry for the run; how many. Idempotent: a run
    that fails after deleting files leaves rows the next run finds again (a missing file is fine)."""
    rows = db.session.execute(
        select(Attachment.id, Attachment.record_type, Attachment.record_id, Attachment.storage_key)
        .where(_record_gone(), ~undoable_delete(Attachment.record_type, Attachment.record_id))
        .order_by(Attachment.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # an overlapping run takes the others
    ).all()
    if not rows:
        db.session.rollback()
        return 0
    delete_files(row.storage_key for row in rows)
    ids = [row.id for row in rows]
    db.session.execute(
        delete_rows(Attachment).where(Attachment.id.in_(ids)),
        execution_options={"synchronize_session": False},
    )
    records = sorted({f"{row.record_type} {row.record_id}" for row in rows})
    audit.record(  # "delete": an action the audit page already names in every language
        "delete",
        "attachments",
        changes={"id": [ids, None], "record": [records, None]},
        summary=f"attachments of deleted records purged (files and rows): {len(ids)}",
    )
    db.session.commit()
    return len(ids)


def record_attachments(record_type: str, record_id: int, limit: int = 50) -> list[Attachment]:
    return list(
        db.session.scalars(
            select(Attachment)
            .where(Attachment.record_type == record_type, Attachment.record_id == record_id)
            .order_by(Attachment.id.desc())
            .limit(limit)
        )
    )
