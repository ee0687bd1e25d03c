"""``/api/docs`` without a CDN: the endpoints of the OpenAPI description as a plain page (the
Swagger UI FastAPI serves by default loads its scripts from the internet)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.console.render import page

METHODS = ("get", "post", "put", "patch", "delete")
router = APIRouter(include_in_schema=False)


@router.get("/api/docs")
def docs(request: Request):
    spec = request.app.openapi()
    return page(request, "docs.html", None, spec=spec, operations=list(operations(spec)))


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                yield {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "parameters": op.get("parameters", []),
                }
