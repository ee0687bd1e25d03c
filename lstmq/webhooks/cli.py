"""``lstmq webhooks``: the outbox's deliveries, newest first; ``replay`` sends one again."""

from __future__ import annotations

import json

import click
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lstmq.db.engine import ready_engine, session_scope
from lstmq.db.queries import find_job
from lstmq.db.schema import WebhookDelivery, as_utc, utcnow
from lstmq.errors import InputError
from lstmq.webhooks.events import PENDING

COLUMNS = ("id", "job", "event", "url", "state", "attempts", "last_status", "next_attempt")


@click.group(invoke_without_command=True)
@click.option("--job", "job_text", metavar="JOB", help="Only this job's deliveries.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="How many.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
@click.pass_context
def webhooks(ctx: click.Context, job_text: str | None, limit: int, as_json: bool) -> None:
    """Webhook deliveries: job, event, receiver, attempts, last HTTP status, next attempt."""
    if ctx.invoked_subcommand is not None:
        return
    with session_scope(ready_engine()) as session:
        rows = [_row(d) for d in deliveries(session, job_text, limit)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no webhook deliveries")
        return
    click.echo("  ".join(f"{c:<{w}}" for c, w in zip(COLUMNS, WIDTHS, strict=True)).rstrip())
    for row in rows:
        row = row | {"job": row["job"][:8], "next_attempt": row["next_attempt"] or "-"}
        cells = [str(row[c] if row[c] is not None else "-") for c in COLUMNS]
        click.echo("  ".join(f"{c:<{w}}" for c, w in zip(cells, WIDTHS, strict=True)).rstrip())


WIDTHS = (6, 8, 20, 40, 9, 8, 11, 25)


def deliveries(session: Session, job_text: str | None, limit: int) -> list[WebhookDelivery]:
    stmt = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if job_text is not None:
        stmt = stmt.where(WebhookDelivery.job_id == find_job(session, job_text).id)
    return list(session.scalars(stmt))


def _row(d: WebhookDelivery) -> dict:
    at = as_utc(d.next_attempt_at)
    return {
        "id": d.id,
        "job": d.job_id,
        "event": d.event,
        "event_id": d.event_id,
        "url": d.url,
        "state": d.state,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "next_attempt": at.isoformat(timespec="seconds") if at else None,
    }


@webhooks.command()
@click.argument("delivery_id")
def replay(delivery_id: str) -> None:
    """Send delivery DELIVERY_ID again (same event id and body), now and with fresh retries."""
    if not delivery_id.isdigit():
        raise InputError(f"a delivery id is a number (see `lstmq webhooks`), got {delivery_id!r}")
    with session_scope(ready_engine()) as session:
        again = {"state": PENDING, "attempts": 0, "next_attempt_at": utcnow(), "settled_at": None}
        stmt = update(WebhookDelivery).where(WebhookDelivery.id == int(delivery_id)).values(**again)
        if session.execute(stmt).rowcount != 1:
            raise InputError(f"no webhook delivery {delivery_id} (see `lstmq webhooks`)")
    click.echo(f"webhook delivery {delivery_id} queued again")
