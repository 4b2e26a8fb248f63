"""Sign-in and out, rate limits, cookies, and every emailed link (reset, verification,
invitation) delivered through a real SMTP server and followed from the received message."""

from __future__ import annotations

import hashlib

import pytest

from tests.factories import PASSWORD, field_errors, link_in, run_jobs, sql_value, unique

NEW_PASSWORD = "a-brand-new-secret-42"


def _login(client, email: str, password: str = PASSWORD, **kwargs):  # noqa: ANN202
    return client.form("/login", {"email": email, "password": password}, **kwargs)


def _client_at(make_client, ip: str):  # noqa: ANN202
    """A browser at a given IP address."""
    c = make_client()
    c.environ_base["REMOTE_ADDR"] = ip
    return c


def _password_hash(app, email: str) -> str:
    return sql_value(app, "select password_hash from public.users where email = :e", e=email)


def _session_version(app, email: str) -> int:
    return sql_value(app, "select session_version from public.users where email = :e", e=email)


# Sign in and out --------------------------------------------------------------------------


def test_sign_in_and_out(client, factory):
    t = factory.tenant()
    assert client.get(f"/{t.slug}/").status_code == 302  # signed out: off to the sign-in page
    resp = _login(client, t.owner_email.upper())  # any case
    assert resp.status_code == 302 and resp.headers["Location"] == f"/{t.slug}/"
    assert client.get(f"/{t.slug}/").status_code == 200
    assert client.get("/login").headers["Location"] == f"/{t.slug}/"  # already in

    resp = client.form("/logout")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    resp = client.get(f"/{t.slug}/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith(f"/login?next=/{t.slug}/")


def test_sign_in_follows_a_safe_next_only(client, factory):
    t = factory.tenant()
    resp = client.form(f"/login?next=/{t.slug}/admin/people", {"email": t.owner_email, "password": PASSWORD})
    assert resp.headers["Location"] == f"/{t.slug}/admin/people"
    client.form("/logout")
    resp = client.form("/login?next=//evil.example/x", {"email": t.owner_email, "password": PASSWORD})
    assert resp.headers["Location"] == f"/{t.slug}/"


@pytest.mark.parametrize("who", ["wrong password", "unknown email"])
def test_wrong_password_says_so_and_signs_nobody_in(client, factory, who):
    t = factory.tenant()
    email = t.owner_email if who == "wrong password" else f"{unique('nobody')}@example.com"
    resp = _login(client, email, "not-the-password-1")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 401
    assert "Email or password is not right." in html
    assert client.get(f"/{t.slug}/").status_code == 302


def test_sign_in_form_errors_are_next_to_the_field(client):
    resp = client.form("/login", {"email": "not-an-email", "password": ""})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert field_errors(html, "email") == ["Invalid email address."]
    assert field_errors(html, "password") == ["This field is required."]


def test_passwords_are_stored_with_argon2id(app, factory, production_hasher):
    from argon2 import Type

    # The app's own hasher is strong (the tests swap in a quick one; see tests/saas/conftest.py).
    assert production_hasher.type is Type.ID
    assert production_hasher.time_cost >= 2 and production_hasher.memory_cost >= 19 * 1024
    stored = _password_hash(app, factory.user())
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_session_cookie_is_httponly_and_samesite_lax(client, factory):
    t = factory.tenant()
    resp = client.form("/login", {"email": t.owner_email, "password": PASSWORD, "remember": "y"})
    cookies = {c.split("=", 1)[0]: c for c in resp.headers.getlist("Set-Cookie")}
    for name in ("session", "remember_token"):
        flags = [f.strip().lower() for f in cookies[name].split(";")]
        assert "httponly" in flags, cookies[name]
        assert "samesite=lax" in flags, cookies[name]


# Rate limits -------------------------------------------------------------------------------


def test_sign_in_is_rate_limited_per_account(app, make_client, factory, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ACCOUNT", (3, 60))
    t = factory.tenant(roles=("owner", "sales"))
    for n in range(3):
        c = _client_at(make_client, f"198.51.100.{n + 1}")  # a new IP each time
        assert _login(c, t.owner_email, "wrong-password-x").status_code == 401
    c = _client_at(make_client, "198.51.100.9")
    resp = _login(c, t.owner_email)  # even the right password, from yet another address
    assert resp.status_code == 429
    assert "Too many attempts. Wait a few minutes and try again." in resp.get_data(as_text=True)
    assert c.get(f"/{t.slug}/").status_code == 302
    # Another account is not held up.
    assert _login(c, t.email("sales")).status_code == 302


def test_successful_sign_in_clears_the_account_count(app, client, factory, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ACCOUNT", (2, 60))
    t = factory.tenant()
    assert _login(client, t.owner_email, "wrong-password-x").status_code == 401
    assert _login(client, t.owner_email).status_code == 302
    client.form("/logout")
    assert _login(client, t.owner_email, "wrong-password-x").status_code == 401
    assert _login(client, t.owner_email).status_code == 302


def test_sign_in_is_rate_limited_per_ip(app, make_client, factory, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_IP", (3, 60))
    t = factory.tenant()
    attacker = _client_at(make_client, "203.0.113.5")
    for _n in range(3):
        assert _login(attacker, f"{unique('x')}@example.com", "whatever-123").status_code == 401
    resp = _login(attacker, t.owner_email)
    assert resp.status_code == 429
    assert "Too many attempts" in resp.get_data(as_text=True)
    # The same person from another address gets in.
    other = _client_at(make_client, "203.0.113.6")
    assert _login(other, t.owner_email).status_code == 302


def test_reset_requests_are_rate_limited_per_account_and_ip(app, make_client, factory, monkeypatch, smtp):
    monkeypatch.setitem(app.config, "RESET_LIMIT_PER_ACCOUNT", (1, 60))
    monkeypatch.setitem(app.config, "RESET_LIMIT_PER_IP", (3, 60))
    email = factory.user()
    a = _client_at(make_client, "192.0.2.1")
    assert a.form("/password/forgot", {"email": email}).status_code == 302
    b = _client_at(make_client, "192.0.2.2")
    resp = b.form("/password/forgot", {"email": email})
    assert resp.status_code == 429
    assert "Too many requests. Wait an hour and try again." in resp.get_data(as_text=True)
    # Per IP: two more addresses are fine, the fourth request from the same IP is not.
    for _n in range(2):
        assert a.form("/password/forgot", {"email": f"{unique('x')}@example.com"}).status_code == 302
    resp = a.form("/password/forgot", {"email": f"{unique('x')}@example.com"})
    assert resp.status_code == 429
    run_jobs(app)
    assert len(smtp.to(email)) == 1  # only the first request sent a link
    assert smtp.to(email)[0]["Subject"] == "Reset your password"


# Password reset -----------------------------------------------------------------------------


def _request_reset(app, client, smtp, email: str) -> str:
    def resets() -> list:
        return [m for m in smtp.to(email) if m["Subject"] == "Reset your password"]

    before = len(resets())
    resp = client.form("/password/forgot", {"email": email})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    run_jobs(app)
    assert len(resets()) == before + 1
    return link_in(resets()[-1], "/password/reset/")


def test_password_reset_by_emailed_link(app, make_client, factory, smtp):
    t = factory.tenant()
    email = t.owner_email
    elsewhere = make_client()  # the same person, signed in on another device
    elsewhere.sign_in(email)
    assert elsewhere.get(f"/{t.slug}/").status_code == 200
    remembered = make_client()  # and on a third, with "keep me signed in"
    remembered.form("/login", {"email": email, "password": PASSWORD, "remember": "y"})
    remembered.delete_cookie("session", domain="crm.localhost")
    assert remembered.get(f"/{t.slug}/").status_code == 200  # back in by the remember cookie

    client = make_client()
    link = _request_reset(app, client, smtp, email)
    page = client.get(link)
    assert page.status_code == 200 and "Choose a new password" in page.get_data(as_text=True)

    # A weak password is refused on the form and the link stays usable.
    resp = client.form(link, {"password": "password123"})
    assert resp.status_code == 422
    assert field_errors(resp.get_data(as_text=True), "password") == ["This password is too easy to guess."]
    assert client.get(link).status_code == 200

    version = _session_version(app, email)
    resp = client.form(link, {"password": NEW_PASSWORD})
    assert resp.status_code == 302 and resp.headers["Location"] == f"/{t.slug}/"
    assert client.get(f"/{t.slug}/").status_code == 200  # this browser is signed in
    assert _session_version(app, email) == version + 1

    # The other devices' sessions have ended, remember cookie or not.
    resp = elsewhere.get(f"/{t.slug}/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    remembered.delete_cookie("session", domain="crm.localhost")
    resp = remembered.get(f"/{t.slug}/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")

    fresh = make_client()
    assert _login(fresh, email, PASSWORD).status_code == 401  # old password no longer works
    assert _login(fresh, email, NEW_PASSWORD).status_code == 302

    # The link works once.
    saved = (_password_hash(app, email), _session_version(app, email))
    again = make_client()
    for resp in (again.get(link), again.form(link, {"password": "yet-another-pass-7"})):
        assert resp.status_code == 410
        assert "This link has already been used." in resp.get_data(as_text=True)
    assert (_password_hash(app, email), _session_version(app, email)) == saved


def test_expired_reset_link_is_refused(app, client, factory, smtp):
    email = factory.user()
    link = _request_reset(app, client, smtp, email)
    token_hash = hashlib.sha256(link.rsplit("/", 1)[1].encode()).hexdigest()
    from saas.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.exec_driver_sql(
            "update public.one_time_tokens set expires_at = now() - interval '1 minute' where token_hash = %s",
            (token_hash,),
        )
    saved = (_password_hash(app, email), _session_version(app, email))
    for resp in (client.get(link), client.form(link, {"password": NEW_PASSWORD})):
        assert resp.status_code == 410
        assert "This link has expired." in resp.get_data(as_text=True)
    assert (_password_hash(app, email), _session_version(app, email)) == saved
    assert (
        sql_value(app, "select used_at from public.one_time_tokens where token_hash = :h", h=token_hash)
        is None
    )
    assert _login(client, email, PASSWORD).status_code == 302


def test_bogus_reset_link_is_refused(app, client, factory):
    email = factory.user()
    saved = _password_hash(app, email)
    for resp in (
        client.get("/password/reset/not-a-real-token"),
        client.form("/password/reset/not-a-real-token", {"password": NEW_PASSWORD}),
    ):
        assert resp.status_code == 410
        assert "This link is not valid." in resp.get_data(as_text=True)
    assert _password_hash(app, email) == saved


def test_reset_for_unknown_email_says_the_same_and_sends_nothing(app, client, smtp):
    resp = client.form("/password/forgot", {"email": f"{unique('ghost')}@example.com"}, follow_redirects=True)
    assert "If an account exists for this address" in resp.get_data(as_text=True)
    assert run_jobs(app) == 0 and smtp.messages == []


def test_a_verify_link_is_not_a_reset_link(app, client, factory, smtp):
    slug = unique("v")
    email = f"{slug}@example.com"
    client.form(
        "/signup", {"company": "V Co", "slug": slug, "name": "Vee", "email": email, "password": PASSWORD}
    )
    run_jobs(app)
    token = link_in(smtp.to(email)[0], "/verify/").rsplit("/", 1)[1]
    assert client.get(f"/password/reset/{token}").status_code == 410


# Email verification -------------------------------------------------------------------------


def test_email_verification_link_works_once(app, make_client, smtp):
    slug = unique("v")
    email = f"{slug}@example.com"
    client = make_client()
    client.form(
        "/signup", {"company": "Verify Co", "slug": slug, "name": "Vee", "email": email, "password": PASSWORD}
    )
    assert sql_value(app, "select email_verified_at from public.users where email = :e", e=email) is None
    assert run_jobs(app) == 1
    [mail] = smtp.to(email)
    assert mail["Subject"] == "Confirm your email address"
    link = link_in(mail, "/verify/")

    other = make_client()  # opened from the mail program: no session needed
    resp = other.get(link)
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    verified = sql_value(app, "select email_verified_at from public.users where email = :e", e=email)
    assert verified is not None

    resp = other.get(link)
    assert resp.status_code == 410
    assert "This link has already been used." in resp.get_data(as_text=True)
    assert sql_value(app, "select email_verified_at from public.users where email = :e", e=email) == verified
    resp = other.get("/verify/bogus-token")
    assert resp.status_code == 410 and "This link is not valid." in resp.get_data(as_text=True)


# Invitations --------------------------------------------------------------------------------


def _invite(app, owner_client, smtp, slug: str, email: str, role: str = "sales") -> str:
    page = owner_client.get(f"/{slug}/admin/people")
    assert page.status_code == 200 and "Invite someone" in page.get_data(as_text=True)
    resp = owner_client.form(f"/{slug}/admin/people/invite", {"email": email, "role": role})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    run_jobs(app)
    [mail] = [m for m in smtp.to(email) if "invited you to" in m["Subject"]]
    return link_in(mail, "/invite/")


def _invitation_row(app, email: str) -> dict:
    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return dict(
            conn.exec_driver_sql("select * from public.invitations where email = %s", (email,))
            .mappings()
            .one()
        )


def test_invitation_flow(app, make_client, factory, smtp):
    t = factory.tenant(name="Invite Co")
    owner = make_client()
    owner.sign_in(t.owner_email)
    email = f"{unique('new')}@example.com"
    link = _invite(app, owner, smtp, t.slug, email, role="support")
    assert f"<span>{email}</span>" in owner.get(f"/{t.slug}/admin/people").get_data(as_text=True)  # pending

    newcomer = make_client()
    page = newcomer.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Join Invite Co" in html and f"Create your account for {email}" in html

    # A bad form is refused next to the field and creates nobody.
    resp = newcomer.form(link, {"name": "", "password": "short"})
    assert resp.status_code == 422
    assert field_errors(resp.get_data(as_text=True), "name") == ["This field is required."]
    assert not sql_value(app, "select count(*) from public.users where email = :e", e=email)

    resp = newcomer.form(link, {"name": "Nina New", "password": NEW_PASSWORD})
    assert resp.status_code == 302 and resp.headers["Location"] == f"/{t.slug}/"
    assert newcomer.get(f"/{t.slug}/").status_code == 200
    row = sql_value(
        app,
        "select m.role || '|' || u.name || '|' || (u.email_verified_at is not null) from public.memberships m "
        "join public.users u on u.id = m.user_id where m.tenant_id = :t and u.email = :e",
        t=t.id,
        e=email,
    )
    assert row == "support|Nina New|true"
    assert _invitation_row(app, email)["accepted_at"] is not None
    # The new account signs in with its own password.
    assert _login(make_client(), email, NEW_PASSWORD).status_code == 302

    # The link works once.
    users = sql_value(app, "select count(*) from public.users")
    for resp in (make_client().get(link), make_client().form(link, {"name": "X", "password": NEW_PASSWORD})):
        assert resp.status_code == 410
        assert "This invitation has already been used." in resp.get_data(as_text=True)
    assert sql_value(app, "select count(*) from public.users") == users


def test_invitation_for_an_existing_account(app, make_client, factory, smtp):
    t = factory.tenant(name="Home Co")
    elsewhere = factory.tenant(name="Away Co")  # already has an account, from another workspace
    owner = make_client()
    owner.sign_in(t.owner_email)
    link = _invite(app, owner, smtp, t.slug, elsewhere.owner_email, role="manager")

    guest = make_client()
    html = guest.get(link).get_data(as_text=True)
    assert "Sign in to accept" in html
    guest.sign_in(elsewhere.owner_email)
    # Signed in as someone else: refused.
    stranger = make_client()
    stranger.sign_in(t.owner_email)
    assert stranger.get(link).status_code == 403

    resp = guest.form(link)
    assert resp.status_code == 302 and resp.headers["Location"] == f"/{t.slug}/"
    assert guest.get(f"/{t.slug}/").status_code == 200
    assert guest.get(f"/{elsewhere.slug}/").status_code == 200
    assert sql_value(app, "select count(*) from public.users where email = :e", e=elsewhere.owner_email) == 1


def test_expired_invitation_is_refused(app, make_client, factory, smtp):
    t = factory.tenant()
    owner = make_client()
    owner.sign_in(t.owner_email)
    email = f"{unique('late')}@example.com"
    link = _invite(app, owner, smtp, t.slug, email)
    from saas.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.exec_driver_sql(
            "update public.invitations set expires_at = now() - interval '1 second' where email = %s",
            (email,),
        )
    late = make_client()
    for resp in (late.get(link), late.form(link, {"name": "Late", "password": NEW_PASSWORD})):
        assert resp.status_code == 410
        assert "This invitation has expired." in resp.get_data(as_text=True)
    assert not sql_value(app, "select count(*) from public.users where email = :e", e=email)
    assert _invitation_row(app, email)["accepted_at"] is None


def test_revoked_invitation_is_refused(app, make_client, factory, smtp):
    t = factory.tenant()
    owner = make_client()
    owner.sign_in(t.owner_email)
    email = f"{unique('nope')}@example.com"
    link = _invite(app, owner, smtp, t.slug, email)
    inv = _invitation_row(app, email)
    resp = owner.form(f"/{t.slug}/admin/invitations/{inv['id']}/revoke")
    assert resp.status_code == 302
    assert f"<span>{email}</span>" not in owner.get(f"/{t.slug}/admin/people").get_data(as_text=True)

    late = make_client()
    for resp in (late.get(link), late.form(link, {"name": "Nope", "password": NEW_PASSWORD})):
        assert resp.status_code == 410
        assert "This invitation is not valid." in resp.get_data(as_text=True)
    assert not sql_value(app, "select count(*) from public.users where email = :e", e=email)
    assert not sql_value(
        app, "select count(*) from public.memberships where tenant_id = :t and role = 'sales'", t=t.id
    )


def test_invite_bad_input_is_refused_next_to_the_field(app, make_client, factory, smtp):
    t = factory.tenant(roles=("owner", "sales"))
    owner = make_client()
    owner.sign_in(t.owner_email)
    for data, field, message in (
        ({"email": "nope", "role": "sales"}, "email", "Invalid email address."),
        ({"email": t.email("sales"), "role": "sales"}, "email", "already a member"),
        ({"email": "x@example.com", "role": "emperor"}, "role", "Not a valid choice."),
    ):
        resp = owner.form(f"/{t.slug}/admin/people/invite", data)
        assert resp.status_code == 422
        errors = field_errors(resp.get_data(as_text=True), field)
        assert any(message in e for e in errors), errors
    assert not sql_value(app, "select count(*) from public.invitations where tenant_id = :t", t=t.id)
    run_jobs(app)
    assert not [m for m in smtp.messages if "invited you" in m["Subject"]]
