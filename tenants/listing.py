"""One list helper for every module: server-side filters, sort and keyset pagination.

A module describes its list once (a ListSpec of Fields: key, label, SQL
expression, kind); `parse_args` turns the query string into a ListQuery and
`fetch_page` runs it on a base statement that already carries the viewer's
visibility rule. Pages are cut by keyset: the cursor is the last row's sort
value plus its id, so the millionth row costs what the first does.

Query-string conventions (kept short and readable in the address bar):
    name__contains=acme   owner=12   cf_score__gte=10   tags__has=vip   sort=-updated_at   after=<cursor>   limit=50
`key` alone uses the field's default operator; "sort", "after" and "limit" are never field keys. Unknown keys are ignored;
bad values are reported in ListQuery.problems and the filter is left out.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, Date, Numeric, Select, and_, case, func, literal, not_, or_, tuple_
from sqlalchemy.sql.elements import ColumnElement

OPS: dict[str, Any] = {
    "contains": _l("contains"),
    "eq": _l("is"),
    "ne": _l("is not"),
    "starts": _l("starts with"),
    "gt": _l("greater than"),
    "gte": _l("at least"),
    "lt": _l("less than"),
    "lte": _l("at most"),
    "from": _l("on or after"),
    "to": _l("on or before"),
    "has": _l("has"),
    "empty": _l("is empty"),
    "notempty": _l("is not empty"),
}
KIND_OPS: dict[str, tuple[str, ...]] = {
    "text": ("contains", "eq", "starts", "empty", "notempty"),
    "number": ("eq", "gt", "gte", "lt", "lte", "empty", "notempty"),
    "date": ("eq", "from", "to", "empty", "notempty"),
    "datetime": ("from", "to", "empty", "notempty"),
    "choice": ("eq", "ne", "empty", "notempty"),
    "multi": ("has", "empty", "notempty"),
    "tags": ("has", "empty", "notempty"),
    "bool": ("eq",),
    "ref": ("eq", "empty", "notempty"),
    "secret": ("eq",),  # an encrypted value: found by its exact value (a blind index), nothing else
}
NO_VALUE_OPS = {"empty", "notempty"}
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class BadValue(ValueError):
    pass


FilterBuilder = Callable[[str, Any], ColumnElement]


@dataclass
class Field:
    """One field a list can filter or sort on.

    kind: text / number / date / datetime / choice / multi / tags / bool / ref (an id) / secret.
    expr: the SQL expression (for text, sort uses lower(expr)).
    build: optional custom filter builder (op, value) -> clause, e.g. JSONB containment.
    """

    key: str
    label: Any
    expr: ColumnElement
    kind: str = "text"
    choices: list[tuple[str, Any]] | None = None
    sortable: bool = True
    filterable: bool = True
    nullable: bool = True
    build: FilterBuilder | None = None
    sort_expr: ColumnElement | None = None

    @property
    def ops(self) -> tuple[str, ...]:
        return KIND_OPS[self.kind]

    @property
    def default_op(self) -> str:
        return self.ops[0]

    def sort_key(self) -> ColumnElement:
        if self.sort_expr is not None:
            return self.sort_expr
        return func.lower(self.expr) if self.kind in ("text", "choice") else self.expr

    def choice_label(self, value: Any) -> Any:
        return dict(self.choices or []).get(str(value), value)


@dataclass
class ListSpec:
    fields: list[Field]
    id_column: ColumnElement
    default_sort: str = "name"

    def __post_init__(self) -> None:
        self.by_key = {f.key: f for f in self.fields}

    def get(self, key: str) -> Field | None:
        return self.by_key.get(key)


@dataclass
class Filter:
    field: Field
    op: str
    raw: str
    value: Any

    @property
    def param(self) -> str:
        return self.field.key if self.op == self.field.default_op else f"{self.field.key}__{self.op}"

    @property
    def label(self) -> str:
        shown = "" if self.op in NO_VALUE_OPS else self.field.choice_label(self.raw)
        if self.field.kind == "bool":
            shown = _l("yes") if self.value else _l("no")
        return f"{self.field.label} {OPS[self.op]} {shown}".strip()


@dataclass
class ListQuery:
    spec: ListSpec
    filters: list[Filter] = field(default_factory=list)
    sort: str = "name"
    desc: bool = False
    cursor: str | None = None
    size: int = PAGE_SIZE
    problems: list[str] = field(default_factory=list)

    @property
    def sort_param(self) -> str:
        return ("-" if self.desc else "") + self.sort

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments of this list (filters, sort), with changes; None removes one."""
        out: dict[str, Any] = {}
        for f in self.filters:
            out.setdefault(f.param, [])
            out[f.param].append(f.raw)
        if self.sort_param != self.spec.default_sort:
            out["sort"] = self.sort_param
        if self.size != PAGE_SIZE:
            out["limit"] = self.size
        for key, value in changes.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    def without(self, flt: Filter) -> dict[str, Any]:
        """Arguments with one filter taken out (for the remove link of its chip)."""
        out = self.args()
        rest = [v for v in out.get(flt.param, []) if v != flt.raw]
        if rest:
            out[flt.param] = rest
        else:
            out.pop(flt.param, None)
        return out

    def sort_args(self, key: str) -> dict[str, Any]:
        """Arguments to sort on `key`: ascending first, descending when it already sorts ascending."""
        desc = self.sort == key and not self.desc
        return self.args(sort=("-" if desc else "") + key)

    def value_of(self, key: str, op: str | None = None) -> str:
        for f in self.filters:
            if f.field.key == key and (op is None or f.op == op):
                return f.raw
        return ""


@dataclass
class Page:
    rows: list[Any]
    next_cursor: str | None
    query: ListQuery

    @property
    def items(self) -> list[Any]:
        return [row[0] for row in self.rows]


# Parsing ----------------------------------------------------------------------------


def _parse_value(fld: Field, raw: str) -> Any:
    kind = fld.kind
    if kind == "number":
        try:
            value = Decimal(raw.strip().replace(",", ""))
        except InvalidOperation:
            raise BadValue(_l("%(field)s: enter a number.", field=fld.label)) from None
        if not value.is_finite():
            raise BadValue(_l("%(field)s: enter a number.", field=fld.label))
        return value
    if kind in ("date", "datetime"):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            raise BadValue(_l("%(field)s: enter a date as YYYY-MM-DD.", field=fld.label)) from None
    if kind == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind == "ref":
        try:
            return int(raw)
        except ValueError:
            raise BadValue(_l("%(field)s: choose from the list.", field=fld.label)) from None
    if kind == "choice" and fld.choices is not None and raw not in {str(k) for k, _ in fld.choices}:
        raise BadValue(_l("%(field)s: choose from the list.", field=fld.label))
    if len(raw) > 200:
        raise BadValue(_l("%(field)s: the text to look for is too long.", field=fld.label))
    return raw.strip()


def parse_args(spec: ListSpec, args: Mapping[str, Any]) -> ListQuery:
    """A ListQuery from request.args (a MultiDict) or any mapping of lists."""
    query = ListQuery(spec, sort=spec.default_sort.lstrip("-"), desc=spec.default_sort.startswith("-"))
    getlist = args.getlist if hasattr(args, "getlist") else (lambda k: _as_list(args.get(k)))
    for name in list(args.keys()):
        key, _sep, op = name.partition("__")
        fld = spec.get(key)
        if fld is None or not fld.filterable:
            continue
        op = op or fld.default_op
        if op not in fld.ops:
            continue
        for raw in getlist(name):
            raw = str(raw)
            if op in NO_VALUE_OPS:
                query.filters.append(Filter(fld, op, "", None))
                break
            if not raw.strip():
                continue
            try:
                query.filters.append(Filter(fld, op, raw, _parse_value(fld, raw)))
            except BadValue as err:
                query.problems.append(str(err))
    sort = str(args.get("sort") or "")
    key = sort.lstrip("-")
    fld = spec.get(key)
    if fld is not None and fld.sortable:
        query.sort, query.desc = key, sort.startswith("-")
    try:
        query.size = max(1, min(MAX_PAGE_SIZE, int(args.get("limit") or PAGE_SIZE)))
    except ValueError:
        query.size = PAGE_SIZE
    query.cursor = str(args.get("after") or "") or None
    return query


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# Filtering --------------------------------------------------------------------------


def _is_empty(fld: Field) -> ColumnElement:
    if fld.kind == "tags":
        return func.coalesce(func.cardinality(fld.expr), 0) == 0
    if fld.kind == "text":
        return or_(fld.expr.is_(None), fld.expr == "")
    return fld.expr.is_(None)


def filter_clause(flt: Filter) -> ColumnElement:
    fld, op, value = flt.field, flt.op, flt.value
    if fld.build is not None:
        return fld.build(op, value)
    expr = fld.expr
    if op == "empty":
        return _is_empty(fld)
    if op == "notempty":
        return not_(_is_empty(fld))
    if fld.kind == "text":
        if op == "contains":
            return expr.icontains(value, autoescape=True)
        if op == "starts":
            return func.lower(expr).startswith(value.lower(), autoescape=True)
        return func.lower(expr) == value.lower()
    if fld.kind == "tags":
        return expr.contains([value])
    if fld.kind == "bool":
        return expr.is_(True) if value else or_(expr.is_(False), expr.is_(None))
    if fld.kind == "datetime":
        # A day in UTC; the pages show times in the tenant's zone, close enough for a list filter.
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return expr >= start if op == "from" else expr < start + timedelta(days=1)
    comparisons = {
        "eq": lambda e: e == value,
        "ne": lambda e: or_(e != value, e.is_(None)),
        "gt": lambda e: e > value,
        "gte": lambda e: e >= value,
        "lt": lambda e: e < value,
        "lte": lambda e: e <= value,
        "from": lambda e: e >= value,
        "to": lambda e: e <= value,
    }
    return comparisons[op](expr)


# JSONB fields (custom fields) --------------------------------------------------------


def json_field(column: Any, key: str, kind: str, label: Any, choices: list | None = None) -> Field:
    """A Field on one key of a JSONB column; filters use containment (@>) where they can (GIN index)."""
    node = column[key]
    text_value = node.astext
    if kind == "number":
        expr = case((func.jsonb_typeof(node) == "number", text_value.cast(Numeric)))
    elif kind == "date":
        expr = case((text_value.regexp_match(r"^\d{4}-\d{2}-\d{2}$"), text_value.cast(Date)))
    elif kind == "bool":
        expr = case((func.jsonb_typeof(node) == "boolean", text_value.cast(Boolean)))
    else:
        expr = text_value

    def build(op: str, value: Any) -> ColumnElement:
        if op == "empty":
            if kind == "multi":
                return or_(
                    node.is_(None), func.jsonb_typeof(node) != "array", func.jsonb_array_length(node) == 0
                )
            if kind == "text":
                return or_(text_value.is_(None), text_value == "")
            return expr.is_(None)
        if op == "notempty":
            return not_(build("empty", None))
        if kind == "multi":
            return column.contains({key: [value]})
        if kind == "bool":
            return column.contains({key: True}) if value else not_(column.contains({key: True}))
        if kind == "choice" and op == "eq":
            return column.contains({key: value})
        if kind == "choice" and op == "ne":
            return not_(column.contains({key: value}))
        return filter_clause(Filter(Field(key, label, expr, kind), op, str(value), value))

    return Field(
        key=f"cf_{key}",
        label=label,
        expr=expr,
        kind=kind,
        choices=choices,
        sortable=kind != "multi",
        build=build,
    )


# Keyset pagination -------------------------------------------------------------------


def _encode(value: Any, row_id: int) -> str:
    if isinstance(value, datetime | date):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    raw = json.dumps([value, row_id], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(fld: Field, cursor: str) -> tuple[Any, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, row_id = json.loads(raw)
        if not isinstance(row_id, int):
            return None
        if value is None:
            return None, row_id
        if fld.kind == "number":
            return Decimal(str(value)), row_id
        if fld.kind == "date":
            return date.fromisoformat(value), row_id
        if fld.kind == "datetime":
            return datetime.fromisoformat(value), row_id
        if fld.kind == "bool":
            return bool(value), row_id
        if fld.kind == "ref":
            return int(value), row_id
        return str(value), row_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, InvalidOperation):
        return None


def _after(sort: ColumnElement, ident: ColumnElement, value: Any, last_id: int, desc: bool, nullable: bool):
    """Rows strictly after (value, last_id) in the order sort [desc], id [desc], nulls last."""
    beyond = (lambda a, b: a < b) if desc else (lambda a, b: a > b)
    if not nullable:
        return beyond(tuple_(sort, ident), tuple_(literal(value, sort.type), literal(last_id)))
    if value is None:  # already among the nulls, which come last
        return and_(sort.is_(None), beyond(ident, last_id))
    return or_(
        sort.is_(None),
        beyond(sort, value),
        and_(sort == value, beyond(ident, last_id)),
    )


def fetch_page(base: Select, query: ListQuery) -> Page:
    """Run `base` (selecting the record first) with the query's filters, sort and page."""
    fld = query.spec.get(query.sort) or query.spec.get(query.spec.default_sort.lstrip("-"))
    assert fld is not None
    ident = query.spec.id_column
    sort = fld.sort_key()
    stmt = base.add_columns(sort.label("_sort"))
    for flt in query.filters:
        stmt = stmt.where(filter_clause(flt))
    if query.cursor:
        decoded = _decode(fld, query.cursor)
        if decoded is not None:
            stmt = stmt.where(_after(sort, ident, decoded[0], decoded[1], query.desc, fld.nullable))
    direction = (lambda c: c.desc()) if query.desc else (lambda c: c.asc())
    order = [direction(sort), direction(ident)]
    if fld.nullable:
        order.insert(0, sort.is_(None).asc())
    from saas.extensions import db

    rows = list(db.session.execute(stmt.order_by(*order).limit(query.size + 1)))
    next_cursor = None
    if len(rows) > query.size:
        rows = rows[: query.size]
        last = rows[-1]
        next_cursor = _encode(last._mapping["_sort"], _row_id(last))
    return Page(rows, next_cursor, query)


def _row_id(row: Any) -> int:
    return row[0].id


def filter_choices(spec: ListSpec) -> list[dict[str, Any]]:
    """What the "add a filter" control offers: each field with its operators (for the page's select)."""
    ops = {op: str(label) for op, label in OPS.items()}  # translated once, not once per field
    return [
        {
            "key": f.key,
            "label": str(f.label),
            "kind": f.kind,
            "ops": [(op, ops[op]) for op in f.ops],
            "choices": [(str(k), str(v)) for k, v in (f.choices or [])],
        }
        for f in spec.fields
        if f.filterable
    ]
