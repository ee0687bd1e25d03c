"""``lstmq db``: schema management."""

from __future__ import annotations

import click

from lstmq.db.engine import current_revision, get_engine, ping
from lstmq.db.migrate import head_revision, upgrade
from lstmq.settings import get_settings, mask_url


@click.group()
def db() -> None:
    """Database schema: upgrade, check."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to this version of lstmq."""
    engine = get_engine()
    ping(engine)
    upgrade(engine)
    click.echo(f"database {mask_url(get_settings().database)} at revision {head_revision()}")


@db.command("check")
def db_check() -> None:
    """Exit 0 when the database is reachable and current (for healthchecks)."""
    engine = get_engine()
    ping(engine)
    have, want = current_revision(engine), head_revision()
    if have != want:
        raise click.ClickException(f"schema at {have or 'nothing'}, need {want}: run `lstmq db upgrade`")
    click.echo(f"ok: revision {have}")
