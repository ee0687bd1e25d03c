"""The console's pages: log in and out, jobs, one job and its review, models and their cards,
schedules.

Pages need a session cookie (``lstmq.api.sessions``); without one they redirect to the login form.
Admin buttons are forms with the session's CSRF token, answered with a redirect (POST, then GET).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from lstmq.api.console import queries
from lstmq.api.console.charts import (
    AXIS_HEIGHT,
    CHART_WIDTH,
    HIST_HEIGHT,
    ROW_HEIGHT,
    TOP_MARGIN,
    histogram_bars,
    label_bars,
)
from lstmq.api.console.forms import checked_form, form_fields
from lstmq.api.console.markdown import render
from lstmq.api.console.render import HERE, page
from lstmq.api.deps import EngineDep, celery_of, engine_of
from lstmq.api.jobs import STATES, JobId, jobs_page
from lstmq.api.problems import status_of
from lstmq.api.result_pages import ResultFilter, results_page
from lstmq.api.reviews import MAX_SAMPLE
from lstmq.api.sessions import COOKIE, SESSION_S, ConsoleSession, open_session, read_session
from lstmq.api.tokens import grants
from lstmq.batching import batch_size_for
from lstmq.db.engine import session_scope
from lstmq.db.queries import get_job, job_health, job_status
from lstmq.db.schema import DOC_DONE, DOC_FAILED, DOC_PENDING
from lstmq.db.transitions import cancel_job
from lstmq.errors import LstmqError
from lstmq.modelstore import scan_models
from lstmq.producer.output import stalled
from lstmq.producer.schedules.output import run_dict, schedule_dict
from lstmq.producer.schedules.store import history, list_schedules, timing_of
from lstmq.reviews import MODES, job_version, labels_of, quality
from lstmq.sending import requeue
from lstmq.settings import get_settings

JOBS_PER_PAGE = 50
HISTORY_RUNS = 50
CARD = "MODEL_CARD.md"
NOTICES = {"cancelled": "Job cancelled: workers skip its batches.", "requeued": "Pending documents sent again."}


class LoginRequired(Exception):
    """A page was asked for without a valid session."""


class ConsoleRoute(APIRoute):
    """Errors on a console page come back as a page (problem objects are for programs)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request):
            try:
                return await handler(request)
            except (HTTPException, LstmqError, RequestValidationError) as exc:
                status, detail = _status_and_detail(exc)
                return page(request, "error.html", None, status, title=HTTPStatus(status).phrase, detail=detail)

        return route


def _status_and_detail(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, LstmqError):
        return status_of(exc), str(exc)
    return 422, "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())


router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


def console_session(request: Request) -> ConsoleSession:
    with session_scope(engine_of(request)) as session:
        found = read_session(session, request.cookies.get(COOKIE))
    if found is None:
        raise LoginRequired(request.url.path)
    return found


ConsoleDep = Annotated[ConsoleSession, Depends(console_session)]


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(LoginRequired, _to_login)


async def _to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(str(exc))}", 303)


def _local(path: str | None) -> str:
    """Where to go after logging in: a path on this server, never another site."""
    return path if path and path.startswith("/") and not path.startswith(("//", "/\\")) else "/jobs"


# --- session -----------------------------------------------------------------------------------


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/jobs", 303)


@router.get("/login")
def login_form(request: Request, next: str | None = None):
    return page(request, "login.html", None, next=_local(next))


@router.post("/login")
async def login(request: Request):
    fields = await form_fields(request)
    opened = await run_in_threadpool(_open, engine_of(request), fields.get("token", ""))
    if opened is None:
        return page(
            request, "login.html", None, 401, next=_local(fields.get("next")), error="Unknown or revoked token."
        )
    response = RedirectResponse(_local(fields.get("next")), 303)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, opened[1], SESSION_S, httponly=True, samesite="strict", secure=secure)
    return response


def _open(engine, token: str):
    with session_scope(engine) as session:
        return open_session(session, token)


@router.post("/logout")
async def logout(request: Request, console: ConsoleDep) -> RedirectResponse:
    await checked_form(request, console)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response


# --- jobs --------------------------------------------------------------------------------------


@router.get("/jobs")
def jobs(request: Request, console: ConsoleDep, engine: EngineDep, state: str = "", before: str | None = None):
    state = state if state in STATES else None
    with session_scope(engine) as session:
        found, after = jobs_page(session, JOBS_PER_PAGE, before, state)
    models, _ = scan_models()
    return page(request, "jobs.html", console, jobs=found, next=after, state=state, states=STATES, models=models)


@router.get("/jobs/{job_id}")
def job(
    request: Request,
    job_id: JobId,
    console: ConsoleDep,
    engine: EngineDep,
    label: str = "",
    status: str = "",
    after: int = 0,
    done: str = "",
):
    status = status if status in (DOC_DONE, DOC_FAILED, DOC_PENDING) else None
    where = ResultFilter(label=label or None, status=status, after=after)
    with session_scope(engine) as session:
        view = _job_view(session, job_id, where)
    chart = {"width": CHART_WIDTH, "row": ROW_HEIGHT, "hist": HIST_HEIGHT, "axis": AXIS_HEIGHT, "top": TOP_MARGIN}
    return page(request, "job.html", console, where=where, chart=chart, notice=NOTICES.get(done), **view)


def _job_view(session, job_id: str, where: ResultFilter) -> dict:
    found = get_job(session, job_id)
    classify = found.task == "classify"
    scores = queries.score_summary(session, found) if classify else queries.ScoreSummary([], [])
    rows, after = results_page(session, found, where)
    settings = get_settings()
    current = job_status(session, job_id, heartbeat_s=settings.heartbeat_s)
    health = job_health(session, current, settings.stall_after_s)
    return {
        "job": current,
        "stalled": stalled(health) if health else None,
        "labels": label_bars(scores.labels),
        "histogram": histogram_bars(scores.histogram),
        "least": queries.least_confident(session, found) if classify else [],
        "quality": quality(session, job_id) if classify else None,
        "failed": queries.failed_documents(session, found),
        "rows": rows,
        "next": after,
    }


@router.get("/jobs/{job_id}/review")
def review(request: Request, job_id: JobId, console: ConsoleDep, engine: EngineDep, mode: str = "random", n: int = 50):
    if mode not in MODES:
        raise HTTPException(422, f"unknown review mode {mode!r} (expected {' or '.join(MODES)})")
    with session_scope(engine) as session:
        current = job_status(session, job_id)
        found = job_version(session, job_id)
        labels = labels_of(session, found[1]) if found else []
    can_review = grants(console.caller.scope, "review")
    n = min(max(n, 1), MAX_SAMPLE)
    return page(request, "review.html", console, job=current, mode=mode, n=n, labels=labels, can_review=can_review)


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, job_id: JobId, console: ConsoleDep) -> RedirectResponse:
    await _admin_form(request, console)
    await run_in_threadpool(_cancel, engine_of(request), job_id)
    return RedirectResponse(f"/jobs/{quote(job_id)}?done=cancelled", 303)


def _cancel(engine, job_id: str) -> None:
    with session_scope(engine) as session:
        cancel_job(session, job_id)


@router.post("/jobs/{job_id}/requeue")
async def requeue_job(request: Request, job_id: JobId, console: ConsoleDep) -> RedirectResponse:
    await _admin_form(request, console)
    size = batch_size_for(None, get_settings().batch_size)
    await run_in_threadpool(requeue, engine_of(request), celery_of(request), job_id, size)
    return RedirectResponse(f"/jobs/{quote(job_id)}?done=requeued", 303)


async def _admin_form(request: Request, console: ConsoleSession) -> None:
    await checked_form(request, console)
    if not grants(console.caller.scope, "admin"):
        raise HTTPException(403, f"token {console.caller.name!r} has scope {console.caller.scope}; this needs admin")


# --- models and schedules ----------------------------------------------------------------------


@router.get("/models")
def models(request: Request, console: ConsoleDep):
    good, broken = scan_models()
    return page(request, "models.html", console, models=good, broken=broken)


@router.get("/models/{name}")
def model(request: Request, name: str, console: ConsoleDep):
    good, _ = scan_models()
    found = next((m for m in good if m.name == name), None)
    if found is None:
        raise HTTPException(404, f"no installed model {name!r}")
    card = found.path / CARD
    text = card.read_text(encoding="utf-8", errors="replace") if card.is_file() else None
    return page(request, "model.html", console, model=found, card=render(text) if text else None)


@router.get("/schedules")
def schedules(request: Request, console: ConsoleDep, engine: EngineDep):
    with session_scope(engine) as session:
        rows = [schedule_dict(s, last) | {"timing": timing_of(s).describe()} for s, last in list_schedules(session)]
    return page(request, "schedules.html", console, schedules=rows)


@router.get("/schedules/{name}")
def schedule(request: Request, name: str, console: ConsoleDep, engine: EngineDep):
    with session_scope(engine) as session:
        sched, runs = history(session, name, HISTORY_RUNS)
        shown = schedule_dict(sched, None) | {"timing": timing_of(sched).describe()}
        rows = [run_dict(run, docs) for run, docs in runs]
    return page(request, "schedule.html", console, schedule=shown, runs=rows)
