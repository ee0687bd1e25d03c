"""``Authorization: Bearer <token>`` on every route but ``/healthz`` and the docs.

No or unknown token: 401 with ``WWW-Authenticate: Bearer``; a token without the scope: 403.
The dependency is a plain function, so FastAPI runs its database lookup in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from api.deps import engine_of
from api.tokens import Caller, authenticate, grants
from lstmq.db.engine import session_scope

bearer = HTTPBearer(auto_error=False, description="A token from `lstmq token create NAME --scope SCOPE`.")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require(scope: str) -> Callable[..., Caller]:
    """A dependency that admits tokens whose scope includes ``scope``."""

    def caller(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Caller:
        if credentials is None:
            raise HTTPException(401, "send `Authorization: Bearer <token>` (see `lstmq token create`)", CHALLENGE)
        with session_scope(engine_of(request)) as session:
            found = authenticate(session, credentials.credentials)
        if found is None:
            raise HTTPException(401, "unknown or revoked token", CHALLENGE)
        if not grants(found.scope, scope):
            raise HTTPException(403, f"token {found.name!r} has scope {found.scope}; this needs {scope}")
        return found

    return caller


SubmitCaller = Annotated[Caller, Depends(require("submit"))]
# For routes that need the check but not the caller: dependencies=[read_access].
read_access = Depends(require("read"))
admin_access = Depends(require("admin"))
