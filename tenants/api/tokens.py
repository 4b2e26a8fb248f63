"""Personal API tokens: make (shown once), list, revoke, and find the one a request presents.

A token is "crm_" and 43 random URL-safe characters. Only its SHA-256 is kept, in
the schema of the workspace it was made in: presented under another workspace's
URL it is simply not there. Every function works on the bound tenant.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from saas.extensions import db
from tenants.api.models import ApiToken
from tenants.customers.errors import CustomerError, NotFound

PREFIX = "crm_"
SHOWN_CHARS = 12  # "crm_" and 8 characters: enough to tell one's tokens apart, useless to an attacker
MAX_PER_USER = 20
# Days a token lasts; 0 = until revoked.
LIFETIMES: dict[int, object] = {
    30: _l("30 days"),
    90: _l("90 days"),
    365: _l("1 year"),
    0: _l("No expiry"),
}
# last_used_at is written at most this often per token (a busy script is not a write per request).
TOUCH_EVERY = timedelta(minutes=1)


def now() -> datetime:
    return datetime.now(UTC)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def tokens_of(user_id: int) -> list[ApiToken]:
    """The person's tokens in the bound workspace, newest first (revoked ones too, for the record)."""
    return list(
        db.session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc()))
    )


def create(user_id: int, name: str, days: int | None = 90) -> tuple[ApiToken, str]:
    """Make a token; returns the row and the token itself, which is never shown again."""
    name = (name or "").strip()
    if not name:
        raise CustomerError(_("Give the token a name, e.g. the script that will use it."), "name")
    if len(name) > 80:
        raise CustomerError(_("The name can be at most 80 characters long."), "name")
    if days not in LIFETIMES:
        raise CustomerError(_("Choose how long the token lasts."), "days")
    live = [t for t in tokens_of(user_id) if is_live(t)]
    if len(live) >= MAX_PER_USER:
        raise CustomerError(_("At most %(n)d active tokens: revoke one first.", n=MAX_PER_USER), "name")
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id,
        name=name,
        token_hash=digest(raw),
        prefix=raw[:SHOWN_CHARS],
        expires_at=now() + timedelta(days=days) if days else None,
    )
    db.session.add(token)
    db.session.commit()  # audited by the session hook (token_hash is never written to the log)
    return token, raw


def revoke(user_id: int, token_id: int) -> ApiToken:
    """Revoke one of the person's own tokens (someone else's is not found)."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id))
    if token is None:
        raise NotFound(token_id)
    if token.revoked_at is None:
        token.revoked_at = now()
        db.session.commit()
    return token


def is_live(token: ApiToken, at: datetime | None = None) -> bool:
    at = at or now()
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > at)


def find(raw: str) -> ApiToken | None:
    """The live token of the bound workspace that `raw` is, or None."""
    if not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(raw)))
    if token is None or not is_live(token):
        return None
    return token


def touch(token: ApiToken) -> None:
    """Note the token's use (a plain UPDATE: a use is not an audited change of the token)."""
    at = now()
    if token.last_used_at is not None and at - token.last_used_at < TOUCH_EVERY:
        return
    db.session.execute(
        update(ApiToken)
        .where(ApiToken.id == token.id)
        .values(last_used_at=at)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
