"""The import job: run one import of one tenant (tenants.customers.imports.services.run).

Idempotent: an import that is done (or not queued) is left alone, and a retried job carries on after
the last batch that was committed.
"""

from __future__ import annotations

from flask_babel import force_locale
from sqlalchemy import select

from saas import audit
from workers.context import job_context, tenant_job


@tenant_job(hold=True)  # suspended: queued again on reactivation
def run_import(tenant_id: int, import_id: int) -> str:
    from saas.extensions import db
    from saas.models import Membership, User
    from saas.permissions import role_for
    from tenants.customers.imports import services
    from tenants.customers.imports.models import Import
    from tenants.customers.people import Viewer

    with job_context(tenant_id):
        imp = db.session.get(Import, import_id)
        if imp is None or imp.status not in ("queued", "running"):
            return "skipped"
        row = db.session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.tenant_id == tenant_id, Membership.user_id == imp.created_by)
        ).first()
        role = role_for(row.Membership.role) if row and row.Membership.is_active else None
        if role is None or not role.allows("customers", "create"):
            services._set(imp.id, status="failed", message="The person who started it may no longer import.")
            db.session.commit()
            return "failed"
        token = audit.set_actor(audit.Actor(user_id=row.User.id, email=row.User.email))
        try:
            viewer = Viewer(row.User.id, role.visibility or "own")
            # Error reasons in the importer's language (there is no request to choose one from).
            with force_locale(row.User.locale or "en"):
                outcome = services.run(imp, viewer, role.allows("customers", "edit"))
        finally:
            audit._actor.reset(token)
        return f"{outcome.created} created, {outcome.updated} updated, {len(outcome.errors)} errors"
