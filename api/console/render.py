"""Templates (Jinja2, autoescaped: every text, label and error is escaped) and the headers every
console page carries: nothing but this server's own scripts, styles and images may load."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from starlette.templating import Jinja2Templates

from lstmq.api.console.markdown import inline
from lstmq.api.sessions import ConsoleSession

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
templates = Jinja2Templates(directory=HERE / "templates")


def _rate(value: float | None) -> str:
    return f"{value:.1f}" if value else "-"


def _eta(seconds: float | None) -> str:
    return str(timedelta(seconds=round(seconds))) if seconds is not None else "-"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _stamp(iso: str | None) -> str:
    """An ISO timestamp from a ``--json`` dict, shown like ``_when``."""
    return _when(datetime.fromisoformat(iso)) if iso else "-"


def _md(text: str | None) -> Markup:
    return Markup(inline(text or ""))


templates.env.filters.update(rate=_rate, eta=_eta, when=_when, stamp=_stamp, md=_md)


def page(request: Request, name: str, console: ConsoleSession | None, status: int = 200, **context) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, {"console": console, **context}, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response
