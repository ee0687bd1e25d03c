"""Console sessions: a login with an API token gives a signed cookie, never the token itself.

The cookie reads ``<token id>.<expires>.<nonce>.<mac>``; the MAC is keyed by the token's stored
hash, so no server secret is needed, any API process can check it, and revoking the token ends
its sessions at once. The CSRF token of a session is derived the same way (nothing stored).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from lstmq.api.tokens import Caller, authenticate
from lstmq.db.schema import ApiToken

COOKIE = "lstmq_session"
SESSION_S = 12 * 3600
CSRF_FIELD = "csrf"  # the hidden form field
CSRF_HEADER = "X-CSRF-Token"  # the same value, sent by the console's scripts


@dataclass(frozen=True)
class ConsoleSession:
    caller: Caller
    csrf: str


def open_session(session: Session, token: str) -> tuple[ConsoleSession, str] | None:
    """A session and its cookie value for a valid token, else None."""
    caller = authenticate(session, token.strip())
    if caller is None:
        return None
    row = session.get(ApiToken, caller.token_id)
    expires, nonce = int(time.time()) + SESSION_S, secrets.token_urlsafe(16)
    payload = f"{caller.token_id}.{expires}.{nonce}"
    return ConsoleSession(caller, _mac(row, f"csrf|{nonce}")), f"{payload}.{_mac(row, payload)}"


def read_session(session: Session, cookie: str | None) -> ConsoleSession | None:
    """The session a cookie stands for, or None (malformed, expired, forged or revoked)."""
    parts = (cookie or "").split(".")
    if len(parts) != 4 or not parts[1].isdigit() or int(parts[1]) < time.time():
        return None
    token_id, _, nonce, mac = parts
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(_mac(row, ".".join(parts[:3])), mac):
        return None
    return ConsoleSession(Caller(row.id, row.name, row.scope, row.max_priority), _mac(row, f"csrf|{nonce}"))


def csrf_ok(console: ConsoleSession, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(console.csrf, sent)


def _mac(row: ApiToken, message: str) -> str:
    return hmac.new(bytes.fromhex(row.secret_hash), message.encode(), hashlib.sha256).hexdigest()
