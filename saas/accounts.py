"""People and their credentials: passwords, one-time links, sign-in with rate limits."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g
from flask_babel import gettext as _
from sqlalchemy import bindparam, func, select

from saas import audit, ratelimit, tenancy
from saas.extensions import db
from saas.models import Membership, OneTimeToken, Tenant, User

# argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane): strong, and about
# 30 ms instead of the library default's 200 ms, which dominated sign-up and sign-in time.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Hash checked when the email is unknown, so a miss takes as long as a hit. Made on first use: an
# argon2 hash at import would add ~0.3 s of CPU to every process start (each `crm` command, worker).
_DUMMY_HASH: str | None = None
COMMON_PASSWORDS = {
    "password",
    "password1",
    "password123",
    "1234567890",
    "12345678910",
    "qwertyuiop",
    "iloveyou123",
}


class AccountError(ValueError):
    """A refusal to show the person as it is (already translated)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash("not-a-real-password")
    return _DUMMY_HASH


def check_password(user: User | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _dummy_hash(), password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, email: str = "") -> str | None:
    if len(password) < 10:
        return _("Use at least 10 characters.")
    if len(password) > 200:
        return _("Use at most 200 characters.")
    if password.lower() in COMMON_PASSWORDS or (email and password.lower() == email.lower()):
        return _("This password is too easy to guess.")
    return None


def normalize_email(email: str) -> str:
    return email.strip().lower()


def user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalize_email(email)))


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random token and the hash we store of it."""
    raw = secrets.token_urlsafe(32)
    return raw, _digest(raw)


def issue_token(user: User, purpose: str, hours: float) -> str:
    raw, digest = new_token()
    db.session.add(
        OneTimeToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=digest,
            expires_at=datetime.now(UTC) + timedelta(hours=hours),
        )
    )
    return raw


def consume_token(raw: str, purpose: str) -> User:
    """Mark a link used and return its user, or refuse with why (unknown, used, expired)."""
    row = db.session.scalar(
        select(OneTimeToken)
        .where(OneTimeToken.token_hash == _digest(raw), OneTimeToken.purpose == purpose)
        .with_for_update()
    )
    if row is None:
        raise AccountError(_("This link is not valid. Ask for a new one."))
    if row.used_at is not None:
        raise AccountError(_("This link has already been used. Ask for a new one."))
    if row.expires_at <= datetime.now(UTC):
        raise AccountError(_("This link has expired. Ask for a new one."))
    row.used_at = datetime.now(UTC)
    return db.session.get(User, row.user_id)


def peek_token(raw: str, purpose: str) -> str | None:
    """Why a link cannot be used, without using it (None when it is fine)."""
    row = db.session.scalar(
        select(OneTimeToken).where(OneTimeToken.token_hash == _digest(raw), OneTimeToken.purpose == purpose)
    )
    if row is None:
        return _("This link is not valid. Ask for a new one.")
    if row.used_at is not None:
        return _("This link has already been used. Ask for a new one.")
    if row.expires_at <= datetime.now(UTC):
        return _("This link has expired. Ask for a new one.")
    return None


def send_verification(user: User) -> None:
    from flask import url_for

    from saas.mail import queue_email

    raw = issue_token(user, "verify", current_app.config["VERIFY_TOKEN_HOURS"])
    link = url_for("auth.verify_email", token=raw, _external=True)
    queue_email(user.email, _("Confirm your email address"), "verify", user=user, link=link)


def verify_email(raw: str) -> User:
    user = consume_token(raw, "verify")
    user.email_verified_at = user.email_verified_at or datetime.now(UTC)
    db.session.commit()
    return user


@dataclass
class SignInResult:
    user: User | None
    error: str | None = None
    limited: bool = False


def _each_tenant_of(user: User) -> list[Tenant]:
    return list(
        db.session.scalars(
            select(Tenant)
            .join(Membership, Membership.tenant_id == Tenant.id)
            .where(Membership.user_id == user.id)
        )
    )


def record_for_user(user: User, action: str, summary: str = "") -> None:
    """Write a sign-in event into the audit log of every workspace the person belongs to."""
    actor = audit.current_actor()
    token = audit.set_actor(audit.Actor(user.id, user.email, actor.ip, actor.request_id))
    try:
        for tenant in _each_tenant_of(user):
            with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
                audit.record(action, "user", user.id, summary=summary)
    finally:
        audit._actor.reset(token)


def authenticate(email: str, password: str, ip: str) -> SignInResult:
    cfg = current_app.config
    email = normalize_email(email)
    ip_limit, ip_window = cfg["LOGIN_LIMIT_PER_IP"]
    acct_limit, acct_window = cfg["LOGIN_LIMIT_PER_ACCOUNT"]
    too_many = _("Too many attempts. Wait a few minutes and try again.")
    if not ratelimit.hit("login-ip", ip, ip_limit, ip_window):
        return SignInResult(None, too_many, limited=True)
    if ratelimit.blocked("login-acct", email, acct_limit):
        return SignInResult(None, too_many, limited=True)
    user = user_by_email(email)
    if not check_password(user, password):
        ratelimit.hit("login-acct", email, acct_limit, acct_window)
        if user is not None:
            record_for_user(user, "signin_failed", "Wrong password")  # shown translated (saas.labels)
            db.session.commit()
        return SignInResult(None, _("Email or password is not right."))
    ratelimit.reset("login-acct", email)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    record_for_user(user, "signin")
    db.session.commit()
    return SignInResult(user)


def request_password_reset(email: str, ip: str) -> None:
    """Send a reset link if the account exists; say the same thing either way."""
    from flask import url_for

    from saas.mail import queue_email

    cfg = current_app.config
    email = normalize_email(email)
    if not ratelimit.hit("reset-ip", ip, *cfg["RESET_LIMIT_PER_IP"]):
        raise AccountError(_("Too many requests. Wait an hour and try again."))
    if not ratelimit.hit("reset-acct", email, *cfg["RESET_LIMIT_PER_ACCOUNT"]):
        raise AccountError(_("Too many requests. Wait an hour and try again."))
    user = user_by_email(email)
    if user is None:
        return
    raw = issue_token(user, "reset", cfg["RESET_TOKEN_HOURS"])
    link = url_for("auth.reset_password", token=raw, _external=True)
    queue_email(user.email, _("Reset your password"), "reset", user=user, link=link)
    record_for_user(user, "password_reset_requested")
    db.session.commit()


def reset_password(raw: str, password: str) -> User:
    problem = password_problem(password)
    if problem:
        raise AccountError(problem, "password")
    user = consume_token(raw, "reset")
    problem = password_problem(password, user.email)
    if problem:
        db.session.rollback()
        raise AccountError(problem, "password")
    user.password_hash = hash_password(password)
    user.session_version += 1  # every other session of this person ends
    # Reaching the inbox proves the address too.
    user.email_verified_at = user.email_verified_at or datetime.now(UTC)
    record_for_user(user, "password_reset")
    db.session.commit()
    return user


# Every signed-in request loads its user: the statement is built once, and run with the request's id.
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


def _session_key(session_id: str | None) -> tuple[int, int] | None:
    """(user id, session version) of Flask-Login's "<id>:<session_version>", None when malformed."""
    try:
        user_id, version = (int(p) for p in (session_id or "").split(":", 1))
    except ValueError:
        return None
    return user_id, version


def session_user_id(session_id: str | None) -> int | None:
    """The user id a session names (not yet checked: load_user does that)."""
    key = _session_key(session_id)
    return key[0] if key is not None else None


def prefetch_user(user_id: int, user: User | None) -> None:
    """The user row of this request, read together with its tenant (saas.workspace): load_user takes
    it from here instead of asking the database again. Only for this request and this very id."""
    g.prefetched_user = (user_id, user)


def load_user(session_id: str) -> User | None:
    """Flask-Login loader: "<id>:<session_version>"; an old version means a signed-out session."""
    key = _session_key(session_id)
    if key is None:
        return None
    user_id, version = key
    prefetched = g.get("prefetched_user")
    if prefetched is not None and prefetched[0] == user_id:
        user = prefetched[1]
    else:
        user = db.session.scalar(_USER_BY_ID, {"user_id": user_id})
    if user is None or user.session_version != version:
        return None
    return user


def workspaces_of(user: User) -> list[tuple[Tenant, Membership]]:
    rows = db.session.execute(
        select(Tenant, Membership)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user.id, Membership.is_active.is_(True), Tenant.status != "deleted")
        .order_by(Tenant.name)
    )
    return [(t, m) for t, m in rows]
