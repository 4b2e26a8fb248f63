"""`crm dev`: everything needed to try the CRM, in one process tree that Ctrl-C stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

from saas.config import INSTANCE


def run(port: int) -> None:
    from saas.embedded import ensure_services

    db_url, redis_url = ensure_services(INSTANCE)
    click.echo(f"database: {_redact(db_url)}\nredis:    {redis_url}")

    from saas import create_app

    app = create_app()
    with app.app_context():
        from saas.demo import create_demo
        from saas.extensions import db
        from saas.migrate import upgrade_shared, upgrade_tenants

        upgrade_shared(db.engine)
        result = upgrade_tenants(db.engine)
        click.echo(f"migrations: {len(result.upgraded)} tenants upgraded, {result.at_head} at head")
        email, password, _created = create_demo("demo")
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=redis_url)
    worker = subprocess.Popen([sys.executable, "-m", "saas.cli", "worker"], env=env)
    click.secho(f"\n  CRM: http://127.0.0.1:{port}/demo/", fg="green", bold=True)
    click.secho(f"  sign in as {email} / {password}", fg="green")
    if not os.environ.get("SMTP_URL"):
        click.echo(f"  mail is written to {INSTANCE / 'mail'} and listed at http://127.0.0.1:{port}/dev/mail")
    click.echo("  Ctrl-C stops it all; data stays in instance/.\n")
    try:
        from werkzeug.serving import run_simple

        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}@{host}"
    return url


if __name__ == "__main__":  # pragma: no cover
    run(int(os.environ.get("PORT", "5000")))
