"""What every job runs inside: an app context, and for tenant jobs the tenant bound by id.

A suspended tenant (saas.console) gets none of its own work done: job_context raises TenantSuspended
unless the job passes allow_suspended=True (platform work: backups keep its data safe, billing stays
right). A job of the tenant's own work is wrapped in @tenant_job, which ends it at once as done, so
RQ retries nothing: hold=True keeps it to be queued again on reactivation (release_held_jobs),
hold=False drops it where the periodic fan-out queues it again anyway.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Flask

from saas import audit, tenancy

log = logging.getLogger(__name__)

_app: Flask | None = None
F = TypeVar("F", bound=Callable[..., Any])


class TenantSuspended(Exception):
    """The job's tenant is suspended by a platform operator: its own work waits."""

    def __init__(self, tenant_id: int) -> None:
        super().__init__(f"tenant {tenant_id} is suspended")
        self.tenant_id = tenant_id


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


def refuse_suspended(tenant: Any, allow_suspended: bool = False) -> None:
    """TenantSuspended for a suspended tenant (a registry row), unless the job is allowed to run."""
    if tenant is not None and tenant.status == "suspended" and not allow_suspended:
        raise TenantSuspended(tenant.id)


@contextmanager
def job_context(tenant_id: int | None = None, allow_suspended: bool = False) -> Iterator[None]:
    """App context for a job; with tenant_id, that tenant (from the registry) is bound. A suspended
    tenant raises TenantSuspended unless allow_suspended (platform work on the tenant's data)."""
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
                refuse_suspended(tenant, allow_suspended)
                with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
                    yield
        finally:
            db.session.remove()
            audit._actor.reset(token)


def _held_key(tenant_id: int) -> str:
    return f"crm:held-jobs:{tenant_id}"


def tenant_job(hold: bool) -> Callable[[F], F]:
    """A job of a tenant's own work: while the tenant is suspended it ends at once, returning
    "held: ..." (kept for reactivation) or "skipped: ..." (dropped), never failing into retries."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def job(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except TenantSuspended as exc:
                if hold:
                    _hold(exc.tenant_id, f"{fn.__module__}.{fn.__qualname__}", args, kwargs)
                outcome = "held" if hold else "skipped"
                log.info("%s%s %s: %s", fn.__name__, args, outcome, exc)
                return f"{outcome}: {exc}"

        return job  # type: ignore[return-value]

    return wrap


def _hold(tenant_id: int, func: str, args: tuple, kwargs: dict) -> None:
    from rq import get_current_job

    from saas.extensions import db
    from saas.models import Tenant
    from workers.queues import redis_conn

    job = get_current_job()
    held = {
        "func": func,
        "args": list(args),
        "kwargs": kwargs,
        "queue": job.origin if job is not None else "default",
        "timeout": job.timeout if job is not None else None,
    }
    with get_app().app_context():
        redis_conn().rpush(_held_key(tenant_id), json.dumps(held))
        # Reactivated since this job looked? Its release may have run before the push: release now.
        tenant = db.session.get(Tenant, tenant_id)
        active = tenant is not None and tenant.status == "active"
        db.session.remove()
        if active:
            release_held_jobs(tenant_id)


def release_held_jobs(tenant_id: int) -> int:
    """Queue again every job held while the tenant was suspended (each once); returns how many."""
    from workers.queues import RETRY, queue, redis_conn

    conn = redis_conn()
    with conn.pipeline() as pipe:  # MULTI: take the list and empty it at once
        pipe.lrange(_held_key(tenant_id), 0, -1)
        pipe.delete(_held_key(tenant_id))
        items, _deleted = pipe.execute()
    for raw in items:
        held = json.loads(raw)
        queue(held["queue"]).enqueue(
            held["func"],
            args=tuple(held["args"]),
            kwargs=held["kwargs"],
            job_timeout=held["timeout"],
            retry=RETRY,
        )
    if items:
        log.info("tenant %s reactivated: %d held jobs queued again", tenant_id, len(items))
    return len(items)


def fan_out(job: Callable[[int], Any], queue_name: str) -> int:
    """A periodic job's body: queue `job(tenant_id)` for every active tenant; how many were queued.
    (A suspended tenant's turn comes with the first round after its reactivation.)"""
    from sqlalchemy import select

    from saas.extensions import db
    from saas.models import Tenant
    from workers.queues import enqueue

    with job_context():
        ids = list(db.session.scalars(select(Tenant.id).where(Tenant.status == "active").order_by(Tenant.id)))
    for tenant_id in ids:
        enqueue(job, tenant_id, queue_name=queue_name)
    return len(ids)
