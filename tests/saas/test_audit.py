"""The audit log: the session hook's insert/update/delete records, sign-ins, invitations and
role changes, no secrets, and the page's filters, keyset pages, htmx partial and permission."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from tests.factories import PASSWORD, TenantInfo, run_jobs, sql_value, unique


def _events(app, t, where: str = "true", **params: object) -> list[dict]:
    """Rows of a tenant's audit log, oldest first (raw SQL, qualified by the registry's schema)."""
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(text(f'select * from "{t.schema}".audit_log where {where} order by id'), params)
        return [dict(r) for r in rows.mappings()]


def _client_at(make_client, ip: str):  # noqa: ANN202
    c = make_client()
    c.environ_base["REMOTE_ADDR"] = ip
    return c


def _role_id(app, t, name: str) -> int:
    return sql_value(app, f'select id from "{t.schema}".roles where name = :n', n=name)


# The session hook ---------------------------------------------------------------------------


def test_hook_records_insert_update_delete_with_who_ip_and_fields(app, make_client, factory):
    t = factory.tenant()
    owner_id, owner_email, _m = t.people["owner"]
    client = _client_at(make_client, "203.0.113.7")
    client.sign_in(owner_email)
    headers = {"X-Request-ID": "req-audit-1"}

    resp = client.form(
        f"/{t.slug}/admin/roles/new",
        {
            "name": "Field agent",
            "description": "Visits customers",
            "visibility": "team",
            "perm-customers": ["view", "create"],
            "perm-sales": ["view"],
        },
        headers=headers,
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1000]
    role_id = _role_id(app, t, "Field agent")
    [insert] = _events(app, t, "entity = 'roles' and action = 'insert'")
    assert insert["entity_id"] == str(role_id)
    assert (insert["user_id"], insert["user_email"]) == (owner_id, owner_email)
    assert insert["ip"] == "203.0.113.7" and insert["request_id"] == "req-audit-1"
    changes = insert["changes"]
    assert changes["name"] == [None, "Field agent"]
    assert changes["description"] == [None, "Visits customers"]
    assert changes["visibility"] == [None, "team"]
    assert changes["permissions"] == [None, {"customers": ["create", "view"], "sales": ["view"]}]
    assert changes["id"] == [None, role_id]

    # Only what changed, each field before and after.
    resp = client.form(
        f"/{t.slug}/admin/roles/{role_id}",
        {
            "name": "Field agents",
            "description": "Visits customers",
            "visibility": "all",
            "perm-customers": ["view", "create"],
            "perm-sales": ["view"],
        },
    )
    assert resp.status_code == 302
    [update] = _events(app, t, "entity = 'roles' and action = 'update'")
    assert update["entity_id"] == str(role_id) and update["user_email"] == owner_email
    assert update["changes"] == {"name": ["Field agent", "Field agents"], "visibility": ["team", "all"]}

    resp = client.form(
        f"/{t.slug}/admin/roles/{role_id}",
        {
            "name": "Field agents",
            "description": "Visits customers",
            "visibility": "all",
            "perm-customers": ["view"],
        },
    )
    [_first, update] = _events(app, t, "entity = 'roles' and action = 'update'")
    assert update["changes"] == {
        "permissions": [{"customers": ["create", "view"], "sales": ["view"]}, {"customers": ["view"]}]
    }

    # Saving with nothing changed records nothing.
    client.form(
        f"/{t.slug}/admin/roles/{role_id}",
        {
            "name": "Field agents",
            "description": "Visits customers",
            "visibility": "all",
            "perm-customers": ["view"],
        },
    )
    assert len(_events(app, t, "entity = 'roles' and action = 'update'")) == 2

    assert client.form(f"/{t.slug}/admin/roles/{role_id}/delete").status_code == 302
    [delete] = _events(app, t, "entity = 'roles' and action = 'delete'")
    assert delete["entity_id"] == str(role_id) and delete["user_id"] == owner_id
    assert delete["changes"]["name"] == ["Field agents", None]
    assert delete["changes"]["visibility"] == ["all", None]
    assert delete["changes"]["permissions"] == [{"customers": ["view"]}, None]


def test_a_refused_write_records_nothing(app, client, factory):
    t = factory.tenant()
    client.sign_in(t.owner_email)
    before = len(_events(app, t))
    resp = client.form(f"/{t.slug}/admin/roles/new", {"name": "Owner", "visibility": "all"})
    assert resp.status_code == 422
    assert len(_events(app, t)) == before


# Sign-ins, invitations, role changes ----------------------------------------------------------


def test_sign_in_and_failed_sign_in_are_recorded_in_each_workspace(app, make_client, factory):
    t = factory.tenant()
    owner_id, email, _m = t.people["owner"]
    client = _client_at(make_client, "198.51.100.20")
    client.sign_in(email)
    second = unique("two")
    assert client.form("/workspaces/new", {"company": "Two Co", "slug": second}).status_code == 302
    t2 = TenantInfo(
        sql_value(app, "select id from public.tenants where slug = :s", s=second),
        second,
        sql_value(app, "select schema_name from public.tenants where slug = :s", s=second),
        email,
    )
    client.form("/logout")

    assert client.form("/login", {"email": email, "password": "wrong-password-1"}).status_code == 401
    client.sign_in(email)
    for tenant in (t, t2):
        failed = _events(app, tenant, "action = 'signin_failed'")
        assert len(failed) == 1
        assert (failed[0]["user_id"], failed[0]["user_email"], failed[0]["ip"]) == (
            owner_id,
            email,
            "198.51.100.20",
        )
        assert failed[0]["entity"] == "user" and failed[0]["entity_id"] == str(owner_id)
        assert failed[0]["summary"] == "Wrong password"
        last = _events(app, tenant, "action = 'signin'")[-1]
        assert last["id"] > failed[0]["id"] and last["user_id"] == owner_id
    # A stranger's workspace hears nothing about it.
    other = factory.tenant()
    assert not _events(app, other, "user_id = :u", u=owner_id)


def test_invitation_and_role_change_are_recorded(app, make_client, factory, smtp):
    t = factory.tenant(roles=("owner", "sales"))
    owner_id, owner_email, _m = t.people["owner"]
    owner = make_client()
    owner.sign_in(owner_email)
    invitee = f"{unique('inv')}@example.com"
    resp = owner.form(f"/{t.slug}/admin/people/invite", {"email": invitee, "role": "marketing"})
    assert resp.status_code == 302
    [inv] = _events(app, t, "action = 'invite'")
    inv_id = sql_value(app, "select id from public.invitations where email = :e", e=invitee)
    assert inv["entity"] == "invitation" and inv["entity_id"] == str(inv_id)
    assert inv["user_id"] == owner_id and inv["user_email"] == owner_email
    assert inv["changes"] == {"email": [None, invitee], "role": [None, "marketing"]}

    run_jobs(app)
    [mail] = [m for m in smtp.to(invitee) if "invited you" in m["Subject"]]
    link = re.search(r"http://crm\.localhost(/invite/\S+)", mail.get_body().get_content()).group(1)
    joiner = make_client()
    assert joiner.form(link, {"name": "Ivy", "password": PASSWORD}).status_code == 302
    [accepted] = _events(app, t, "action = 'invite_accepted'")
    assert accepted["user_email"] == invitee and accepted["entity_id"] == str(inv_id)

    sales_id, sales_email, sales_m = t.people["sales"]
    resp = owner.form(f"/{t.slug}/admin/people/{sales_m}/role", {"role": "manager"})
    assert resp.status_code == 302
    [change] = _events(app, t, "action = 'role_change'")
    assert change["entity"] == "membership" and change["entity_id"] == str(sales_m)
    assert change["changes"] == {"role": ["sales", "manager"]}
    assert change["summary"] == sales_email and change["user_email"] == owner_email

    # A refused change (the last owner cannot be demoted) records nothing.
    owner_m = t.membership("owner")
    manager = make_client()
    manager.sign_in(sales_email)
    assert manager.form(f"/{t.slug}/admin/people/{owner_m}/role", {"role": "sales"}).status_code == 403
    resp = owner.form(f"/{t.slug}/admin/people/{owner_m}/role", {"role": "admin"})
    assert resp.status_code == 422 and "at least one owner" in resp.get_data(as_text=True)
    assert len(_events(app, t, "action = 'role_change'")) == 1

    assert owner.form(f"/{t.slug}/admin/people/{sales_m}/deactivate").status_code == 302
    [off] = _events(app, t, "action = 'deactivate'")
    assert off["changes"] == {"is_active": [True, False]} and off["summary"] == sales_email


def test_secrets_never_reach_the_log(app, make_client, factory, smtp):
    from saas import audit
    from saas.models import Invitation, OneTimeToken, User

    t = factory.tenant(roles=("owner", "admin"))
    owner = make_client()
    owner.sign_in(t.owner_email)
    invitee = f"{unique('sec')}@example.com"
    owner.form(f"/{t.slug}/admin/people/invite", {"email": invitee, "role": "sales"})
    owner.form("/password/forgot", {"email": t.email("admin")})
    run_jobs(app)
    for mail in smtp.messages:
        path = re.search(
            r"http://crm\.localhost(/(?:invite|password/reset)/\S+)", mail.get_body().get_content()
        )
        if path and "/invite/" in path.group(1):
            make_client().form(path.group(1), {"name": "Sec", "password": PASSWORD})
        elif path:
            make_client().form(path.group(1), {"password": "another-long-secret-5"})
    owner.form("/login", {"email": t.email("admin"), "password": "nope-nope-nope"})

    secrets = [
        *[
            v
            for (v,) in _rows(
                app, "select password_hash from public.users where email like :p", p=f"{t.slug}-%"
            )
        ],
        *[v for (v,) in _rows(app, "select token_hash from public.invitations where tenant_id = :t", t=t.id)],
        *[
            v
            for (v,) in _rows(
                app,
                "select token_hash from public.one_time_tokens o join public.users u on u.id = o.user_id "
                "where u.email like :p",
                p=f"{t.slug}-%",
            )
        ],
    ]
    assert len(secrets) >= 4
    events = _events(app, t)
    assert {"invite", "invite_accepted", "password_reset", "signin_failed"} <= {e["action"] for e in events}
    dump = json.dumps(events, default=str)
    for word in ("password_hash", "token_hash", "$argon2", PASSWORD, "another-long-secret-5"):
        assert word not in dump
    for secret in secrets:
        assert secret not in dump

    # And the hook itself skips secret columns, whatever table they sit on.
    for obj in (
        User(email="x@example.com", name="X", password_hash="$argon2id$secret"),
        Invitation(email="x@example.com", role="sales", token_hash="f" * 64),
        OneTimeToken(user_id=1, purpose="reset", token_hash="e" * 64),
    ):
        changes = audit._changes(obj, "insert")
        assert "email" in changes or "purpose" in changes
        assert not set(changes) & audit.SECRET_FIELDS


def _rows(app, sql: str, **params: object) -> list[tuple]:
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


# The audit page -------------------------------------------------------------------------------


def _record(app, t, action: str, n: int = 1, entity: str = "thing", email: str | None = None) -> None:
    """Write n events into a tenant's log through audit.record, as a service would."""
    from saas import audit, tenancy
    from saas.extensions import db

    with app.app_context(), tenancy.bound(t.id, t.schema, t.slug):
        token = audit.set_actor(audit.Actor(user_id=None, email=email, ip="10.1.2.3"))
        try:
            for i in range(n):
                audit.record(action, entity, i + 1, {"field": [i, i + 1]})
            db.session.commit()
        finally:
            audit._actor.reset(token)
            db.session.remove()


def _badges(html: str, action: str | None = None) -> int:
    """How many rows show this action code (all rows without one)."""
    code = re.escape(action) if action else r"[a-z_]+"
    # The badge shows the action's label, with the stored code as its title.
    found = re.findall(rf'<span class="badge text-bg-light"(?: title="{code}">[^<]*| *>{code})</span>', html)
    return len(found)


def _action_choices(html: str) -> str:
    return re.search(r'<select name="action".*?</select>', html, re.S).group(0)


def _older(html: str) -> str | None:
    found = re.search(r'<a class="btn btn-sm btn-outline-secondary" href="([^"]+)"', html)
    return unescape(found.group(1)) if found else None


@pytest.fixture
def audited(app, factory):
    """A workspace with a known mix of events, and its owner signed in."""
    t = factory.tenant(roles=("owner", "manager", "sales", "read_only"))
    _record(app, t, "bulk_test", 55, entity="bulk", email="alice@example.com")
    _record(app, t, "export", 2, entity="customers", email="bob@example.com")
    _record(app, t, "old_event", 3, entity="customers", email="carol@example.com")
    from saas.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"update \"{t.schema}\".audit_log set at = '2020-01-15 12:00:00+00' where action = 'old_event'"
        )
    return t


def test_audit_page_filters(app, client, audited):
    t = audited
    client.sign_in(t.owner_email)
    base = f"/{t.slug}/admin/audit"
    page = client.get(base)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    # Newest first; the filters offer what the log holds.
    assert _badges(html, "signin") == 1 and _badges(html, "old_event") == 3
    assert "bulk_test" in _action_choices(html) and "old_event" in _action_choices(html)

    html = client.get(base, query_string={"action": "export"}).get_data(as_text=True)
    assert _badges(html, "export") == 2 and _badges(html, "bulk_test") == 0 and "bob@example.com" in html

    html = client.get(base, query_string={"entity": "customers"}).get_data(as_text=True)
    assert (
        _badges(html, "export") == 2 and _badges(html, "old_event") == 3 and _badges(html, "bulk_test") == 0
    )

    html = client.get(base, query_string={"user": "CAROL@"}).get_data(as_text=True)
    assert _badges(html, "old_event") == 3 and _badges(html, "export") == 0

    html = client.get(base, query_string={"since": "2020-01-01", "until": "2020-01-31"}).get_data(
        as_text=True
    )
    assert _badges(html, "old_event") == 3 and _badges(html, "export") == 0 and _badges(html, "signin") == 0
    html = client.get(base, query_string={"since": "2020-01-16"}).get_data(as_text=True)
    assert _badges(html, "old_event") == 0 and _badges(html, "export") == 2
    html = client.get(base, query_string={"until": "2020-01-14"}).get_data(as_text=True)
    assert "Nothing recorded matches these filters." in html

    # Filters combine; a garbage date is ignored rather than an error.
    html = client.get(
        base, query_string={"entity": "customers", "user": "bob", "since": "nonsense"}
    ).get_data(as_text=True)
    assert _badges(html, "export") == 2 and _badges(html, "old_event") == 0


def test_audit_page_keyset_pagination(app, client, audited):
    t = audited
    client.sign_in(t.owner_email)
    base = f"/{t.slug}/admin/audit"
    html = client.get(base, query_string={"action": "bulk_test"}).get_data(as_text=True)
    assert _badges(html, "bulk_test") == 50
    older = _older(html)
    assert older and "before=" in older and "action=bulk_test" in older and ">Older</a>" in html
    first_ids = [int(i) for i in re.findall(r"bulk #(\d+)", html)]
    assert first_ids == list(range(55, 5, -1))  # newest first

    html = client.get(older).get_data(as_text=True)
    assert _badges(html, "bulk_test") == 5 and _older(html) is None
    assert [int(i) for i in re.findall(r"bulk #(\d+)", html)] == [5, 4, 3, 2, 1]

    # Without a filter the first page holds 50 of the 60+ events and links on.
    html = client.get(base).get_data(as_text=True)
    assert _badges(html) == 50 and _older(html)


def test_audit_page_htmx_gets_only_the_rows(app, client, audited):
    t = audited
    client.sign_in(t.owner_email)
    base = f"/{t.slug}/admin/audit"
    resp = client.get(base, query_string={"action": "bulk_test"}, headers={"HX-Request": "true"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "HX-Request" in resp.headers.get("Vary", "")
    assert html.lstrip().startswith("<tr>") and "<html" not in html and "<form" not in html
    assert _badges(html, "bulk_test") == 50
    assert 'hx-target="#audit-more"' in html and 'id="audit-more"' in html
    # The "Older" row swaps itself for the next rows.
    nxt = client.get(_older(html), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in nxt and _badges(nxt, "bulk_test") == 5 and 'id="audit-more"' not in nxt
    # A history restore gets the full page.
    full = client.get(base, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in full.get_data(as_text=True)


@pytest.mark.parametrize(("role", "status"), [("manager", 200), ("sales", 403), ("read_only", 403)])
def test_audit_page_needs_audit_view(app, client, audited, role, status):
    t = audited
    client.sign_in(t.email(role))
    resp = client.get(f"/{t.slug}/admin/audit")
    assert resp.status_code == status
    if status == 403:
        assert "Your role does not allow this." in resp.get_data(as_text=True)
        partial = client.get(f"/{t.slug}/admin/audit", headers={"HX-Request": "true"})
        body = partial.get_data(as_text=True)
        assert partial.status_code == 403 and "<html" not in body and 'data-status="403"' in body
        assert "alice@example.com" not in body
        dash = client.get(f"/{t.slug}/").get_data(as_text=True)
        assert f"/{t.slug}/admin/audit" not in dash  # not offered in the navigation either


def test_custom_role_with_and_without_audit_view(app, make_client, audited):
    t = audited
    owner = make_client()
    owner.sign_in(t.owner_email)
    for name, perms in (("Auditor", {"perm-audit": ["view"]}), ("Clerk", {"perm-customers": ["view"]})):
        resp = owner.form(f"/{t.slug}/admin/roles/new", {"name": name, "visibility": "all", **perms})
        assert resp.status_code == 302
    person = make_client()
    person.sign_in(t.email("sales"))
    for name, status in (("Auditor", 200), ("Clerk", 403)):
        key = f"custom:{_role_id(app, t, name)}"
        assert (
            owner.form(f"/{t.slug}/admin/people/{t.membership('sales')}/role", {"role": key}).status_code
            == 302
        )
        assert person.get(f"/{t.slug}/admin/audit").status_code == status
