"""CSV and XLSX export of the company and contact lists: the filtered, sorted list, every page.

Rows are read page by page through the same list query the screen uses (visibility, filters,
sort, keyset), so an export of a million rows holds one page in memory at a time (CSV is
streamed; XLSX is built in a write-only workbook). A cell that a spreadsheet would run as a
formula (starting with =, +, -, @, a tab or a carriage return) gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _

from tenants import listing as generic_listing
from tenants.customers import listing
from tenants.customers.fields import reveal
from tenants.customers.models import CustomField
from tenants.customers.people import Viewer

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BATCH = 1000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralise(value: Any) -> Any:
    """A cell value that no spreadsheet runs as a formula; numbers and dates stay as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, int | float | Decimal | date | datetime):
        return value
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    value = str(value)
    if value.startswith(FORMULA_START):
        return "'" + value
    return value


def _custom(d: CustomField) -> tuple[str, Callable[[Any], Any]]:
    key, label = d.key, d.label  # read now: the rows are written after the request's session is gone
    # reveal: a sensitive value is decrypted (exporting needs the export permission already).
    return label, lambda r: reveal(r[0].custom.get(key)) if isinstance(r[0].custom, dict) else None


def columns(
    record_type: str, defs: list[CustomField], owner_names: dict[int, str]
) -> list[tuple[str, Callable[[Any], Any]]]:
    """(header, row -> value) for each exported column; a row is (record, ...) as the list selects it."""
    owner = (_("Owner"), lambda r: owner_names.get(r[0].owner_id, ""))
    if record_type == "company":
        base = [
            ("ID", lambda r: r[0].id),
            (_("Name"), lambda r: r[0].name),
            (_("Industry"), lambda r: r[0].industry),
            (_("Size"), lambda r: r[0].size),
            (_("Website"), lambda r: r[0].website),
            (_("Domain"), lambda r: r[0].domain),
            (_("Phones"), lambda r: r[0].phones),
            (_("Stage"), lambda r: r[0].lifecycle_stage),
            owner,
        ]
    else:
        base = [
            ("ID", lambda r: r[0].id),
            (_("First name"), lambda r: r[0].first_name),
            (_("Last name"), lambda r: r[0].last_name),
            (_("Email"), lambda r: r[0].email),
            (_("Other emails"), lambda r: r[0].emails),
            (_("Phones"), lambda r: r[0].phones),
            (_("Company"), lambda r: r._mapping.get("company_name")),
            (_("Job title"), lambda r: r[0].job_title),
            (_("Stage"), lambda r: r[0].lifecycle_stage),
            (_("Birthday"), lambda r: r[0].birthday),
            (_("Email consent"), lambda r: r[0].consent_email),
            (_("SMS consent"), lambda r: r[0].consent_sms),
            owner,
        ]
    tail = [
        (_("Street"), lambda r: r[0].street),
        (_("City"), lambda r: r[0].city),
        (_("Region"), lambda r: r[0].region),
        (_("Postal code"), lambda r: r[0].postal_code),
        (_("Country"), lambda r: r[0].country),
        (_("Source"), lambda r: r[0].source),
        (_("Tags"), lambda r: r[0].tags),
        (_("Created"), lambda r: r[0].created_at),
        (_("Updated"), lambda r: r[0].updated_at),
    ]
    return [*base, *tail, *(_custom(d) for d in defs)]


def pages(viewer: Viewer, record_type: str, spec: generic_listing.ListSpec, args: Any) -> Iterator[list[Any]]:
    """Every row of the filtered, sorted list, a batch at a time (the page cursor in args is ignored)."""
    query = generic_listing.parse_args(spec, args)
    query.cursor = None
    query.size = BATCH
    base = listing.company_base(viewer) if record_type == "company" else listing.contact_base(viewer)
    while True:
        page = generic_listing.fetch_page(base, query)
        if page.rows:
            yield page.rows
        if not page.next_cursor:
            return
        query.cursor = page.next_cursor


def _plain(value: Any) -> Any:
    """A value for a spreadsheet cell: aware times become naive UTC (XLSX has no time zones)."""
    value = neutralise(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def csv_chunks(rows: Iterator[list[Any]], cols: list[tuple[str, Callable]]) -> Iterator[str]:
    """The CSV, in chunks: a UTF-8 byte-order mark first so Excel reads Chinese and Thai right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(h) for h, _get in cols])
    yield "\ufeff" + buffer.getvalue()
    for batch in rows:
        buffer.seek(0)
        buffer.truncate()
        for row in batch:
            writer.writerow([_csv_text(get(row)) for _h, get in cols])
        yield buffer.getvalue()


def _csv_text(value: Any) -> Any:
    value = neutralise(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def xlsx_bytes(rows: Iterator[list[Any]], cols: list[tuple[str, Callable]], title: str) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "Export")
    sheet.append([neutralise(h) for h, _get in cols])
    for batch in rows:
        for row in batch:
            sheet.append([_plain(get(row)) for _h, get in cols])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
