"""``/api/docs`` without a CDN: the endpoints of the OpenAPI description as a plain page (the
Swagger UI FastAPI serves by default loads its scripts from the internet): each one's parameters
and what it answers, with the fields of its response models (``lstmq.api.schemas``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lstmq.api.console.render import page, templates

METHODS = ("get", "post", "put", "patch", "delete")
REF = "#/components/schemas/"
DEFAULT_DESCRIPTION = "Successful Response"  # FastAPI's, for a response nobody described
MAX_DEPTH = 3  # levels of nested objects whose fields are listed (jobs[].health.recoveries)
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
                    "responses": list(answers(spec, op)),
                }


def answers(spec: dict, op: dict):
    """The operation's success responses: status, description and, per media type, the fields."""
    for status, response in op.get("responses", {}).items():
        if not status.startswith("2"):
            continue  # errors are problem objects, described once at the top of the page
        description = response.get("description", "")
        media = [
            {"type": media_type, **_shape(spec, content)} for media_type, content in response.get("content", {}).items()
        ]
        yield {
            "status": status,
            "description": "" if description == DEFAULT_DESCRIPTION else description,
            "media": media,
        }


def _shape(spec: dict, content: dict) -> dict:
    """What one media type carries: the fields of its object, of each line (``itemSchema``), or none."""
    if "itemSchema" in content:
        item = content["itemSchema"]
        return {"note": f"one {type_of(item)} per line", "fields": fields(spec, item)}
    schema = content.get("schema", {})
    if schema.get("format") == "binary":
        return {"note": "the file's bytes", "fields": []}
    if isinstance(content.get("example"), str):  # CSV: its header line
        return {"note": f"text: {content['example'].strip()}", "fields": []}
    return {"note": "" if _resolve(spec, schema).get("properties") else type_of(schema), "fields": fields(spec, schema)}


def fields(spec: dict, schema: dict, prefix: str = "", depth: int = 0) -> list[dict]:
    """The properties of an object schema, nested objects' after theirs (``jobs[].id``)."""
    found = []
    for name, prop in _resolve(spec, schema).get("properties", {}).items():
        found.append({"name": prefix + name, "type": type_of(prop), "description": prop.get("description", "")})
        inner, suffix = _not_null(prop), "."
        if inner.get("type") == "array":
            inner, suffix = _not_null(inner.get("items", {})), "[]."
        if depth + 1 < MAX_DEPTH and _resolve(spec, inner).get("properties"):
            found.extend(fields(spec, inner, f"{prefix}{name}{suffix}", depth + 1))
    return found


def type_of(schema: dict) -> str:
    """``integer``, ``string (date-time) | null``, ``array of JobSummary``, ``Health | null``."""
    options = schema.get("anyOf", [schema])
    words = [_type_word(option) for option in options if option.get("type") != "null"]
    nullable = len(words) < len(options)
    return " | ".join(words or ["any"]) + (" | null" if nullable else "")


def _type_word(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].removeprefix(REF)
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_of(schema['additionalProperties'])}"
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _not_null(schema: dict) -> dict:
    options = [option for option in schema.get("anyOf", [schema]) if option.get("type") != "null"]
    return options[0] if len(options) == 1 else {}


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].removeprefix(REF)]
    return schema
