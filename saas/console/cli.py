"""`crm platform-admin`: who may use the platform console."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("platform-admin", help="Platform operators: accounts that may use /console.")
def platform_admin_group() -> None:
    pass


@platform_admin_group.command("grant")
@click.argument("email")
@with_appcontext
def grant(email: str) -> None:
    """Make the account with EMAIL a platform operator."""
    from saas.console.services import ConsoleError, set_platform_admin

    try:
        user = set_platform_admin(email, True)
    except ConsoleError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{user.email} is a platform admin")


@platform_admin_group.command("revoke")
@click.argument("email")
@with_appcontext
def revoke(email: str) -> None:
    """Take the platform console away from the account with EMAIL."""
    from saas.console.services import ConsoleError, set_platform_admin

    try:
        user = set_platform_admin(email, False)
    except ConsoleError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{user.email} is no longer a platform admin")
