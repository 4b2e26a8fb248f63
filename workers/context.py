"""What every job runs inside: an app context, and for tenant jobs the tenant bound by id."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from saas import audit, tenancy

_app: Flask | None = None


def get_app() -> Flask:
    global _app
    from flask import current_app

    try:
        return current_app._get_current_object()  # type: ignore[attr-defined]
    except RuntimeError:
        pass
    if _app is None:
        from saas import create_app

        _app = create_app()
    return _app


@contextmanager
def job_context(tenant_id: int | None = None) -> Iterator[None]:
    """App context for a job; with tenant_id, that tenant (from the registry) is bound."""
    from saas.extensions import db
    from saas.models import Tenant

    app = get_app()
    with app.app_context():
        token = audit.set_actor(audit.Actor(email="system:job"))
        try:
            if tenant_id is None:
                yield
            else:
                tenant = db.session.get(Tenant, tenant_id)
                if tenant is None or tenant.status == "deleted":
                    raise LookupError(f"tenant {tenant_id} does not exist")
                with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
                    yield
        finally:
            db.session.remove()
            audit._actor.reset(token)
