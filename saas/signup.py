"""Sign-up: validate a workspace address, then create tenant, schema, owner and membership at once."""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor

from flask_babel import gettext as _
from sqlalchemy import exists, select, text
from sqlalchemy.exc import IntegrityError

from saas import accounts, audit, i18n, tenancy
from saas.accounts import AccountError
from saas.billing.services import start_trial
from saas.extensions import db
from saas.mail import after_commit
from saas.migrate import claim_pooled_schema, create_tenant_schema, record_pooled_version
from saas.models import Membership, Tenant, User

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
SLUG_MIN, SLUG_MAX = 3, 40
# Top-level paths of the app and names people would mistake for ours.
RESERVED = {
    "about",
    "account",
    "accounts",
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "blog",
    "cdn",
    "console",
    "dashboard",
    "dev",
    "docs",
    "download",
    "help",
    "healthz",
    "home",
    "invite",
    "invitations",
    "lang",
    "login",
    "logout",
    "mail",
    "new",
    "password",
    "platform",
    "portal",
    "pricing",
    "privacy",
    "public",
    "register",
    "reset",
    "root",
    "security",
    "settings",
    "signin",
    "signout",
    "signup",
    "static",
    "status",
    "stripe",
    "support",
    "system",
    "team",
    "tenant",
    "tenants",
    "terms",
    "test",
    "verify",
    "webhooks",
    "workspace",
    "workspaces",
    "www",
}


def slug_problem(slug: str) -> str | None:
    """Why this workspace address cannot be had, or None."""
    if len(slug) < SLUG_MIN or len(slug) > SLUG_MAX:
        return _("Use %(min)d to %(max)d characters.", min=SLUG_MIN, max=SLUG_MAX)
    if not SLUG_RE.match(slug):
        return _("Use lowercase letters a-z, digits and dashes; start and end with a letter or digit.")
    if "--" in slug:
        return _("Do not use two dashes in a row.")
    if slug in RESERVED:
        return _("This address is reserved.")
    if db.session.scalar(select(exists().where(Tenant.slug == slug))):
        return _("This address is taken.")
    return None


def provision(name: str, slug: str, owner: User) -> Tenant:
    """Create the registry row, the schema at head and the owner's membership in the caller's transaction."""
    # A schema made ahead of time by the pool job when there is one; else built here, same result.
    pooled = claim_pooled_schema(db.session.connection())
    if pooled is not None:
        tenant_id = pooled[0]
    else:
        tenant_id = db.session.execute(
            text("select nextval(pg_get_serial_sequence('public.tenants', 'id'))")
        ).scalar_one()
    tenant = Tenant(id=tenant_id, slug=slug, name=name, schema_name=f"t_{tenant_id}")
    db.session.add(tenant)
    db.session.flush()
    if pooled is None:
        create_tenant_schema(db.session.connection(), tenant.id, tenant.schema_name)
    else:
        record_pooled_version(db.session.connection(), tenant.id)
    after_commit(_refill_pool)
    db.session.add(Membership(tenant_id=tenant.id, user_id=owner.id, role="owner"))
    start_trial(tenant.id)  # billing: 14 days free, one row, no call to Stripe
    db.session.flush()
    with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
        audit.record("workspace_created", "tenant", tenant.id, summary=name)
    return tenant


def _refill_pool() -> None:
    from flask import current_app

    from workers.maintenance import refill_schema_pool
    from workers.queues import enqueue

    if current_app.config["SCHEMA_POOL_SIZE"] > 0:
        enqueue(refill_schema_pool, queue_name="low")


_hasher_pool: ThreadPoolExecutor | None = None


def _hash_in_background(password: str) -> Future[str]:
    """argon2 releases the GIL, so hashing overlaps the database work of provisioning."""
    global _hasher_pool
    if _hasher_pool is None:  # made on first use, so a forking server makes it in each worker
        _hasher_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="signup-hash")
    return _hasher_pool.submit(accounts.hash_password, password)


def signup(company: str, slug: str, name: str, email: str, password: str, user: User | None = None) -> Tenant:
    """All or nothing: any failure leaves no registry row, no schema and no user behind.

    With `user` (someone already signed in), the new workspace is theirs and no account is made.
    """
    slug = slug.strip().lower()
    company = company.strip()
    problem = slug_problem(slug)
    if problem:
        raise AccountError(problem, "slug")
    if not company:
        raise AccountError(_("Enter your company's name."), "company")
    hashing: Future[str] | None = None
    try:
        if user is None:
            email = accounts.normalize_email(email)
            if accounts.user_by_email(email) is not None:
                raise AccountError(
                    _("An account with this email exists. Sign in, then create a workspace."), "email"
                )
            problem = accounts.password_problem(password, email)
            if problem:
                raise AccountError(problem, "password")
            # The password hash (argon2, most of a sign-up's time) is computed in another thread while
            # the database makes the workspace; the user row gets it before the commit.
            hashing = _hash_in_background(password)
            user = User(email=email, name=name.strip(), password_hash="", locale=i18n.request_locale())
            db.session.add(user)
            db.session.flush()
            accounts.send_verification(user)
        tenant = provision(company, slug, user)
        if hashing is not None:
            user.password_hash = hashing.result()
        user.last_tenant_id = tenant.id
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        # Two people racing for the same address: the loser gets the same answer as a taken one.
        raise AccountError(_("This address is taken."), "slug") from exc
    except BaseException:
        db.session.rollback()
        raise
    return tenant
