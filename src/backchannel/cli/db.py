"""`backchannel db` commands: migrate the schema, show its revision."""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

from backchannel.cli.common import console, fail, run, settings_from
from backchannel.settings import mask_url_password
from backchannel.storage import migrate

app = typer.Typer(help="Database schema: upgrade, current revision.", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Migrate the database to the newest schema revision."""
    db = settings_from(ctx).database
    where = mask_url_password(db.url)
    try:
        with console.status(f"migrating {where}"):
            revision = run(migrate.upgrade(db))
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot migrate {where}: {exc}")
    console.print(f"[green]database at revision[/] [bold]{revision}[/] ({where})", highlight=False)


@app.command()
def current(ctx: typer.Context) -> None:
    """Print the database's schema revision (and whether it is the newest)."""
    db = settings_from(ctx).database
    where = mask_url_password(db.url)
    try:
        revision = run(migrate.current(db))
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot read {where}: {exc}")
    head = migrate.head_revision()
    if revision is None:
        console.print(f"not migrated (newest is {head}); run `backchannel db upgrade`")
        raise typer.Exit(1)
    status = "[green]up to date[/]" if revision == head else f"[yellow]behind {head}[/]"
    console.print(f"[bold]{revision}[/] {status} ({where})", highlight=False)
