"""`crm dev`: everything needed to try the CRM, in one process tree that Ctrl-C stops.

Embedded PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set), migrations, the demo
workspace, an RQ worker with its scheduler in a child process, and the web server in this one.
Ctrl-C (or SIGTERM) stops the worker, then the web server, then the embedded servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

from saas.config import INSTANCE


def run(port: int, host: str = "127.0.0.1") -> None:
    # Ctrl-C works even when started from something that ignores SIGINT (a background job);
    # SIGTERM (a process manager, `kill`) cleans up like Ctrl-C: the embedded servers stop at exit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    worker: subprocess.Popen | None = None
    try:
        from saas.embedded import ensure_services

        db_url, redis_url = ensure_services(INSTANCE)
        click.echo(f"database: {_redact(db_url)}\nredis:    {redis_url}")

        from saas import create_app
        from saas.cli import link_context

        app = create_app()
        with app.app_context():
            from saas.demo import create_demo
            from saas.extensions import db
            from saas.migrate import upgrade_shared, upgrade_tenants

            upgrade_shared(db.engine)
            result = upgrade_tenants(db.engine)
            click.echo(f"migrations: {len(result.upgraded)} tenants upgraded, {result.at_head} at head")
            with link_context(app, f"http://{host}:{port}"):
                email, password, created = create_demo("demo")
            db.session.remove()
        # The worker inherits DATABASE_URL / REDIS_URL (now pointing at the embedded servers, if any).
        worker = subprocess.Popen([sys.executable, "-m", "saas.cli", "worker"], preexec_fn=_die_with_parent)
        click.secho(f"\n  CRM: http://{host}:{port}/demo/", fg="green", bold=True)
        click.secho(
            f"  sign in as {email} / {password}"
            + ("" if created else " (demo workspace from an earlier run)"),
            fg="green",
        )
        if not app.config.get("SMTP_URL"):
            click.echo(
                f"  mail is written to {app.config['MAIL_DIR']} and listed at http://{host}:{port}/dev/mail"
            )
        click.echo("  Ctrl-C stops it all; data stays in instance/.\n")

        from werkzeug.serving import run_simple

        run_simple(host, port, app, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if worker is not None:
            _stop(worker)
        click.echo("stopped.")
    # The embedded PostgreSQL and Redis stop in their atexit handlers (saas.embedded).


def _die_with_parent() -> None:
    """In the worker (before exec): get SIGTERM if this process dies, even by SIGKILL (Linux)."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        # Ctrl-C reached the worker too (same process group); SIGTERM covers `kill <pid>` of this one.
        worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}@{host}"
    return url


if __name__ == "__main__":  # pragma: no cover
    run(int(os.environ.get("PORT", "5000")))
