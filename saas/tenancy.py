"""Tenant binding: fail-closed by construction.

Tenant tables are declared in the placeholder schema ``tenant``. Each session
resolves that placeholder through ``schema_translate_map`` to the schema bound
for the current request or job. With nothing bound, a query on a tenant table
raises ``TenantNotBound``; no schema named ``tenant`` ever exists either, so
even a path around this check fails instead of leaking.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.sql.elements import TextClause

PLACEHOLDER = "tenant"
SCHEMA_RE = re.compile(r"^t_[0-9]+\Z")  # \Z, not $: "$" also matches before a final newline


class TenantNotBound(RuntimeError):
    """A tenant table was queried with no tenant bound."""


@dataclass(frozen=True)
class BoundTenant:
    id: int
    schema: str
    slug: str


_current: contextvars.ContextVar[BoundTenant | None] = contextvars.ContextVar("tenant", default=None)


def current_tenant() -> BoundTenant | None:
    return _current.get()


def require_tenant() -> BoundTenant:
    bound = _current.get()
    if bound is None:
        raise TenantNotBound("no tenant is bound to this request or job")
    return bound


def bind(tenant_id: int, schema: str, slug: str) -> contextvars.Token:
    """Bind a tenant for the rest of this context. Schema names only ever come from the registry."""
    if not SCHEMA_RE.match(schema):
        raise ValueError(f"not a tenant schema name: {schema!r}")
    return _current.set(BoundTenant(tenant_id, schema, slug))


def unbind(token: contextvars.Token | None = None) -> None:
    if token is not None:
        _current.reset(token)
    else:
        _current.set(None)


@contextmanager
def bound(tenant_id: int, schema: str, slug: str = "") -> Iterator[BoundTenant]:
    token = bind(tenant_id, schema, slug)
    try:
        yield require_tenant()
    finally:
        _current.reset(token)


def is_tenant_table(table: Any) -> bool:
    return getattr(table, "schema", None) == PLACEHOLDER


def qualified(name: str) -> str:
    """The one helper for raw SQL on tenant tables: 'contacts' -> '"t_12"."contacts"'."""
    schema = require_tenant().schema
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a table name: {name!r}")
    return f'"{schema}"."{name}"'


class _TenantSchemaMap(dict):
    """A schema_translate_map that resolves the placeholder at execution time from the bound tenant.

    Set once on the engine, so every connection, session and transaction follows
    the tenant bound in this context (and a tenant switched mid-transaction, as
    provisioning does). Unbound, resolving the placeholder raises TenantNotBound.
    """

    def __init__(self) -> None:
        super().__init__({PLACEHOLDER: PLACEHOLDER})  # non-empty: SQLAlchemy renders placeholders

    def __contains__(self, key: object) -> bool:
        return key == PLACEHOLDER

    def __getitem__(self, key: str) -> str:
        if key != PLACEHOLDER:
            raise KeyError(key)
        return require_tenant().schema

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key == PLACEHOLDER else default


TENANT_SCHEMA_MAP = _TenantSchemaMap()


class TenantSession(FlaskSession):
    """Refuses ORM work on tenant tables up front when no tenant is bound (the map refuses the rest)."""

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None, **kwargs: Any) -> Any:
        if _current.get() is None and _touches_tenant(mapper, clause):
            raise TenantNotBound("query on a tenant table with no tenant bound")
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


def _touches_tenant(mapper: Any, clause: Any) -> bool:
    if mapper is not None and is_tenant_table(getattr(mapper, "local_table", None)):
        return True
    if clause is None or isinstance(clause, TextClause):
        return False
    for table in _tables_of(clause):
        if is_tenant_table(table):
            return True
    return False


def _tables_of(clause: Any) -> list[Any]:
    from sqlalchemy.sql.util import find_tables

    try:
        return find_tables(clause, include_crud=True)
    except Exception:  # noqa: BLE001 - an odd clause: the missing "tenant" schema still fails closed
        return []
