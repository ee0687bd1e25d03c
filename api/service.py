"""The service itself: ``/healthz`` (for container healthchecks, no token) and the models it
can run (``GET /api/v1/models``)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from lstmq.api import schemas
from lstmq.api.auth import read_access
from lstmq.api.deps import CeleryDep, EngineDep
from lstmq.api.problems import problem
from lstmq.db.engine import ping
from lstmq.errors import ServiceUnavailable
from lstmq.modelstore import scan_models
from lstmq.queue import ping_broker

HEALTH_BROKER_TIMEOUT_S = 2.0
router = APIRouter(tags=["service"])
api = APIRouter(tags=["service"])
log = logging.getLogger("lstmq.api")


@router.get("/healthz", response_model=schemas.ServiceHealth, summary="Database and broker reachable")
def healthz(engine: EngineDep, app: CeleryDep):
    # Unauthenticated: the answer names no host; the server log has the reason.
    checks = {"database": lambda: ping(engine), "broker": lambda: ping_broker(app, HEALTH_BROKER_TIMEOUT_S)}
    state = {name: _check(name, check) for name, check in checks.items()}
    if "unreachable" in state.values():
        down = ", ".join(name for name, value in state.items() if value != "ok")
        return problem(503, f"{down} unreachable", "service-unavailable", checks=state)
    return {"status": "ok", "checks": state}


def _check(name: str, check) -> str:
    try:
        check()
    except ServiceUnavailable as exc:
        log.warning("healthz: %s", exc)
        return "unreachable"
    return "ok"


@api.get(
    "/models",
    dependencies=[read_access],
    response_model=schemas.ModelList,
    summary="Installed models (as `lstmq models --json`)",
)
def models() -> dict:
    good, broken = scan_models()
    rows = [
        {"name": m.name, "version": m.version, "kind": m.kind, "labels": m.labels, "metrics": m.metrics} for m in good
    ]
    return {"models": rows, "broken": [{"name": name, "error": error} for name, error in broken]}
