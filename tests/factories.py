"""Test factories: tenants with people in every role, signed-in clients, and a worker to run jobs."""

from __future__ import annotations

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
