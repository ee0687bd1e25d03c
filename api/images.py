"""``GET /api/v1/images/{path}``: a rendered PNG from ``LSTMQ_IMAGE_DIR``, and nothing else.

The path is resolved (symlinks followed) and must still lie inside the folder: ``..``,
absolute paths, symlinks out of the folder and NUL bytes all get 404, like a missing file.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from lstmq.api import schemas
from lstmq.api.auth import read_access
from lstmq.settings import get_settings

IMAGE_SUFFIX = ".png"
api = APIRouter(tags=["images"])


@api.get(
    "/images/{path:path}",
    dependencies=[read_access],
    response_class=FileResponse,
    responses=schemas.PNG_IMAGE,
    summary="A rendered image (path from the results)",
)
def image(path: str) -> FileResponse:
    found = inside(get_settings().images, path)
    if found is None:
        raise HTTPException(404, "no such image")
    return FileResponse(found, media_type="image/png")


def inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` when it is a PNG file within ``root`` after resolving, else None."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    root = root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or candidate.suffix.lower() != IMAGE_SUFFIX:
        return None
    return candidate if candidate.is_file() else None
