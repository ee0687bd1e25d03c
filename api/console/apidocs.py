"""``/api/docs`` without a CDN: the endpoints of the OpenAPI description as a plain page (the
Swagger UI FastAPI serves by default loads its scripts from the internet)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lstmq.api.console.render import page, templates

METHODS = ("get", "post", "put", "patch", "delete")
router = APIRouter(include_in_schema=False)


def values(schema: dict | None) -> str:
    """What a parameter takes, from its JSON Schema: the choices, else the type and bounds."""
    options = [o for o in (schema or {}).get("anyOf", [schema or {}]) if o.get("type") != "null"]
    choices = [str(v) for o in options for v in o.get("enum", [])]
    if choices:
        return " | ".join(choices)
    first = options[0] if options else {}
    bounds = [f"{word} {first[key]}" for key, word in (("minimum", "≥"), ("maximum", "≤")) if key in first]
    return ", ".join([first.get("type", "any"), *bounds])


templates.env.filters["values"] = values


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
