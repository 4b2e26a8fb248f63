"""The platform console: operators only (404 for anyone else), the tenant list with its figures,
suspending (pages 403, API tokens refused, data kept) and reactivating, audited in the tenant's log."""

from __future__ import annotations

import re

import pytest

from tests.factories import CsrfClient, Factory, TenantInfo, add_tenant_row, sql_value, unique


@pytest.fixture(scope="module")
def pair(app) -> tuple[TenantInfo, TenantInfo]:
    factory = Factory(app)
    return (
        factory.tenant(roles=("owner", "sales"), name=unique("Console Alpha ")),
        factory.tenant(roles=("owner",), name=unique("Console Bravo ")),
    )


@pytest.fixture(scope="module")
def operator(app) -> str:
    email = Factory(app).user(name="Olga Operator")
    result = app.test_cli_runner().invoke(args=["platform-admin", "grant", email.upper()])
    assert result.exit_code == 0 and "is a platform admin" in result.output, result.output
    return email


def _client(app, email: str | None = None) -> CsrfClient:
    app.test_client_class = CsrfClient
    client = app.test_client()
    if email:
        client.sign_in(email)
    return client


def _status(app, info: TenantInfo) -> str:
    return sql_value(app, "select status from public.tenants where id = :id", id=info.id)


def _row(html: str, info: TenantInfo) -> str:
    match = re.search(rf'<tr data-tenant="{info.slug}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {info.slug}"
    return match.group(1)


def _bytes(row: str, what: str) -> int:
    return int(re.search(rf'data-testid="{what}" data-bytes="(\d+)"', row).group(1))


def test_only_platform_admins_see_the_console(app, pair, operator):
    alpha, _bravo = pair
    assert _client(app).get("/console/").status_code == 404
    owner = _client(app, alpha.email("owner"))
    assert owner.get("/console/").status_code == 404
    assert owner.get(f"/console/tenants/{alpha.id}/suspend").status_code == 404
    assert owner.form(f"/console/tenants/{alpha.id}/suspend", {"confirm": alpha.slug}).status_code == 404
    assert _status(app, alpha) == "active"
    operator_client = _client(app, operator)
    assert operator_client.get("/console/").status_code == 200
    assert 'data-testid="console-link"' in operator_client.get("/workspaces").get_data(as_text=True)
    assert 'data-testid="console-link"' not in owner.get("/workspaces").get_data(as_text=True)
    # The command refuses an unknown account, and revoke takes the console away.
    runner = app.test_cli_runner()
    result = runner.invoke(args=["platform-admin", "grant", "nobody-at-all@example.com"])
    assert result.exit_code != 0 and "no account" in result.output
    other = Factory(app).user()
    assert runner.invoke(args=["platform-admin", "grant", other]).exit_code == 0
    assert _client(app, other).get("/console/").status_code == 200
    assert runner.invoke(args=["platform-admin", "revoke", other]).exit_code == 0
    assert _client(app, other).get("/console/").status_code == 404


def test_the_list_shows_each_tenant_with_its_own_figures(app, pair, operator):
    alpha, bravo = pair
    client = _client(app, operator)
    row = _row(client.get(f"/console/?q={alpha.slug}").get_data(as_text=True), alpha)
    assert alpha.slug in row and "Active" in row
    assert re.search(r'data-testid="members">\s*2\s*<', row)  # owner and sales
    empty_db = _bytes(row, "database")
    assert empty_db > 0 and _bytes(row, "files") == 0

    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.models import Company

    with app.app_context(), tenancy.bound(alpha.id, alpha.schema, alpha.slug):
        db.session.add_all(Company(name=f"Filler {n} " + "x" * 180) for n in range(300))
        db.session.commit()
        db.session.remove()
    add_tenant_row(
        app,
        alpha,
        "tenants.customers.extra_models:Attachment",
        record_type="company",
        record_id=1,
        file_name="deck.pdf",
        content_type="application/pdf",
        size=123_456,
        storage_key=f"{alpha.id}/{unique('k')}",
    )
    page = client.get("/console/?q=Console").get_data(as_text=True)
    row_a, row_b = _row(page, alpha), _row(page, bravo)
    assert _bytes(row_a, "database") > empty_db
    assert _bytes(row_a, "files") == 123_456 and "120.6 KB" in row_a
    assert _bytes(row_b, "files") == 0  # another tenant's files are not counted for it
    assert re.search(r'data-testid="members">\s*1\s*<', row_b)

    # Search by name or slug; the other tenant is not listed.
    only_b = client.get(f"/console/?q={bravo.slug.upper()}").get_data(as_text=True)
    assert f'data-tenant="{bravo.slug}"' in only_b and f'data-tenant="{alpha.slug}"' not in only_b
    assert 'data-tenant="' not in client.get("/console/?q=%25").get_data(as_text=True)  # % is a character


def test_the_list_shows_billing_and_the_last_good_backup(app, pair, operator):
    pytest.importorskip("saas.billing.services")
    pytest.importorskip("saas.backups.services")
    from datetime import UTC, datetime, timedelta

    from saas.backups.models import Backup
    from saas.billing.models import BillingAccount
    from saas.extensions import db

    alpha, bravo = pair
    taken = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    with app.app_context():
        account = db.session.get(BillingAccount, alpha.id) or BillingAccount(tenant_id=alpha.id)
        account.plan, account.state, account.seats_paid = "monthly", "active", 5
        account.trial_ends_at = datetime.now(UTC) - timedelta(days=30)
        db.session.add(account)
        db.session.add(Backup(tenant_id=alpha.id, kind="daily", status="good", started_at=taken))
        db.session.add(
            Backup(tenant_id=alpha.id, kind="daily", status="failed", started_at=taken + timedelta(days=1))
        )
        db.session.commit()
        db.session.remove()
    page = _client(app, operator).get("/console/?q=Console").get_data(as_text=True)
    row_a, row_b = _row(page, alpha), _row(page, bravo)
    assert "Per seat, monthly" in row_a and re.search(r'data-testid="seats">\s*2 / 5\s*<', row_a)
    with app.test_request_context():
        from flask_babel import format_datetime

        shown = format_datetime(taken, "short")
    assert f'data-testid="backup">{shown}<' in row_a  # the good one, not the newer failed one
    assert re.search(r'data-testid="backup">\s*—\s*<', row_b)  # no good backup of its own


def test_the_list_is_keyset_paginated(app, pair):
    from saas.console import services

    with app.test_request_context():
        everyone = [r.tenant.id for r in services.tenant_page(size=1000).rows]
        walked, after = [], None
        while True:
            page = services.tenant_page(size=1, after=after)
            walked += [r.tenant.id for r in page.rows]
            if page.next_cursor is None:
                break
            assert page.next_cursor == page.rows[-1].tenant.id
            after = page.next_cursor
        assert len(everyone) >= 2 and walked == everyone == sorted(everyone, reverse=True)


def test_suspend_blocks_pages_and_api_reactivate_restores(app, pair, operator):
    from saas import tenancy
    from tenants.api import tokens

    alpha, bravo = pair
    with app.test_request_context(), tenancy.bound(alpha.id, alpha.schema, alpha.slug):
        _row_obj, token = tokens.create(alpha.people["owner"][0], "script", 30)
        from saas.extensions import db

        db.session.commit()
        db.session.remove()
    api_headers = {"Authorization": f"Bearer {token}"}
    member = _client(app, alpha.email("sales"))
    stranger = _client(app, bravo.email("owner"))
    assert member.get(f"/{alpha.slug}/customers/contacts").status_code == 200
    assert _client(app).get(f"/api/v1/{alpha.slug}/contacts", headers=api_headers).status_code == 200
    companies = sql_value(app, f'select count(*) from "{alpha.schema}".companies')

    admin = _client(app, operator)
    confirm = admin.get(f"/console/tenants/{alpha.id}/suspend").get_data(as_text=True)
    assert "Suspend" in confirm and alpha.slug in confirm
    wrong = admin.form(f"/console/tenants/{alpha.id}/suspend", {"confirm": "not-it"})
    assert wrong.status_code == 422 and f"Type {alpha.slug} to confirm." in wrong.get_data(as_text=True)
    assert _status(app, alpha) == "active"
    resp = admin.form(
        f"/console/tenants/{alpha.id}/suspend", {"confirm": alpha.slug, "reason": "Unpaid since May"}
    )
    assert resp.status_code == 302 and _status(app, alpha) == "suspended"

    for path in ("/", "/customers/contacts", "/admin/people"):
        page = member.get(f"/{alpha.slug}{path}")
        assert page.status_code == 403 and "This workspace is suspended" in page.get_data(as_text=True)
    assert member.form(f"/{alpha.slug}/customers/companies/new", {"name": "Blocked Co"}).status_code == 403
    assert stranger.get(f"/{alpha.slug}/").status_code == 404  # non-members learn nothing
    api = _client(app).get(f"/api/v1/{alpha.slug}/contacts", headers=api_headers)
    assert api.status_code == 403 and "suspended" in api.get_json()["error"]["message"]
    bad = _client(app).get(f"/api/v1/{alpha.slug}/contacts", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    # The data is kept, nothing was written, and the other tenant goes on as before.
    assert sql_value(app, f'select count(*) from "{alpha.schema}".companies') == companies
    assert stranger.get(f"/{bravo.slug}/customers/contacts").status_code == 200
    listed = admin.get(f"/console/?q={alpha.slug}").get_data(as_text=True)
    assert "Suspended" in _row(listed, alpha) and "Reactivate" in _row(listed, alpha)

    # Audited in the tenant's own log (who, what, why), and only there.
    who, changes, summary = _last_audit(app, alpha, "workspace_suspended")
    assert (
        who == operator and '"status": ["active", "suspended"]' in changes and summary == "Unpaid since May"
    )
    assert _last_audit(app, bravo, "workspace_suspended") is None

    # Suspending twice is refused with a message; then reactivate restores everything.
    again = admin.form(f"/console/tenants/{alpha.id}/suspend", {"confirm": alpha.slug}, follow_redirects=True)
    assert "Only an active workspace can be suspended." in again.get_data(as_text=True)
    assert admin.get(f"/console/tenants/{alpha.id}/reactivate").status_code == 200
    assert admin.form(f"/console/tenants/{alpha.id}/reactivate", {}).status_code == 302
    assert _status(app, alpha) == "active"
    assert member.get(f"/{alpha.slug}/customers/contacts").status_code == 200
    assert _client(app).get(f"/api/v1/{alpha.slug}/contacts", headers=api_headers).status_code == 200
    who, changes, _summary = _last_audit(app, alpha, "workspace_reactivated")
    assert who == operator and '"status": ["suspended", "active"]' in changes
    audit_page = _client(app, alpha.email("owner")).get(f"/{alpha.slug}/admin/audit").get_data(as_text=True)
    assert "Suspended the workspace" in audit_page and "Reactivated the workspace" in audit_page


def _last_audit(app, info: TenantInfo, action: str) -> tuple[str, str, str] | None:
    """(who, changes, summary) of the tenant's newest audit entry of `action`, or None."""
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        row = conn.execute(
            text(
                f'select user_email, changes::text, summary from "{info.schema}".audit_log'
                " where action = :a order by id desc limit 1"
            ),
            {"a": action},
        ).one_or_none()
    return tuple(row) if row is not None else None


def test_suspend_needs_the_csrf_token(app, pair, operator):
    alpha, _bravo = pair
    admin = _client(app, operator)
    resp = admin.post(f"/console/tenants/{alpha.id}/suspend", data={"confirm": alpha.slug})
    assert resp.status_code == 400 and _status(app, alpha) == "active"
    assert admin.form("/console/tenants/999999999/suspend", {"confirm": "x"}).status_code == 404
