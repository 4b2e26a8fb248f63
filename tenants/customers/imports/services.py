"""Imports: upload, dry run, the batched upsert the job runs, undo and the error report (no request here).

Rules:
- Natural keys: a contact is found again by its email (case-insensitive); a company by its domain (from
  the website column) when it has one, else by its name (case-insensitive).
- Every row is checked before anything is written; a bad row is reported (row, column, reason, values)
  and the other rows go on. A key seen again further down the same file: the later row is reported as a
  duplicate and not imported (never merged).
- Blank cells leave an existing record's value alone; only filled cells update it.
- Records are written in batches, each batch in one transaction together with the import's counts, so a
  retried job carries on after the last committed batch and no record is ever half-written.
- Updating needs customers:edit, and only records the importer may see are updated; a key that belongs
  to a record they cannot see is an error on that row.
- Every record written is remembered in import_records (previous values for updates), for undo.
"""

from __future__ import annotations

import contextvars
import csv
import io
import json
import queue
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Text, bindparam, case, delete, func, insert, select, text, type_coerce, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import NullType

from saas import audit
from saas.extensions import db
from saas.tenancy import qualified, require_tenant
from tenants.customers import search
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.imports import reading
from tenants.customers.imports.models import Import, ImportRecord
from tenants.customers.models import STAGES, Activity, Company, Contact, LifecycleChange, Task
from tenants.customers.people import Viewer
from tenants.customers.services import CJK_RE, CONTROL_RE, PHONE_RE, clean_website, full_name
from tenants.customers.visibility import owned_by_visible

BATCH = 5000
PREVIEW_ROWS = 5
MAX_ERRORS_SHOWN = 200

FIELD_LABELS: dict[str, Any] = {
    "name": _l("Name"),
    "first_name": _l("First name"),
    "last_name": _l("Last name"),
    "email": _l("Email"),
    "phones": _l("Phones"),
    "company": _l("Company"),
    "job_title": _l("Job title"),
    "website": _l("Website"),
    "industry": _l("Industry"),
    "street": _l("Street"),
    "city": _l("City"),
    "region": _l("Region"),
    "postal_code": _l("Postal code"),
    "country": _l("Country"),
    "tags": _l("Tags"),
    "source": _l("Source"),
    "lifecycle_stage": _l("Lifecycle stage"),
    "birthday": _l("Birthday"),
    "interests": _l("Interests"),
}
FIELDS = {
    "contact": ("name", "first_name", "last_name", "email", "phones", "company", "job_title", "street", "city",
                "region", "postal_code", "country", "tags", "source", "lifecycle_stage", "birthday", "interests"),
    "company": ("name", "website", "industry", "phones", "street", "city", "region", "postal_code", "country",
                "tags", "source", "lifecycle_stage"),
}  # fmt: skip
TEXT_LIMITS = {
    "first_name": 100, "last_name": 100, "job_title": 120, "industry": 120, "street": 300, "city": 120,
    "region": 120, "postal_code": 20, "country": 120, "source": 120, "interests": 5000,
}  # fmt: skip
EMAIL_RE = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")


def now() -> datetime:
    return datetime.now(UTC)


# Storage -----------------------------------------------------------------------------------------


def _root() -> Path:
    return Path(current_app.instance_path) / "imports"


def file_path(imp: Import) -> Path:
    """The stored upload: a key made by the server, checked to stay inside the imports folder."""
    root = _root().resolve()
    path = (root / imp.storage_key).resolve()
    if root not in path.parents:
        raise NotFound(imp.id)
    return path


# Upload ------------------------------------------------------------------------------------------


def create_import(
    viewer: Viewer, record_type: str, file_name: str, stream: Any, encoding: str = ""
) -> Import:
    """Store an upload and make its import record (status uploaded); CustomerError says what is wrong."""
    if record_type not in FIELDS:
        raise CustomerError(_("Choose contacts or companies."), "record_type")
    name = (file_name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:255]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in ("csv", "txt", "xlsx"):
        raise CustomerError(_("Upload a CSV file (.csv) or an Excel workbook (.xlsx)."), "file")
    file_format = "xlsx" if ext == "xlsx" else "csv"
    if encoding and encoding not in reading.ENCODINGS:
        raise CustomerError(_("Choose an encoding from the list."), "encoding")
    tenant = require_tenant()
    key = f"{tenant.id}/{uuid.uuid4().hex}.{file_format}"
    path = _root() / key
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with path.open("wb") as out:
        while chunk := stream.read(1024 * 1024):
            out.write(chunk)
            size += len(chunk)
    try:
        if size == 0:
            raise CustomerError(_("The file is empty."), "file")
        if file_format == "csv" and not encoding:
            with path.open("rb") as raw:
                encoding = reading.detect_encoding(raw.read(reading.SAMPLE)) or ""
            if not encoding:
                raise CustomerError(
                    _("The file's encoding could not be recognised: choose it from the list."), "encoding"
                )
        headers = _headers(path, file_format, encoding or None)
    except CustomerError:
        path.unlink(missing_ok=True)
        raise
    mapping = reading.guess_mapping(headers, FIELDS[record_type])
    imp = Import(
        record_type=record_type,
        status="uploaded",
        file_name=name,
        file_format=file_format,
        encoding=encoding or None,
        storage_key=key,
        headers=headers,
        mapping=mapping,
        created_by=viewer.user_id,
        message="",
        total_rows=0,
        processed_rows=0,
        created_count=0,
        updated_count=0,
        error_count=0,
        errors=[],
    )
    values = {c.key: getattr(imp, c.key) for c in Import.__table__.columns if c.key != "id"}
    values["created_at"] = now()
    # Core insert: the import's own bookkeeping is not audited row by row (one summary event is).
    new_id = db.session.execute(
        insert(Import.__table__).returning(Import.__table__.c.id), values
    ).scalar_one()
    db.session.commit()
    return get_import(viewer, new_id)


def _headers(path: Path, file_format: str, encoding: str | None) -> list[str]:
    try:
        for row in reading.rows(path, file_format, encoding):
            if any(cell.strip() for cell in row):
                return [CONTROL_RE.sub("", h).strip()[:200] for h in row]
    except reading.ReadError as err:
        raise CustomerError(str(err), "file") from None
    raise CustomerError(_("The file is empty: it has no header row."), "file")


def get_import(viewer: Viewer, import_id: int) -> Import:
    """An import of the bound tenant this viewer may see (own / team / all, by who made it)."""
    imp = db.session.scalar(
        select(Import).where(Import.id == import_id, owned_by_visible(viewer, Import.created_by))
    )
    if imp is None:
        raise NotFound(import_id)
    return imp


def list_imports(viewer: Viewer, limit: int = 50) -> list[Import]:
    return list(
        db.session.scalars(
            select(Import)
            .where(owned_by_visible(viewer, Import.created_by))
            .order_by(Import.created_at.desc(), Import.id.desc())
            .limit(limit)
        )
    )


def _set(imp_id: int, **values: Any) -> None:
    db.session.execute(update(Import.__table__).where(Import.__table__.c.id == imp_id).values(**values))


def data_rows(imp: Import) -> Iterator[tuple[int, list[str]]]:
    """(row number in the file, cells) of every non-blank row after the header."""
    seen_header = False
    for number, row in enumerate(reading.rows(file_path(imp), imp.file_format, imp.encoding), start=1):
        if not "".join(row).strip():
            continue
        if not seen_header:
            seen_header = True
            continue
        yield number, row


def preview(imp: Import, n: int = PREVIEW_ROWS) -> list[list[str]]:
    out = []
    try:
        for _number, row in data_rows(imp):
            out.append([c[:200] for c in row])
            if len(out) >= n:
                break
    except reading.ReadError:
        pass
    return out


def set_mapping(viewer: Viewer, imp: Import, form: dict[str, str]) -> dict[str, str]:
    """The mapping chosen on the page: column index -> field; a field named twice is refused."""
    if imp.status not in ("uploaded", "checked"):
        raise CustomerError(_("This import has started: its mapping can no longer change."))
    fields = FIELDS[imp.record_type]
    mapping: dict[str, str] = {}
    for i in range(len(imp.headers)):
        fld = (form.get(f"col-{i}") or "").strip()
        if not fld:
            continue
        if fld not in fields:
            raise CustomerError(_("Choose a field from the list."))
        if fld in mapping.values():
            raise CustomerError(_("%(field)s is chosen for two columns.", field=FIELD_LABELS[fld]))
        mapping[str(i)] = fld
    _set(imp.id, mapping=mapping, status="uploaded")
    db.session.commit()
    db.session.refresh(imp)
    return mapping


def missing_columns(record_type: str, mapping: dict[str, str]) -> list[str]:
    """What the mapping lacks: the key and a name."""
    chosen = set(mapping.values())
    problems = []
    if record_type == "contact":
        if "email" not in chosen:
            problems.append(_("Map a column to Email: it is how a contact is found again."))
        if not chosen & {"name", "first_name", "last_name"}:
            problems.append(_("Map a column to Name, First name or Last name."))
    elif "name" not in chosen:
        problems.append(_("Map a column to Name."))
    return problems


# Checking rows -----------------------------------------------------------------------------------


class RowError(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field_name, reason


SPACES_RE = re.compile(r"\s+")


def _no_control(value: str) -> str:
    # isprintable() is a fast "nothing to remove" for almost every cell (control characters are not printable).
    return value if value.isprintable() else CONTROL_RE.sub("", value)


def _text(value: str, fld: str) -> str:
    text = _no_control(value).strip()
    limit = TEXT_LIMITS.get(fld)
    if limit and len(text) > limit:
        raise RowError(
            fld, _("%(field)s can be at most %(n)d characters long.", field=FIELD_LABELS[fld], n=limit)
        )
    return text


LIST_SEPARATOR_RE = re.compile(r"[\n,;|]")


def _split_list(value: str) -> list[str]:
    if not LIST_SEPARATOR_RE.search(value):  # most cells hold one value
        return [value] if (value := value.strip()) else []
    return [v for part in LIST_SEPARATOR_RE.split(value) if (v := part.strip())]


def _phones(value: str) -> list[str]:
    phones: list[str] = []
    for phone in _split_list(value):
        phone = " ".join(phone.split())  # runs of spaces as one
        if not PHONE_RE.match(phone):
            raise RowError("phones", _("%(phone)s is not a phone number.", phone=phone[:60]))
        if phone not in phones:
            phones.append(phone)
    if len(phones) > 10:
        raise RowError("phones", _("At most 10 phone numbers."))
    return phones


def _tags(value: str) -> list[str]:
    tags: dict[str, str] = {}
    for tag in _split_list(value):
        if len(tag) > 40:
            raise RowError("tags", _("A tag can be at most 40 characters long."))
        tags.setdefault(tag.lower(), tag)
    if len(tags) > 30:
        raise RowError("tags", _("At most %(n)d tags.", n=30))
    return list(tags.values())


def _stage(value: str) -> str:
    stage = value.strip().lower()
    if stage not in STAGES:
        raise RowError(
            "lifecycle_stage", _("Lifecycle stage must be one of: %(stages)s.", stages=", ".join(STAGES))
        )
    return stage


def _birthday(value: str) -> date:
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise RowError("birthday", _("Enter the birthday as YYYY-MM-DD.")) from None
    if day.year < 1900 or day > date.today():
        raise RowError("birthday", _("That birthday cannot be right."))
    return day


def _split_name(name: str) -> tuple[str, str]:
    name = SPACES_RE.sub(" ", name).strip()
    if " " in name:
        first, last = name.rsplit(" ", 1)
        return first, last
    if CJK_RE.search(name) and len(name) >= 2:
        return name[1:], name[0]  # family name first
    return name, ""


def clean_row(record_type: str, cells: dict[str, str]) -> dict[str, Any]:
    """The values of one row (field -> cleaned value), only for filled cells; RowError on the first problem."""
    values: dict[str, Any] = {}
    for fld, raw in cells.items():
        if len(raw) > reading.MAX_CELL:
            raise RowError(fld, _("The cell is longer than 100 KB (%(n)d characters).", n=len(raw)))
        raw = raw.strip()
        if not raw:
            continue
        if fld == "email":
            email = raw.lower()
            if len(email) > 254 or not EMAIL_RE.match(email):
                raise RowError(fld, _("%(email)s is not an email address.", email=raw[:100]))
            values["email"] = email
        elif fld == "phones":
            values["phones"] = _phones(raw)
        elif fld == "tags":
            values["tags"] = _tags(raw)
        elif fld == "lifecycle_stage":
            values["lifecycle_stage"] = _stage(raw)
        elif fld == "birthday":
            values["birthday"] = _birthday(raw)
        elif fld == "website":
            try:
                values["website"], values["domain"] = clean_website(raw)
            except CustomerError as err:
                raise RowError(fld, str(err)) from None
        elif fld == "name":
            text = _no_control(raw).strip()
            if record_type == "company":
                if len(text) > 200:
                    raise RowError(
                        fld, _("%(field)s can be at most %(n)d characters long.", field=_("Name"), n=200)
                    )
                values["name"] = text
            else:
                first, last = _split_name(text)
                values.setdefault("first_name", first[:100])
                values.setdefault("last_name", last[:100])
        elif fld == "company":
            text = _no_control(raw).strip()
            if len(text) > 200:
                raise RowError(
                    fld, _("%(field)s can be at most %(n)d characters long.", field=_("Company"), n=200)
                )
            values["company"] = text
        else:
            values[fld] = _text(raw, fld)
    if record_type == "contact":
        if not values.get("email"):
            raise RowError(
                "email", _("Email is empty: every contact needs one (it is how it is found again).")
            )
        if not values.get("first_name") and not values.get("last_name"):
            raise RowError("name", _("Enter a first or a last name."))
        values["full_name"] = full_name(values.get("first_name", ""), values.get("last_name", ""))
    elif not values.get("name"):
        raise RowError("name", _("Name is empty."))
    return values


def natural_key(record_type: str, values: dict[str, Any]) -> tuple[str, str]:
    if record_type == "contact":
        return "email", values["email"]
    if values.get("domain"):
        return "website", "d:" + values["domain"]
    return "name", "n:" + values["name"].lower()


@dataclass
class Checked:
    number: int
    values: dict[str, Any] | None
    raw: list[str]


@dataclass
class Outcome:
    total: int = 0
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def _column_of(imp: Import, fld: str) -> str:
    for index, mapped in imp.mapping.items():
        if mapped == fld or (fld in ("first_name", "last_name") and mapped == "name"):
            headers = imp.headers
            return headers[int(index)] if int(index) < len(headers) else fld
    return str(FIELD_LABELS.get(fld, fld))


def _error(imp: Import, number: int, fld: str, reason: str, raw: list[str]) -> dict[str, Any]:
    return {
        "row": number,
        "column": _column_of(imp, fld),
        "reason": reason,
        "values": [c[:1000] for c in raw],
    }


def checked_rows(imp: Import, outcome: Outcome) -> Iterator[Checked]:
    """Every data row, cleaned; bad rows and later duplicates go into outcome.errors (values None)."""
    mapping = {int(k): v for k, v in imp.mapping.items()}
    seen: dict[str, int] = {}
    for number, row in data_rows(imp):
        outcome.total += 1
        cells = {fld: (row[i] if i < len(row) else "") for i, fld in mapping.items()}
        try:
            values = clean_row(imp.record_type, cells)
        except RowError as err:
            outcome.errors.append(_error(imp, number, err.field, err.reason, row))
            yield Checked(number, None, row)
            continue
        fld, key = natural_key(imp.record_type, values)
        if key in seen:
            outcome.errors.append(
                _error(
                    imp,
                    number,
                    fld,
                    _(
                        "Duplicate of row %(row)d (the same %(key)s): not imported.",
                        row=seen[key],
                        key=FIELD_LABELS[fld if fld != "website" else "website"],
                    ),
                    row,
                )
            )
            yield Checked(number, None, row)
            continue
        seen[key] = number
        yield Checked(number, values, row)


# Writing -----------------------------------------------------------------------------------------


def _model(record_type: str) -> Any:
    return Contact if record_type == "contact" else Company


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


COLUMNS = {
    "contact": ("first_name", "last_name", "full_name", "email", "phones", "company_id", "job_title", "street",
                "city", "region", "postal_code", "country", "tags", "source", "lifecycle_stage", "birthday",
                "interests"),
    "company": ("name", "website", "domain", "industry", "phones", "street", "city", "region", "postal_code",
                "country", "tags", "source", "lifecycle_stage"),
}  # fmt: skip


def _matching(stmt: Any, column: Any, values: list[str]) -> Any:
    """stmt, limited to rows whose `column` is one of `values`: a join with the unnested array (one
    parameter for thousands of keys). The planner knows the array's length from the value, and
    "= any(array)" would cost it a selectivity estimate per key."""
    keys = (
        func.unnest(bindparam(None, values, type_=ARRAY(Text))).table_valued("key").render_derived(name="k")
    )
    return stmt.join(keys, column == keys.c.key)


def written_columns(record_type: str, mapping: dict[str, str]) -> list[str]:
    """The columns an import with this mapping can write."""
    also = {"name": ("first_name", "last_name", "full_name"), "first_name": ("full_name",),
            "last_name": ("full_name",), "company": ("company_id",), "website": ("domain",)}  # fmt: skip
    fields = {f for fld in mapping.values() for f in (fld, *also.get(fld, ()))}
    return [c for c in COLUMNS[record_type] if c in fields]


def _existing(
    conn: Any, record_type: str, viewer: Viewer, batch: list[Checked], columns: list[str]
) -> dict[str, tuple[Any, bool]]:
    """natural key -> (row of the existing record, whether the viewer may see it)."""
    model = _model(record_type)
    table = model.__table__
    seen = case((owned_by_visible(viewer, table.c.owner_id), True), else_=False).label("visible_to_me")
    # Only what an update compares (the import's columns) and re-derives: a re-run reads every row.
    wanted = dict.fromkeys(["id", *columns, *search.SEARCHED[record_type]])
    # Arrays as the driver gives them (lists): SQLAlchemy's ARRAY type would walk every element again.
    cols = [
        type_coerce(table.c[c], NullType()).label(c) if isinstance(table.c[c].type, ARRAY) else table.c[c]
        for c in wanted
    ]
    found: dict[str, tuple[Any, bool]] = {}
    # No ORDER BY (the lowest id wins here instead): once the driver prepares the statement, the
    # database's generic plan for it would walk the primary key in order and test every row.
    if record_type == "contact":
        emails = [c.values["email"] for c in batch]
        # all at once: iterating fetches row by row
        for row in conn.execute(_matching(select(*cols, seen), table.c.email, emails)).all():
            _keep_first(found, row.email, row)
        return found
    domains = [c.values["domain"] for c in batch if c.values.get("domain")]
    names = [c.values["name"].lower() for c in batch if not c.values.get("domain")]
    if domains:
        for row in conn.execute(_matching(select(*cols, seen), table.c.domain, domains)).all():
            _keep_first(found, "d:" + row.domain, row)
    if names:
        stmt = _matching(select(*cols, seen), func.lower(table.c.name), names)
        for row in conn.execute(stmt).all():
            _keep_first(found, "n:" + row.name.lower(), row)
    return found


def _keep_first(found: dict[str, tuple[Any, bool]], key: str, row: Any) -> None:
    """Several records with one key: the first made (lowest id) is the one an import updates."""
    if key not in found or row.id < found[key][0].id:
        found[key] = (row, row.visible_to_me)


def _defaults(record_type: str, viewer: Viewer) -> dict[str, Any]:
    moment = now()
    row: dict[str, Any] = {
        col: ""
        for col in COLUMNS[record_type]
        if col in TEXT_LIMITS or col in ("source", "website", "name", "first_name", "last_name", "full_name")
    }
    row.update(
        phones=[],
        tags=[],
        lifecycle_stage="lead",
        owner_id=viewer.user_id,
        created_by=viewer.user_id,
        custom={},
        created_at=moment,
        updated_at=moment,
    )
    if record_type == "contact":
        row.update(
            email=None,
            company_id=None,
            birthday=None,
            emails=[],
            interests="",
            preferences="",
            consent_email=False,
            consent_email_how="",
            consent_sms=False,
            consent_sms_how="",
        )
    else:
        row.update(domain=None, size="", industry="")
    return row


# COPY's text format, written here: psycopg's write_row costs more than the rest of an imported row's
# writing in Python, and most columns of new records are the same for every row of a batch.
_COPY_SPECIAL_RE = re.compile(r"[\\\t\n\r]")
_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _json_text(value: Any) -> str:
    return "{}" if value == {} else json.dumps(value)  # every new record's custom values: {}


def copy_text(value: Any) -> str | None:
    """A value as COPY's text format writes it, before escaping (None: NULL)."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, list):
        return search.array_literal(value)  # text[] columns: the only arrays written here
    if isinstance(value, dict):
        return _json_text(value)
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    return str(value)


def copy_line(texts: list[str | None]) -> str:
    """Values from copy_text as one line of COPY's text format, without its newline."""
    if None in texts or _COPY_SPECIAL_RE.search("".join(texts)):  # type: ignore[arg-type]
        texts = [_NULL if t is None else t.translate(_COPY_ESCAPES) for t in texts]
    return "\t".join(texts)  # type: ignore[arg-type]


def _copy(table_name: str, columns: list[str], lines: list[str], temp: bool = False) -> None:
    """COPY lines (with their newlines) into a tenant table (or a temp table) on the session's
    connection, in its transaction."""
    if not lines:
        return
    conn = db.session.connection().connection.driver_connection
    cols = ", ".join(f'"{c}"' for c in columns)
    with (
        conn.cursor() as cur,
        cur.copy(f"copy {table_name if temp else qualified(table_name)} ({cols}) from stdin") as copy,
    ):
        for start in range(0, len(lines), 256):
            copy.write("".join(lines[start : start + 256]))


@dataclass
class Copy:
    """Lines (made beforehand, by the lookup stage) for the writing stage to COPY into a table."""

    table: str
    columns: list[str]
    lines: list[str]


def _created(
    record_type: str, viewer: Viewer, import_id: int, ids: list[int], records: list[dict[str, Any]]
) -> list[Copy]:
    """New records (their values) under the ids taken for them, their undo records and stage history."""
    base = _defaults(record_type, viewer)
    # The columns some row of the batch fills; the others are the same in every row, made text once.
    filled = list(dict.fromkeys(k for values in records for k in values))
    fixed = [c for c in base if c not in filled]
    tail = "\t" + copy_line([copy_text(base[c]) for c in fixed]) + "\n" if fixed else "\n"
    lines, history = [], []
    stage_end = f"\t{now().isoformat()}\t{copy_line([copy_text(viewer.user_id)])}\n"
    for rid, values in zip(ids, records, strict=True):
        row = base | values
        texts = [str(rid), *[copy_text(row[c]) for c in filled], *search.derived_for_copy(record_type, row)]
        lines.append(copy_line(texts) + tail)
        history.append(f"{record_type}\t{rid}\t{_NULL}\t{row['lifecycle_stage']}{stage_end}")
    return [
        Copy(_table_name(record_type), ["id", *filled, *search.DERIVED, *fixed], lines),
        _remembered(import_id, record_type, [(rid, None) for rid in ids]),
        Copy(
            "lifecycle_changes",
            ["record_type", "record_id", "from_stage", "to_stage", "at", "by_user_id"],
            history,
        ),
    ]


def _remembered(import_id: int, record_type: str, records: list[tuple[int, dict | None]]) -> Copy:
    """Undo records: the previous values of updated records (None: created)."""
    start = f"{import_id}\t{record_type}\t"
    return Copy(
        "import_records",
        ["import_id", "record_type", "record_id", "previous"],
        [
            f"{start}{rid}\t{_NULL if prev is None else copy_line([_json_text(prev)])}\n"
            for rid, prev in records
        ],
    )


def _table_name(record_type: str) -> str:
    return _model(record_type).__tablename__


@dataclass
class Prepared:
    """One batch, looked up and decided, ready for the writer."""

    inserts: list[dict[str, Any]] = field(default_factory=list)  # values of new records
    updates: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)  # (existing row, values)
    # New companies named in the contacts' company column: (id, name).
    companies: list[tuple[int, str]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    # What the writer writes (when writing), in order: new rows, then changed columns of updated ones.
    copies: list[Copy] = field(default_factory=list)
    changes: Copy | None = None


class _Lookups:
    """The reads that decide a batch, on a connection of their own (the lookup stage's).

    They run while the writer's connection writes the batch before, so the database does both at once.
    That connection does not see the writer's uncommitted rows, and needs not: a key appears once in a
    file (later repeats are errors), so no row looks for a record an earlier batch wrote, except a
    company named in the company column, and the companies this run creates are remembered here.
    Ids for new records come from the sequences here too (nextval is outside transactions).
    """

    def __init__(self, imp: Import, viewer: Viewer, can_edit: bool, write: bool) -> None:
        self.imp, self.viewer, self.can_edit, self.write = imp, viewer, can_edit, write
        self.conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")  # reads only
        # Planned for each batch's own keys: the generic plan of a statement the driver prepares
        # cannot tell "= any(5,000 keys)" from a handful, and scans the whole table.
        self.driver = self.conn.connection.driver_connection
        self.prepare_threshold = self.driver.prepare_threshold
        self.driver.prepare_threshold = None
        self.columns = written_columns(imp.record_type, imp.mapping)
        self.created_companies: dict[str, int] = {}  # lower(name) -> id
        self.sequences: dict[str, int] = {}

    def close(self) -> None:
        self.driver.prepare_threshold = self.prepare_threshold  # the pool's connection as it was
        self.conn.close()

    def new_ids(self, table_name: str, n: int) -> list[int]:
        """n ids from the table's identity sequence, for rows that COPY then writes with their id."""
        if n == 0:
            return []
        if table_name not in self.sequences:
            self.sequences[table_name] = self.conn.scalar(
                text("select pg_get_serial_sequence(:table, 'id')::regclass::oid"),
                {"table": qualified(table_name)},
            )
        # The sequence by oid: resolving its name for each of n rows would cost more than nextval.
        sql = text("select nextval(cast(cast(:seq as oid) as regclass)) from generate_series(1, :n)")
        return list(self.conn.scalars(sql, {"seq": self.sequences[table_name], "n": n}))

    def companies(self, names: dict[str, str], prep: Prepared) -> dict[str, int]:
        """lower(name) -> company id for the contacts' company column; missing ones go into prep.companies."""
        found = {key: self.created_companies[key] for key in names if key in self.created_companies}
        wanted = [key for key in names if key not in found]
        if wanted:
            table = Company.__table__
            stmt = _matching(
                select(table.c.id, func.lower(table.c.name).label("name_key")),
                func.lower(table.c.name),
                wanted,
            ).where(owned_by_visible(self.viewer, table.c.owner_id))
            for row in self.conn.execute(stmt).all():  # the lowest id wins, as in _existing
                found[row.name_key] = min(found.get(row.name_key, row.id), row.id)
        missing = [key for key in wanted if key not in found]
        if missing and self.write:
            for key, new_id in zip(missing, self.new_ids("companies", len(missing)), strict=True):
                found[key] = self.created_companies[key] = new_id
                prep.companies.append((new_id, names[key]))
        return found

    def prepare(self, batch: list[Checked]) -> Prepared:
        """Look the batch up: which rows create, which update, which are refused."""
        imp, record_type = self.imp, self.imp.record_type
        prep = Prepared()
        existing = _existing(self.conn, record_type, self.viewer, batch, self.columns)
        company_ids: dict[str, int] = {}
        if record_type == "contact":
            names = {
                c.values["company"].lower(): c.values["company"] for c in batch if c.values.get("company")
            }
            company_ids = self.companies(names, prep)
        for item in batch:
            values = dict(item.values)
            fld, key = natural_key(record_type, values)
            company = values.pop("company", None)
            if company is not None:
                values["company_id"] = company_ids.get(company.lower())
            found = existing.get(key)
            if found is None:
                prep.inserts.append(values)
            elif not found[1]:
                reason = _("A record with this key exists, but it is not one you may change.")
                prep.errors.append(_error(imp, item.number, fld, reason, item.raw))
            elif not self.can_edit:
                reason = _("A record with this key exists and your role may not edit it.")
                prep.errors.append(_error(imp, item.number, fld, reason, item.raw))
            else:
                prep.updates.append((found[0], values))
        if self.write:
            # Every row made here: the writing stage only feeds the database.
            if prep.companies:
                ids = [i for i, _name in prep.companies]
                new = [{"name": name} for _i, name in prep.companies]
                prep.copies += _created("company", self.viewer, imp.id, ids, new)
            if prep.inserts:
                ids = self.new_ids(_table_name(record_type), len(prep.inserts))
                prep.copies += _created(record_type, self.viewer, imp.id, ids, prep.inserts)
            if prep.updates:
                prep.changes, remembered = _changes(imp.id, record_type, prep.updates)
                prep.copies.append(remembered)
        return prep


def _write(prep: Prepared) -> None:
    """Write one prepared batch on the session (the caller commits)."""
    # While it writes, this thread wakes up at each reply of the database and then waits for the lock
    # that lets one Python thread run at a time, which another holds for up to the switch interval
    # (5 ms): meanwhile the database has nothing to do. A shorter interval while there is writing
    # (not always: switching that often slows the other threads down).
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    try:
        for copy in prep.copies:
            _copy(copy.table, copy.columns, copy.lines)
        if prep.changes is not None:
            _update(prep.changes)
    finally:
        sys.setswitchinterval(switch)


def _changes(
    import_id: int, record_type: str, updates: list[tuple[Any, dict[str, Any]]]
) -> tuple[Copy | None, Copy]:
    """The changed columns of updated records (id first), and their undo records."""
    cols = sorted({k for _row, values in updates for k in values if k in COLUMNS[record_type]})
    searched = search.SEARCHED[record_type]
    # The derived columns (search, phone keys) are written with the fields they derive from, in the same UPDATE.
    derived = any(col in searched for col in cols)
    wanted = set(cols)
    changed, remembered = [], []
    for row, values in updates:
        current = row._mapping
        # Only the file's own values can differ (a re-run of the same file changes nothing).
        if all(current[col] == value for col, value in values.items() if col in wanted):
            continue  # already so: nothing to write, nothing to undo
        after = {col: values.get(col, current[col]) for col in cols}
        remembered.append((row.id, {col: _plain(current[col]) for col in cols}))
        texts = [str(row.id), *[copy_text(v) for v in after.values()]]
        if derived:
            texts += search.derived_for_copy(record_type, {f: after.get(f, current[f]) for f in searched})
        changed.append(copy_line(texts) + "\n")
    columns = ["id", *cols, *search.DERIVED] if derived else ["id", *cols]
    return (Copy(_table_name(record_type), columns, changed) if changed else None), _remembered(
        import_id, record_type, remembered
    )


def _update(changes: Copy) -> None:
    """Set columns of many records at once: COPY (id, *columns) into a temp table, then one UPDATE ... FROM."""
    table_name = changes.table
    stage = f"import_stage_{table_name}"
    cols = changes.columns[1:]
    names = ", ".join(f'"{c}"' for c in changes.columns)
    db.session.execute(
        text(
            f"create temp table {stage} on commit drop as select {names} from {qualified(table_name)} with no data"
        )
    )
    _copy(stage, changes.columns, changes.lines, temp=True)
    sets = ", ".join(f'"{c}" = s."{c}"' for c in cols)
    db.session.execute(
        text(
            f"update {qualified(table_name)} t set {sets}, updated_at = :now from {stage} s where t.id = s.id"
        ),
        {"now": now()},
    )
    db.session.execute(text(f"drop table {stage}"))


class _Stage:
    """A thread that does `work` on each batch put to it, while the caller goes on with the next.

    An import is a pipeline of three: the caller checks rows (Python); a stage looks them up on its
    own connection and makes the lines to COPY (the database, then Python); a last stage writes them
    on the session (the database alone). Overlapped, the database works while Python does, on two
    cores. Each stage runs in a copy of the caller's context (the same app context, so the same
    session, and the same bound tenant); only the writing stage uses the session, which is why the
    rows are checked against a plain copy of the import (`plan`). One batch waits at most per stage,
    so memory stays at a few batches. An error in a stage stops the run and is raised in the caller.
    """

    def __init__(self, work: Callable[[Any, int], None]) -> None:
        self.work = work
        self.inbox: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=contextvars.copy_context().run, args=(self._loop,), daemon=True)

    def _loop(self) -> None:
        while (item := self.inbox.get()) is not None:
            if self.error is None:
                try:
                    self.work(*item)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    self.error = exc

    def put(self, batch: Any, last_row: int) -> None:
        if self.error is not None:
            raise self.error
        self.inbox.put((batch, last_row))

    def __enter__(self) -> _Stage:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inbox.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


def plan_of(imp: Import) -> Any:
    """A plain copy of the import's columns: read freely while another thread uses the session."""
    return SimpleNamespace(**{c.key: getattr(imp, c.key) for c in Import.__table__.columns})


def process(
    imp: Import,
    viewer: Viewer,
    can_edit: bool,
    write: bool,
    progress: Callable[[Outcome, int], None] | None = None,
    start_after: int = 0,
) -> Outcome:
    """Check every row and (when `write`) upsert in batches; progress(outcome, last row number) after each."""
    outcome = Outcome()
    plan = plan_of(imp)

    def work(prep: Prepared, last_row: int) -> None:
        if write:
            _write(prep)
        # Counted once written: progress commits the counts with the batch.
        outcome.created += len(prep.inserts)
        outcome.updated += len(prep.updates)
        outcome.errors.extend(prep.errors)
        if progress and last_row:
            progress(outcome, last_row)

    lookups = _Lookups(plan, viewer, can_edit, write)
    batch: list[Checked] = []
    try:
        with (
            _Stage(work) as writer,
            _Stage(lambda checked, last_row: writer.put(lookups.prepare(checked), last_row)) as looker,
        ):
            for item in checked_rows(plan, outcome):
                if item.number <= start_after or item.values is None:
                    continue
                batch.append(item)
                if len(batch) >= BATCH:
                    looker.put(batch, item.number)
                    batch = []
            if batch:
                looker.put(batch, 0)
    finally:
        lookups.close()
    outcome.errors.sort(key=lambda e: e["row"])
    return outcome


def dry_run(viewer: Viewer, can_edit: bool, imp: Import) -> Outcome:
    """Check the whole file and count what a real run would do; nothing is written."""
    if imp.status not in ("uploaded", "checked"):
        raise CustomerError(_("This import has already run."))
    missing = missing_columns(imp.record_type, imp.mapping)
    if missing:
        raise CustomerError(" ".join(missing))
    try:
        outcome = process(imp, viewer, can_edit, write=False)
    except reading.ReadError as err:
        db.session.rollback()
        raise CustomerError(str(err)) from None
    db.session.rollback()
    _set(
        imp.id,
        status="checked",
        total_rows=outcome.total,
        created_count=outcome.created,
        updated_count=outcome.updated,
        error_count=len(outcome.errors),
        errors=outcome.errors,
        checked_at=now(),
        message="",
    )
    db.session.commit()
    db.session.refresh(imp)
    return outcome


def queue_run(viewer: Viewer, imp: Import) -> None:
    if imp.status != "checked":
        raise CustomerError(_("Check the file first (the dry run), then import it."))
    _set(
        imp.id, status="queued", processed_rows=0, created_count=0, updated_count=0, error_count=0, message=""
    )
    db.session.commit()
    from workers.imports import run_import
    from workers.queues import enqueue

    enqueue(run_import, require_tenant().id, imp.id, job_timeout=6 * 3600)


def run(imp: Import, viewer: Viewer, can_edit: bool) -> Outcome:
    """The real run (called by the job): batches committed one by one with the counts; resumable."""
    if imp.status not in ("queued", "running"):
        return Outcome()
    start_after = imp.processed_rows if imp.status == "running" else 0
    base_created, base_updated = (imp.created_count, imp.updated_count) if start_after else (0, 0)
    _set(imp.id, status="running", started_at=imp.started_at or now())
    db.session.commit()

    def progress(outcome: Outcome, last_row: int) -> None:
        _set(
            imp.id,
            processed_rows=last_row,
            created_count=base_created + outcome.created,
            updated_count=base_updated + outcome.updated,
            error_count=len(outcome.errors),
        )
        db.session.commit()

    try:
        outcome = process(imp, viewer, can_edit, write=True, progress=progress, start_after=start_after)
    except reading.ReadError as err:
        db.session.rollback()
        _set(imp.id, status="failed", message=str(err)[:500], finished_at=now())
        db.session.commit()
        return Outcome()
    outcome.created += base_created
    outcome.updated += base_updated
    _set(
        imp.id,
        status="done",
        total_rows=outcome.total,
        processed_rows=outcome.total,
        created_count=outcome.created,
        updated_count=outcome.updated,
        error_count=len(outcome.errors),
        errors=outcome.errors,
        finished_at=now(),
    )
    audit.record(
        "import",
        _table_name(imp.record_type),
        imp.id,
        summary=f"{imp.file_name}: {outcome.created} created, {outcome.updated} updated, "
        f"{len(outcome.errors)} rows with errors",
    )
    db.session.commit()
    return outcome


# Undo --------------------------------------------------------------------------------------------


def undo(viewer: Viewer, imp: Import) -> tuple[int, int]:
    """Delete what the import created and give what it updated its previous values; (deleted, restored)."""
    if imp.status != "done":
        raise CustomerError(_("Only a finished import can be undone."))
    rec = ImportRecord.__table__
    deleted = restored = 0
    for record_type in ("contact", "company"):
        table = _model(record_type).__table__
        rows = db.session.execute(
            select(rec.c.record_id, rec.c.previous)
            .where(rec.c.import_id == imp.id, rec.c.record_type == record_type)
            .order_by(rec.c.id)
        ).all()
        changed = [(r.record_id, r.previous) for r in rows if r.previous is not None]
        created = [r.record_id for r in rows if r.previous is None]
        for start in range(0, len(changed), BATCH):
            chunk = changed[start : start + BATCH]
            ids = [rid for rid, _p in chunk]
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for rid, previous in chunk:
                values = {
                    k: (date.fromisoformat(v) if k == "birthday" and v else v) for k, v in previous.items()
                }
                groups.setdefault(tuple(sorted(values)), []).append({"_id": rid, **values})
            for cols, params in groups.items():
                if cols:
                    stmt = (
                        update(table)
                        .where(table.c.id == bindparam("_id"))
                        .values({c: bindparam(c) for c in cols} | {"updated_at": now()})
                    )
                    db.session.execute(stmt, params)
            search.index(record_type, ids)
            restored += len(chunk)
        for start in range(0, len(created), BATCH):
            ids = created[start : start + BATCH]
            own = Activity.contact_id if record_type == "contact" else Activity.company_id
            other = Activity.company_id if record_type == "contact" else Activity.contact_id
            db.session.execute(delete(Activity).where(own.in_(ids), other.is_(None)))
            t_own = Task.contact_id if record_type == "contact" else Task.company_id
            t_other = Task.company_id if record_type == "contact" else Task.contact_id
            db.session.execute(delete(Task).where(t_own.in_(ids), t_other.is_(None)))
            db.session.execute(
                delete(LifecycleChange).where(
                    LifecycleChange.record_type == record_type, LifecycleChange.record_id.in_(ids)
                )
            )
            deleted += db.session.execute(delete(table).where(table.c.id.in_(ids))).rowcount
    _set(imp.id, status="undone", undone_at=now())
    audit.record(
        "import_undo",
        _table_name(imp.record_type),
        imp.id,
        summary=f"{imp.file_name}: {deleted} created records deleted, {restored} restored",
    )
    db.session.commit()
    return deleted, restored


# Error report ------------------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def error_report(imp: Import) -> str:
    """The errors as CSV: row, column, reason, then the row's original values (formulas neutralised)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("Row"), _("Column"), _("Reason"), *[safe_cell(h) for h in imp.headers]])
    for err in imp.errors or []:
        writer.writerow(
            [
                err["row"],
                safe_cell(err["column"]),
                safe_cell(err["reason"]),
                *[safe_cell(v) for v in err.get("values", [])],
            ]
        )
    return "\ufeff" + out.getvalue()
