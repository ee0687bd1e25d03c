"""``lstmq db``: schema management; ``lstmq prune``: retention."""

from __future__ import annotations

import click

from lstmq.db.engine import current_revision, get_engine, ping, ready_engine
from lstmq.db.migrate import head_revision, upgrade
from lstmq.db.retention import STATES, prune
from lstmq.durations import parse_duration
from lstmq.errors import InputError
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


@click.command("prune")
@click.option("--older-than", "older_than", metavar="AGE", help="e.g. 30d, 12h or 90m: since the job last changed.")
@click.option(
    "--state",
    default="ended",
    show_default=True,
    metavar="STATE",
    help="ended (finished or cancelled), finished, cancelled or any.",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
def prune_command(older_than, state, dry_run) -> None:
    """Delete jobs that last changed longer ago than AGE, with their documents, results, rejected
    lines, idempotency keys and image files. A job with a batch in flight is never pruned; an open
    job only with --state any."""
    if older_than is None:
        raise InputError("--older-than is required, e.g. --older-than 30d")
    age = parse_duration(older_than, "--older-than")
    if state not in STATES:
        raise InputError(f"unknown --state {state!r} (expected {', '.join(STATES)})")
    removed = prune(ready_engine(), get_settings().images, age, state=state, dry_run=dry_run)
    click.echo(removed.line(dry_run))
