"""``Authorization: Bearer <token>`` on every route but ``/healthz`` and the docs.

The console's session cookie (``lstmq.api.sessions``) is accepted too, so its pages' scripts call the
same routes; a request that changes something with the cookie must also carry the session's
CSRF token in ``X-CSRF-Token``. No or unknown credentials: 401 with ``WWW-Authenticate:
Bearer``; a token without the scope: 403. The dependency is a plain function, so FastAPI runs
its database lookup in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from lstmq.api.deps import engine_of
from lstmq.api.sessions import COOKIE, CSRF_HEADER, csrf_ok, read_session
from lstmq.api.tokens import Caller, authenticate, grants
from lstmq.db.engine import session_scope

bearer = HTTPBearer(auto_error=False, description="A token from `lstmq token create NAME --scope SCOPE`.")
CHALLENGE = {"WWW-Authenticate": "Bearer"}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
MISSING = "send `Authorization: Bearer <token>` (see `lstmq token create`)"
UNKNOWN = "unknown or revoked token"


def require(scope: str) -> Callable[..., Caller]:
    """A dependency that admits tokens (or console sessions) whose scope includes ``scope``."""

    def caller(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Caller:
        with session_scope(engine_of(request)) as session:
            if credentials is not None:
                found = authenticate(session, credentials.credentials)
            else:
                found = _from_cookie(session, request)
        if found is None:
            raise HTTPException(401, UNKNOWN if credentials else MISSING, CHALLENGE)
        if not grants(found.scope, scope):
            raise HTTPException(403, f"token {found.name!r} has scope {found.scope}; this needs {scope}")
        return found

    return caller


def _from_cookie(session, request: Request) -> Caller | None:
    console = read_session(session, request.cookies.get(COOKIE))
    if console is None:
        return None
    if request.method not in SAFE_METHODS and not csrf_ok(console, request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"a console request that changes something needs the {CSRF_HEADER} header")
    return console.caller


SubmitCaller = Annotated[Caller, Depends(require("submit"))]
# For routes that need the check but not the caller: dependencies=[read_access].
read_access = Depends(require("read"))
admin_access = Depends(require("admin"))
