"""Sign-up: bad inputs refused next to their field with nothing created; all-or-nothing
provisioning; the live address check; a second workspace and switching between them."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD, field_errors, run_jobs, sql_value, unique


def _snapshot(app) -> dict[str, object]:
    """What a sign-up creates, counted: registry rows, tenant schemas, people, memberships, mail."""
    return {
        "tenants": sql_value(app, "select count(*) from public.tenants"),
        "schemas": sql_value(
            app, "select count(*) from information_schema.schemata where schema_name ~ '^t_[0-9]+$'"
        ),
        "versions": sql_value(app, "select count(*) from public.tenant_schema_versions"),
        "users": sql_value(app, "select count(*) from public.users"),
        "memberships": sql_value(app, "select count(*) from public.memberships"),
        "outbox": sql_value(app, "select count(*) from public.email_outbox"),
    }


def _form(**overrides: str) -> dict[str, str]:
    slug = unique("co")
    data = {
        "company": "Acme Ltd",
        "slug": slug,
        "name": "Ann Example",
        "email": f"{slug}@example.com",
        "password": PASSWORD,
    }
    data.update(overrides)
    return data


def _schema_exists(app, schema: str) -> bool:
    return bool(
        sql_value(app, "select count(*) from information_schema.schemata where schema_name = :s", s=schema)
    )


def test_signup_creates_tenant_schema_owner_and_verification_mail(app, client):
    data = _form()
    resp = client.form("/signup", data)
    assert resp.status_code == 302 and resp.headers["Location"] == f"/{data['slug']}/"
    tenant_id = sql_value(app, "select id from public.tenants where slug = :s", s=data["slug"])
    schema = sql_value(app, "select schema_name from public.tenants where id = :i", i=tenant_id)
    assert schema == f"t_{tenant_id}" and _schema_exists(app, schema)
    assert sql_value(
        app, "select revision from public.tenant_schema_versions where tenant_id = :i", i=tenant_id
    )
    role = sql_value(
        app,
        "select m.role from public.memberships m join public.users u on u.id = m.user_id "
        "where m.tenant_id = :i and u.email = :e",
        i=tenant_id,
        e=data["email"],
    )
    assert role == "owner"
    assert sql_value(app, "select count(*) from public.email_outbox where to_addr = :e", e=data["email"]) == 1
    assert run_jobs(app) == 1
    # Signed in and at home in the new workspace.
    assert "Acme Ltd" in client.get(f"/{data['slug']}/").get_data(as_text=True)


BAD_INPUTS = [
    ("reserved slug", {"slug": "admin"}, "slug", "This address is reserved."),
    ("reserved slug, any case", {"slug": "Settings"}, "slug", "This address is reserved."),
    ("slug too short", {"slug": "ab"}, "slug", "Use 3 to 40 characters."),
    ("slug too long", {"slug": "a" * 41}, "slug", "40 characters"),
    ("underscore", {"slug": "acme_co"}, "slug", "Use lowercase letters a-z, digits and dashes"),
    ("space", {"slug": "acme co"}, "slug", "Use lowercase letters a-z, digits and dashes"),
    ("leading dash", {"slug": "-acme"}, "slug", "start and end with a letter or digit"),
    ("trailing dash", {"slug": "acme-"}, "slug", "start and end with a letter or digit"),
    ("non-ascii", {"slug": "café-co"}, "slug", "Use lowercase letters a-z, digits and dashes"),
    ("double dash", {"slug": "acme--co"}, "slug", "Do not use two dashes in a row."),
    ("missing slug", {"slug": ""}, "slug", "This field is required."),
    ("bad email", {"email": "not-an-email"}, "email", "Invalid email address."),
    ("missing email", {"email": ""}, "email", "This field is required."),
    ("short password", {"password": "short9"}, "password", "between 10 and 200 characters"),
    ("common password", {"password": "password123"}, "password", "This password is too easy to guess."),
    ("missing company", {"company": ""}, "company", "This field is required."),
    ("blank company", {"company": "   "}, "company", "This field is required."),
    ("missing name", {"name": ""}, "name", "This field is required."),
]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_signup_input_is_refused_next_to_the_field(app, client, overrides, field, message):
    data = _form(**overrides)
    before = _snapshot(app)
    resp = client.form("/signup", data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    errors = field_errors(html, field)
    assert any(message in e for e in errors), errors
    assert _snapshot(app) == before
    assert not sql_value(app, "select count(*) from public.tenants where slug = :s", s=data["slug"].lower())
    assert not sql_value(app, "select count(*) from public.users where email = :e", e=data["email"])
    # Still signed out: the workspace pages send you to sign in.
    assert client.get("/workspaces").status_code == 302


def test_password_same_as_email_is_refused(app, client):
    slug = unique("co")
    email = f"{slug}-long@example.com"
    before = _snapshot(app)
    resp = client.form("/signup", _form(slug=slug, email=email, password=email))
    assert resp.status_code == 422
    assert field_errors(resp.get_data(as_text=True), "password") == ["This password is too easy to guess."]
    assert _snapshot(app) == before


def test_taken_slug_is_refused(app, client, factory):
    taken = factory.tenant()
    before = _snapshot(app)
    data = _form(slug=taken.slug.upper())
    resp = client.form("/signup", data)
    assert resp.status_code == 422
    assert field_errors(resp.get_data(as_text=True), "slug") == ["This address is taken."]
    assert _snapshot(app) == before
    assert not sql_value(app, "select count(*) from public.users where email = :e", e=data["email"])


def test_existing_email_is_refused(app, client, factory):
    email = factory.user()
    before = _snapshot(app)
    data = _form(email=email.upper())
    resp = client.form("/signup", data)
    assert resp.status_code == 422
    errors = field_errors(resp.get_data(as_text=True), "email")
    assert errors == ["An account with this email exists. Sign in, then create a workspace."]
    assert _snapshot(app) == before
    assert not sql_value(app, "select count(*) from public.tenants where slug = :s", s=data["slug"])


def test_refused_form_keeps_what_was_typed_but_not_the_password(client):
    data = _form(slug="admin")
    html = client.form("/signup", data).get_data(as_text=True)
    assert 'value="Acme Ltd"' in html and f'value="{data["email"]}"' in html
    assert PASSWORD not in html


def test_missing_csrf_token_is_refused(app, client):
    before = _snapshot(app)
    resp = client.post("/signup", data=_form())
    assert resp.status_code == 400
    assert _snapshot(app) == before


# The live availability check ------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "message", "css"),
    [
        ("admin", "This address is reserved.", "text-danger"),
        ("ab", "Use 3 to 40 characters.", "text-danger"),
        ("acme_co", "Use lowercase letters a-z", "text-danger"),
        ("acme--co", "Do not use two dashes in a row.", "text-danger"),
        ("", "Lowercase letters, digits and dashes.", None),
    ],
)
def test_check_slug_says_why(client, slug, message, css):
    resp = client.get("/signup/check-slug", query_string={"slug": slug}, headers={"HX-Request": "true"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert html.lstrip().startswith('<div id="slug-check"') and "<html" not in html
    assert message in html
    if css:
        assert css in html
    else:
        assert "text-danger" not in html and "text-success" not in html


def test_check_slug_free_and_taken(client, factory):
    free = unique("free")
    html = client.get(f"/signup/check-slug?slug={free.upper()}").get_data(as_text=True)
    assert f"crm.localhost/{free} is available." in html and "text-success" in html
    taken = factory.tenant().slug
    html = client.get(f"/signup/check-slug?slug={taken}").get_data(as_text=True)
    assert "This address is taken." in html and "text-danger" in html


# All or nothing ---------------------------------------------------------------------------


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("step", ["after the schema is made", "at the audit record"])
def test_failure_mid_provisioning_leaves_nothing_behind(app, client, monkeypatch, step):
    import saas.signup
    from workers.queues import QUEUES, queue

    made: list[str] = []
    real_create = saas.signup.create_tenant_schema

    def create_then_fail(conn, tenant_id, schema):  # noqa: ANN001, ANN202
        real_create(conn, tenant_id, schema)
        made.append(schema)
        # The schema really exists inside the signup's transaction at this point.
        assert conn.exec_driver_sql(
            "select count(*) from information_schema.schemata where schema_name = %s", (schema,)
        ).scalar()
        if step == "after the schema is made":
            raise Boom("disk full")

    def record_then_fail(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise Boom("audit log unavailable")

    monkeypatch.setattr(saas.signup, "create_tenant_schema", create_then_fail)
    if step == "at the audit record":
        monkeypatch.setattr(saas.signup.audit, "record", record_then_fail)

    data = _form()
    before = _snapshot(app)
    with pytest.raises(Boom):
        client.form("/signup", data)
    assert made, "provisioning did not get as far as the schema"
    assert not _schema_exists(app, made[0])
    assert _snapshot(app) == before
    assert not sql_value(app, "select count(*) from public.tenants where slug = :s", s=data["slug"])
    assert not sql_value(app, "select count(*) from public.users where email = :e", e=data["email"])
    with app.app_context():
        assert sum(queue(name).count for name in QUEUES) == 0, (
            "a mail job was queued for a rolled-back signup"
        )

    # Once the fault is gone the same address and email sign up fine.
    monkeypatch.undo()
    resp = client.form("/signup", data)
    assert resp.status_code == 302
    assert sql_value(app, "select count(*) from public.tenants where slug = :s", s=data["slug"]) == 1


# More than one workspace --------------------------------------------------------------------


def test_second_workspace_and_switching(app, client, factory):
    first = factory.tenant(name="First Co")
    client.sign_in(first.owner_email)
    assert client.get("/workspaces/new").status_code == 200

    # A bad address is refused next to the field, and makes nothing.
    before = _snapshot(app)
    resp = client.form("/workspaces/new", {"company": "Second Co", "slug": "login"})
    assert resp.status_code == 422
    assert field_errors(resp.get_data(as_text=True), "slug") == ["This address is reserved."]
    resp = client.form("/workspaces/new", {"company": "Second Co", "slug": first.slug})
    assert field_errors(resp.get_data(as_text=True), "slug") == ["This address is taken."]
    assert _snapshot(app) == before

    second = unique("second")
    resp = client.form("/workspaces/new", {"company": "Second Co", "slug": second})
    assert resp.status_code == 302 and resp.headers["Location"] == f"/{second}/"
    user_id = first.people["owner"][0]
    assert (
        sql_value(
            app,
            "select m.role from public.memberships m join public.tenants t on t.id = m.tenant_id "
            "where t.slug = :s and m.user_id = :u",
            s=second,
            u=user_id,
        )
        == "owner"
    )
    # No second account was made for the same person.
    assert sql_value(app, "select count(*) from public.users where email = :e", e=first.owner_email) == 1
    assert "Second Co" in client.get(f"/{second}/").get_data(as_text=True)

    page = client.get("/workspaces").get_data(as_text=True)
    assert "First Co" in page and "Second Co" in page
    assert (
        f'action="/workspaces/{first.slug}/switch"' in page
        and f'action="/workspaces/{second}/switch"' in page
    )

    resp = client.form(f"/workspaces/{first.slug}/switch")
    assert resp.status_code == 302 and resp.headers["Location"] == f"/{first.slug}/"
    assert sql_value(app, "select last_tenant_id from public.users where id = :u", u=user_id) == first.id
    # Sign in again later: you land in the workspace you used last.
    assert client.get("/login").headers["Location"] == f"/{first.slug}/"

    resp = client.form(f"/workspaces/{second}/switch")
    assert resp.headers["Location"] == f"/{second}/"
    assert client.get("/login").headers["Location"] == f"/{second}/"

    # Someone else's workspace cannot be switched to, and the switch changes nothing.
    other = factory.tenant()
    assert client.form(f"/workspaces/{other.slug}/switch").status_code == 404
    assert client.get(f"/{other.slug}/").status_code == 404
    assert client.form("/workspaces/no-such-place/switch").status_code == 404
    last = sql_value(
        app,
        "select t.slug from public.users u join public.tenants t on t.id = u.last_tenant_id where u.id = :u",
        u=user_id,
    )
    assert last == second


def test_new_workspace_needs_sign_in(client):
    resp = client.get("/workspaces/new")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
