"""Test factories: tenants with people in every role, signed-in clients, and a worker to run jobs."""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import uuid
from dataclasses import dataclass, field

from flask import Flask
from flask.testing import FlaskClient

PASSWORD = "correct-horse-battery-9"
_seq = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_seq)}{uuid.uuid4().hex[:6]}"


class CsrfClient(FlaskClient):
    """A test client that sends the CSRF token the way the pages do (form field / htmx header)."""

    _token: str | None = None

    def csrf_token(self) -> str:
        if self._token is None:
            html = self.get("/login").get_data(as_text=True)
            self._token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        return self._token

    def form(self, url: str, data: dict | None = None, **kwargs):  # noqa: ANN201
        """POST a form with its CSRF token."""
        payload = {"csrf_token": self.csrf_token(), **(data or {})}
        return self.post(url, data=payload, **kwargs)

    def sign_in(self, email: str, password: str = PASSWORD):  # noqa: ANN201
        resp = self.form("/login", {"email": email, "password": password})
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
        return resp


@dataclass
class TenantInfo:
    id: int
    slug: str
    schema: str
    owner_email: str
    # role key -> (user id, email, membership id)
    people: dict[str, tuple[int, str, int]] = field(default_factory=dict)

    def email(self, role: str) -> str:
        return self.people[role][1]

    def membership(self, role: str) -> int:
        return self.people[role][2]


class Factory:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def tenant(self, roles: tuple[str, ...] = ("owner",), name: str = "Acme") -> TenantInfo:
        """A workspace made through signup, with one active member per role asked for."""
        from saas import accounts
        from saas.extensions import db
        from saas.models import Membership, User
        from saas.signup import signup

        slug = unique("t")
        owner_email = f"{slug}-owner@example.com"
        with self.app.test_request_context():
            tenant = signup(name, slug, "Olivia Owner", owner_email, PASSWORD)
            owner = accounts.user_by_email(owner_email)
            info = TenantInfo(tenant.id, tenant.slug, tenant.schema_name, owner_email)
            owner_m = db.session.query(Membership).filter_by(tenant_id=tenant.id, user_id=owner.id).one()
            info.people["owner"] = (owner.id, owner_email, owner_m.id)
            hashed = accounts.hash_password(PASSWORD)
            for role in roles:
                if role == "owner":
                    continue
                email = f"{slug}-{role.replace(':', '')}@example.com"
                user = User(email=email, name=f"{role.title()} Person", password_hash=hashed)
                db.session.add(user)
                db.session.flush()
                m = Membership(tenant_id=tenant.id, user_id=user.id, role=role)
                db.session.add(m)
                db.session.flush()
                info.people[role] = (user.id, email, m.id)
            db.session.commit()
            db.session.remove()
        return info

    def user(self, email: str | None = None, name: str = "Nobody") -> str:
        from saas import accounts
        from saas.extensions import db
        from saas.models import User

        email = email or f"{unique('u')}@example.com"
        with self.app.app_context():
            db.session.add(User(email=email, name=name, password_hash=accounts.hash_password(PASSWORD)))
            db.session.commit()
            db.session.remove()
        return email


def run_jobs(app: Flask) -> int:
    """Run every queued job in a real RQ worker (burst mode) against the test Redis; return how many."""
    from rq import SimpleWorker

    from workers.queues import QUEUES, queue

    with app.app_context():
        queues = [queue(name) for name in QUEUES]
        count = sum(q.count for q in queues)
        worker = SimpleWorker(queues, connection=queues[0].connection)
        worker.work(burst=True, with_scheduler=False)
    return count


def sql_value(app: Flask, sql: str, **params: object) -> object:
    """One value from raw SQL on the test database (outside any request or tenant)."""
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def field_errors(html: str, name: str) -> list[str]:
    """The error messages shown next to form field `name` (its .invalid-feedback lines)."""
    from html import unescape

    for block in html.split('<div class="mb-3">')[1:]:
        if re.search(rf'<(?:input|select|textarea)\b[^>]*\bname="{re.escape(name)}"', block):
            found = re.findall(r'class="invalid-feedback d-block">(.*?)</div>', block, re.S)
            return [unescape(m.strip()) for m in found]
    raise AssertionError(f"no field {name!r} on the page")


def link_in(message, path_prefix: str) -> str:  # noqa: ANN001 - an email.message.EmailMessage
    """The path of the first link in a mail's text part that starts with path_prefix."""
    from urllib.parse import urlsplit

    body = message.get_body(preferencelist=("plain",)).get_content()
    for url in re.findall(r"https?://\S+", body):
        if urlsplit(url).path.startswith(path_prefix):
            return urlsplit(url).path
    raise AssertionError(f"no {path_prefix} link in:\n{body}")


def release_retries(app: Flask) -> int:
    """Make every job waiting for a retry due now and let RQ's scheduler queue it; return how many."""
    from datetime import UTC, datetime, timedelta

    from rq.job import Job
    from rq.scheduler import RQScheduler

    from workers.queues import QUEUES, queue

    with app.app_context():
        queues = [queue(name) for name in QUEUES]
        conn = queues[0].connection
        due = datetime.now(UTC) - timedelta(seconds=1)
        moved = 0
        for q in queues:
            registry = q.scheduled_job_registry
            for job_id in registry.get_job_ids():
                registry.schedule(Job.fetch(job_id, connection=conn), due)
                moved += 1
        scheduler = RQScheduler(queues, connection=conn)
        scheduler.acquire_locks()
        scheduler.enqueue_scheduled_jobs()
        scheduler.release_locks()
    return moved


# Helpers for the isolation and permission tests -------------------------------------------------

_password_hash: str | None = None


def _hashed_password() -> str:
    global _password_hash
    if _password_hash is None:
        from saas import accounts

        _password_hash = accounts.hash_password(PASSWORD)
    return _password_hash


def add_member(
    app: Flask, tenant: TenantInfo, role: str = "sales", active: bool = True
) -> tuple[int, str, int]:
    """A new person with a membership in `tenant` (no signup, no email); returns (user id, email, membership id)."""
    from saas.extensions import db
    from saas.models import Membership, User

    email = f"{unique('m')}@example.com"
    with app.app_context():
        user = User(email=email, name="Member Person", password_hash=_hashed_password())
        db.session.add(user)
        db.session.flush()
        m = Membership(tenant_id=tenant.id, user_id=user.id, role=role, is_active=active)
        db.session.add(m)
        db.session.commit()
        ids = (user.id, email, m.id)
        db.session.remove()
    return ids


def add_invitation(app: Flask, tenant: TenantInfo, role: str = "sales") -> int:
    """A pending invitation to `tenant`; returns its id."""
    from datetime import UTC, datetime, timedelta

    from saas import accounts
    from saas.extensions import db
    from saas.models import Invitation

    with app.app_context():
        _raw, digest = accounts.new_token()
        inv = Invitation(
            tenant_id=tenant.id,
            email=f"{unique('inv')}@example.com",
            role=role,
            token_hash=digest,
            expires_at=datetime.now(UTC) + timedelta(days=7),
        )
        db.session.add(inv)
        db.session.commit()
        inv_id = inv.id
        db.session.remove()
    return inv_id


def add_role(
    app: Flask, tenant: TenantInfo, permissions: dict[str, list[str]] | None = None, name: str | None = None
) -> int:
    """A custom role in the tenant's schema; returns its id (ids are per tenant schema)."""
    from saas import tenancy
    from saas.extensions import db
    from tenants.admin.models import Role

    with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        role = Role(
            name=name or unique("Role "), description="", permissions=permissions or {}, visibility="own"
        )
        db.session.add(role)
        db.session.commit()
        role_id = role.id
        db.session.remove()
    return role_id


def db_state(app: Flask, *schemas: str) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every row, per table of the given schemas: any write changes it."""
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        tables = conn.execute(
            text(
                "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = any(:schemas) and c.relkind in ('r', 'p') order by 1, 2"
            ),
            {"schemas": list(schemas)},
        ).all()
        assert {s for s, _t in tables} == set(schemas), f"missing schema among {schemas}"
        digest = "md5(coalesce(string_agg(r::text, chr(10) order by r::text), ''))"
        sql = " union all ".join(
            f'select \'{schema}.{table}\', count(*), {digest} from "{schema}"."{table}" r'
            for schema, table in tables
        )
        return {name: (count, md5) for name, count, md5 in conn.execute(text(sql))}


@dataclass(frozen=True)
class Route:
    """One method of one workspace URL rule, e.g. POST /<slug>/admin/people/<int:membership_id>/role."""

    endpoint: str
    rule: str
    method: str

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"

    @property
    def id_args(self) -> tuple[str, ...]:
        return tuple(a for a in re.findall(r"<(?:[^:<>]+:)?(\w+)>", self.rule) if a != "slug")

    def url(self, slug: str, ids: dict[str, int] | None = None) -> str:
        values = {"slug": slug, **(ids or {})}
        return re.sub(r"<(?:[^:<>]+:)?(\w+)>", lambda m: str(values[m.group(1)]), self.rule)


def workspace_routes(url_map) -> list[Route]:  # noqa: ANN001
    """Every (rule, method) of the tenant URL space ("workspace.*" endpoints) in a URL map."""
    routes = {
        Route(rule.endpoint, rule.rule, method)
        for rule in url_map.iter_rules()
        if rule.endpoint.startswith("workspace.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    return sorted(routes, key=lambda r: (r.rule, r.method))


def blueprint_routes() -> list[Route]:
    """The workspace routes, known at collection time (no database): the blueprint on a bare Flask app.

    Tests compare this with the real app's url_map, so a route added anywhere else fails them.
    """
    from saas.workspace import bp

    probe = Flask("route-probe")
    probe.register_blueprint(bp)
    return workspace_routes(probe.url_map)


class _ReusableFile(io.BytesIO):
    """A file for a test form that may be posted again (the test client closes what it sends)."""

    def close(self) -> None:
        self.seek(0)


def upload_file(data: bytes, name: str) -> tuple[io.BytesIO, str]:
    """A file field's value for client.form(...), usable for more than one request."""
    return (_ReusableFile(data), name)


# A valid form per POST endpoint, so that a route missing its check would really write something.
# Add an entry for a new POST route (endpoint -> function returning a fresh form).
ROUTE_FORMS: dict = {  # endpoint -> () -> form
    "workspace.admin.invite": lambda: {"email": f"{unique('inv')}@example.com", "role": "read_only"},
    "workspace.admin.change_role": lambda: {"role": "support"},
    "workspace.admin.edit_role": lambda: {
        "name": unique("Role "),
        "description": "made by a test",
        "visibility": "team",
        "perm-customers": ["view", "edit"],
    },
    "workspace.admin.settings": lambda: {
        "name": unique("Renamed "),
        "timezone": "Asia/Bangkok",
        "currency": "THB",
    },
    # Customers (a valid form: views that check the form before the id would answer 302 to any id).
    "workspace.customers.rename_team": lambda: {"name": unique("Team ")},
    "workspace.customers.add_team_member": lambda: {"user_id": "1"},
    "workspace.customers.remove_team_member": lambda: {"user_id": "1"},
    "workspace.customers.contacts_bulk": lambda: {"action": "tag_add", "tag": "route-test"},
    "workspace.customers.companies_bulk": lambda: {"action": "tag_add", "tag": "route-test"},
    "workspace.customers.contacts_save_view": lambda: {"name": unique("View "), "query": "name=a"},
    "workspace.customers.companies_save_view": lambda: {"name": unique("View "), "query": "name=a"},
    "workspace.api_tokens.create": lambda: {"name": unique("Script "), "days": "30"},
    "workspace.customers.upload_company_attachment": lambda: {"file": upload_file(b"hello", "hello.txt")},
    "workspace.customers.upload_contact_attachment": lambda: {"file": upload_file(b"hello", "hello.txt")},
    "workspace.customers.reminder_rule": lambda: {"enabled": "on", "days": "21"},
    "workspace.customers.check_import": lambda: {"col-0": "name", "col-1": "email"},
    "workspace.customers.start_import": dict,
    "workspace.customers.undo_import": dict,
    "workspace.backups.run": dict,
    # Privacy (saas/compliance/views.py). Deleting the workspace needs its address typed: not here.
    "workspace.privacy.export_contact": dict,
    "workspace.privacy.erase_contact": lambda: {"confirm": "ERASE"},
    "workspace.privacy.export_member": dict,
    "workspace.privacy.erase_member": lambda: {"confirm": "ERASE"},
    "workspace.privacy.download": dict,
    "workspace.privacy.export_workspace": dict,
    "workspace.privacy.retention": lambda: {"contact_months": "0", "audit_days": "0"},
    "workspace.privacy.cancel_deletion": dict,
    # Billing (off in tests unless a test turns it on: each answers 302 back to the billing page).
    "workspace.billing.checkout": lambda: {"plan": "monthly"},
    "workspace.billing.portal": dict,
    "workspace.billing.seats": lambda: {"seats": "3"},
    "workspace.customers.email_company": lambda: {
        "to_address": f"{unique('to')}@example.com",
        "subject": "Route test",
        "body": "Hello",
    },
    "workspace.customers.email_contact": lambda: {"subject": "Route test", "body": "Hello"},
    "workspace.customers.email_send_again": dict,
    # Duplicates: no records chosen in the form, so an allowed request is refused with a message (302).
    "workspace.customers.merge_contacts": dict,
    "workspace.customers.merge_companies": dict,
    "workspace.customers.dismiss_contacts": dict,
    "workspace.customers.dismiss_companies": dict,
}


def route_form(route: Route) -> dict:
    if route.method != "POST":
        return {}
    return ROUTE_FORMS.get(route.endpoint, dict)()


def _member_for(app: Flask, tenant: TenantInfo, route: Route) -> int:
    active = route.endpoint != "workspace.admin.reactivate"  # reactivate needs someone inactive
    return add_member(app, tenant, "sales", active=active)[2]


def add_tenant_row(app: Flask, tenant: TenantInfo, model_path: str, **values: object) -> int:
    """Insert one row of a tenant-schema model ("tenants.customers.models:Company") in `tenant`; its id."""
    import importlib

    from saas import tenancy
    from saas.extensions import db

    module, name = model_path.split(":")
    model = getattr(importlib.import_module(module), name)
    with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        row = model(**values)
        db.session.add(row)
        db.session.commit()
        row_id = row.id
        db.session.remove()
    return row_id


_CUSTOMERS = "tenants.customers.models"


def _company(app: Flask, tenant: TenantInfo, _route: Route | None = None) -> int:
    return add_tenant_row(app, tenant, f"{_CUSTOMERS}:Company", name=unique("Company "))


def _attachment(app: Flask, tenant: TenantInfo) -> int:
    from tests.tenants.customers.routes import make_attachment

    return make_attachment(app, tenant, "company", _company(app, tenant))


def _import(app: Flask, tenant: TenantInfo) -> int:
    from tests.tenants.customers.routes import make_import

    return make_import(app, tenant)


def _privacy_export(app: Flask, tenant: TenantInfo, _route: Route | None = None) -> int:
    """A finished, unexpired export of the tenant (shared table privacy_exports)."""
    from datetime import UTC, datetime, timedelta

    from saas.compliance.models import PrivacyExport
    from saas.extensions import db

    with app.app_context():
        row = PrivacyExport(
            tenant_id=tenant.id,
            kind="tenant",
            status="done",
            storage_key=f"compliance/{tenant.id}/{unique('route')}.zip",
            finished_at=datetime.now(UTC),
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        db.session.add(row)
        db.session.commit()
        row_id = row.id
        db.session.remove()
    return row_id


# How to make a fresh record of a tenant for an id in a workspace URL (<int:membership_id>, ...).
# Add an entry for a new kind of id: argument name -> function (app, tenant, route) -> id.
ID_MAKERS: dict = {
    "export_id": _privacy_export,
    "membership_id": _member_for,
    "invitation_id": lambda app, tenant, _route: add_invitation(app, tenant),
    "role_id": lambda app, tenant, _route: add_role(app, tenant, {"customers": ["view"]}),
    "company_id": _company,
    "contact_id": lambda app, tenant, _route: add_tenant_row(
        app,
        tenant,
        f"{_CUSTOMERS}:Contact",
        first_name="Ann",
        last_name="Lee",
        full_name="Ann Lee",
        email=f"{unique('ann')}@example.com",  # so the email route has someone to write to
    ),
    "field_id": lambda app, tenant, _route: add_tenant_row(
        app,
        tenant,
        f"{_CUSTOMERS}:CustomField",
        record_type="company",
        key=unique("f"),
        label="Field",
        field_type="text",
    ),
    "activity_id": lambda app, tenant, _route: add_tenant_row(
        app,
        tenant,
        f"{_CUSTOMERS}:Activity",
        kind="note",
        body="<p>note</p>",
        company_id=_company(app, tenant),
    ),
    "task_id": lambda app, tenant, _route: add_tenant_row(
        app, tenant, f"{_CUSTOMERS}:Task", title="Call back", company_id=_company(app, tenant)
    ),
    "attachment_id": lambda app, tenant, _route: _attachment(app, tenant),
    "import_id": lambda app, tenant, _route: _import(app, tenant),
    "team_id": lambda app, tenant, _route: add_tenant_row(
        app, tenant, f"{_CUSTOMERS}:Team", name=unique("Team ")
    ),
    # An API token of the workspace's owner (the page revokes only one's own tokens).
    "token_id": lambda app, tenant, _route: add_tenant_row(
        app,
        tenant,
        "tenants.api.models:ApiToken",
        user_id=tenant.people["owner"][0],
        name=unique("Script "),
        token_hash=hashlib.sha256(unique("tok").encode()).hexdigest(),
        prefix="crm_test",
    ),
}
# Stands in for an id no maker knows, where the request must be refused before any id is looked at.
ANY_ID = 1


def route_targets(app: Flask, tenant: TenantInfo, route: Route, strict: bool = True) -> dict[str, int]:
    """Fresh records of `tenant` for each id in the route's URL.

    An id with no maker fails the test when strict; otherwise it gets ANY_ID.
    """
    import pytest

    ids: dict[str, int] = {}
    for arg in route.id_args:
        if arg in ID_MAKERS:
            ids[arg] = ID_MAKERS[arg](app, tenant, route)
        elif strict:
            pytest.fail(f"{route}: no maker for <{arg}>; add one to ID_MAKERS in tests/factories.py")
        else:
            ids[arg] = ANY_ID
    return ids


def offset_ids(app: Flask, tenant: TenantInfo, start: int = 1_000_000) -> None:
    """Start every id of the tenant's schema at `start`: its records' ids are then never also ids in
    another test tenant (tenant-schema ids count from 1 in each schema)."""
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        columns = conn.execute(
            text(
                "select c.relname, a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid"
                " join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = :schema and a.attidentity <> '' and c.relkind = 'r'"
            ),
            {"schema": tenant.schema},
        ).all()
        for table, column in columns:
            conn.execute(
                text(f'alter table "{tenant.schema}"."{table}" alter column "{column}" restart with {start}')
            )


def known_route(route: Route) -> bool:
    """Whether the tests can make every record the route names and, for a POST, a valid form."""
    return all(a in ID_MAKERS for a in route.id_args) and (
        route.method != "POST" or route.endpoint in ROUTE_FORMS
    )
