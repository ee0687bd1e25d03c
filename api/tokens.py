"""API tokens: made once, stored only as a salted hash, checked in constant time.

A token reads ``lstmq_<id>_<secret>``. The id finds the row and is not secret; the secret is
256 random bits, kept as HMAC-SHA256(salt, secret). A slow hash (scrypt) is for guessable
passwords; a random 256-bit secret cannot be guessed, and every request checks one.
Callers own the session (one transaction per command or request).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from lstmq.db.schema import PRIORITIES, ApiToken, utcnow
from lstmq.dispatch.control import check_priority, set_weight
from lstmq.dispatch.order import rank
from lstmq.errors import InputError, PermissionDenied, UserError
from lstmq.modelstore import valid_name

SCOPES = ("read", "submit", "review", "admin")
# What each scope may do. Not a line: a reviewer labels documents without submitting work, and a
# submitter submits without judging labels; both read, and admin does everything.
GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "submit": frozenset({"read", "submit"}),
    "review": frozenset({"read", "review"}),
    "admin": frozenset(SCOPES),
}
TOKEN_PREFIX = "lstmq"
ID_BYTES = 6  # 12 hex characters
SECRET_BYTES = 32
SALT_BYTES = 16
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is written at most this often per token
TOKEN_PATTERN = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{{2 * ID_BYTES}}})_([A-Za-z0-9_-]{{20,100}})$")


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the token's id, name and scope, and the highest priority it may submit at."""

    token_id: str
    name: str
    scope: str
    max_priority: str = PRIORITIES[0]

    def check_priority(self, priority: str) -> None:
        """Refuse a priority above the token's maximum (``PermissionDenied``: 403)."""
        if rank(check_priority(priority)) < rank(self.max_priority):
            raise PermissionDenied(f"token {self.name!r} may submit at priority {self.max_priority} or lower")


def grants(have: str, need: str) -> bool:
    """Whether a token of scope ``have`` may do what needs ``need`` (``GRANTS``)."""
    return need in GRANTS.get(have, frozenset())


def create_token(
    session: Session, name: str, scope: str, weight: int | None = None, max_priority: str = PRIORITIES[0]
) -> str:
    """Store a new token's hash; returns the token, which exists nowhere else afterwards. Its jobs
    belong to owner ``name``, whose ``weight`` (in the fair share) is set when given."""
    if scope not in SCOPES:
        raise InputError(f"unknown scope {scope!r} (expected {', '.join(SCOPES)})")
    check_priority(max_priority)
    if not valid_name(name):
        raise InputError(f"token name {name!r}: 1-64 letters, digits, '.', '_' or '-'")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise UserError(f"a token named {name!r} exists (names stay taken after revoke)")
    token_id, secret, salt = (
        secrets.token_hex(ID_BYTES),
        secrets.token_urlsafe(SECRET_BYTES),
        secrets.token_hex(SALT_BYTES),
    )
    session.add(
        ApiToken(
            id=token_id, name=name, scope=scope, salt=salt, secret_hash=_hash(salt, secret), max_priority=max_priority
        )
    )
    if weight is not None:
        set_weight(session, name, weight)
    return f"{TOKEN_PREFIX}_{token_id}_{secret}"


def _hash(salt: str, secret: str) -> str:
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.name)))


def revoke_token(session: Session, name: str) -> ApiToken:
    token = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise UserError(f"no token named {name!r} (see `lstmq token list`)")
    token.revoked_at = token.revoked_at or utcnow()
    return token


def any_active(session: Session) -> bool:
    return session.scalar(select(ApiToken.id).where(ApiToken.revoked_at.is_(None)).limit(1)) is not None


def authenticate(session: Session, token: str) -> Caller | None:
    """The caller a token belongs to, or None for a malformed, unknown or revoked token."""
    match = TOKEN_PATTERN.match(token)
    row = session.get(ApiToken, match.group(1)) if match else None
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(_hash(row.salt, match.group(2)), row.secret_hash):
        return None
    _touch(row)
    return Caller(token_id=row.id, name=row.name, scope=row.scope, max_priority=row.max_priority)


def _touch(row: ApiToken) -> None:
    now = datetime.now(UTC)
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)  # SQLite hands back naive datetimes
    if last is None or now - last > TOUCH_EVERY:
        row.last_used_at = now
