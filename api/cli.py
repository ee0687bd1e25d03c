"""``lstmq serve`` (the HTTP API on uvicorn) and ``lstmq token create|list|revoke``."""

from __future__ import annotations

import ipaddress
import json

import click
import uvicorn

from lstmq.api.tokens import any_active, create_token, list_tokens, revoke_token
from lstmq.db.engine import ready_engine, session_scope
from lstmq.db.schema import PRIORITIES
from lstmq.errors import InputError, UserError

DEFAULT_HOST = "127.0.0.1"  # loopback unless asked: the API can submit and cancel jobs
DEFAULT_PORT = 8000


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=str(DEFAULT_PORT), show_default=True, metavar="PORT", help="TCP port.")
def serve(host, port) -> None:
    """The HTTP API under /api/v1 (docs at /api/docs); every request needs a token."""
    number = _port(port)
    with session_scope(ready_engine()) as session:
        tokens = any_active(session)
    if not tokens and not is_loopback(host):
        raise UserError(
            f"refusing to listen on {host} while no API token exists: run `lstmq token create NAME --scope admin` first"
        )
    click.echo(f"lstmq API on http://{host}:{number}/api/v1 (docs at /api/docs)", err=True)
    uvicorn.run("lstmq.api.app:create_app", factory=True, host=host, port=number, server_header=False, log_level="info")


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise InputError(f"--port must be a number from 1 to 65535, got {value!r}")
    return int(value)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


@click.group()
def token() -> None:
    """API tokens: create (shown once), list, revoke."""


@token.command("create")
@click.argument("name")
@click.option(
    "--scope",
    default="read",
    show_default=True,
    metavar="SCOPE",
    help="read; submit (read + submit jobs); review (read + review labels); admin (everything).",
)
@click.option("--weight", metavar="N", help="Its jobs' share of the workers against other owners' [default: 1].")
@click.option(
    "--max-priority",
    default=PRIORITIES[0],
    show_default=True,
    metavar="LEVEL",
    help="The highest priority its jobs may have (high, normal or low).",
)
def create(name, scope, weight, max_priority) -> None:
    """Make a token; it is printed once, alone on the last line of stdout, and stored only as a hash.
    Its jobs belong to owner NAME."""
    with session_scope(ready_engine()) as session:
        secret = create_token(session, name, scope, _weight(weight), max_priority)
    click.echo(f"token {name!r} ({scope}) created; it is shown only this once:", err=True)
    click.echo(secret)


def _weight(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--weight must be an integer, got {text!r}") from None


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
def list_(as_json) -> None:
    """Tokens by name and scope, with when each was last used (never the tokens themselves)."""
    with session_scope(ready_engine()) as session:
        rows = [_row(t) for t in list_tokens(session)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else f"last used {row['last_used_at'] or 'never'}"
        click.echo(f"{row['name']:24} {row['scope']:7} created {row['created_at']}  {state}")


def _row(token) -> dict:
    stamps = {key: getattr(token, key) for key in ("created_at", "last_used_at", "revoked_at")}
    return {"name": token.name, "scope": token.scope, **{k: v.isoformat() if v else None for k, v in stamps.items()}}


@token.command("revoke")
@click.argument("name")
def revoke(name) -> None:
    """Revoke a token at once (its name stays taken)."""
    with session_scope(ready_engine()) as session:
        revoke_token(session, name)
    click.echo(f"token {name!r} revoked")
