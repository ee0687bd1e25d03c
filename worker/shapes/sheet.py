"""Contact sheets: a grid of a job's images, each with its caption underneath (torch-free)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import Engine, and_, select

from lstmq.db.engine import session_scope
from lstmq.db.queries import find_job
from lstmq.db.schema import Document
from lstmq.db.schema import Image as ImageRow
from lstmq.errors import InputError
from lstmq.worker.images import absolute

SCALE = 2  # 64-pixel images are shown at 128 pixels
CAPTION_LINES = 4
LINE_HEIGHT = 11
WRAP_CHARS = 22


def job_images(engine: Engine, job_id: str, limit: int) -> list[tuple[str, str]]:
    """(caption, relative path) of the job's first ``limit`` rendered documents, newest version each."""
    with session_scope(engine) as session:
        job = find_job(session, job_id)
        job_id = job.id
        if job.task != "render":
            raise InputError(f"job {job_id} is a {job.task} job; contact sheets need a render job")
        rows = session.execute(
            select(Document.id, Document.text, ImageRow.path)
            .join(ImageRow, and_(ImageRow.document_id == Document.id, ImageRow.model == job.model))
            .where(Document.job_id == job_id)
            .order_by(Document.id, ImageRow.updated_at.desc())
        )
        seen, out = set(), []
        for doc_id, text, path in rows:
            if doc_id not in seen:
                seen.add(doc_id)
                out.append((text, path))
            if len(out) == limit:
                break
    return out


def tile(image: Image.Image, caption: str, font) -> Image.Image:
    side = image.width * SCALE
    cell = Image.new("RGB", (side + 8, side + 8 + CAPTION_LINES * LINE_HEIGHT), (40, 40, 40))
    cell.paste(image.resize((side, side), Image.Resampling.NEAREST), (4, 4))
    lines = textwrap.wrap(" ".join(caption.split()), WRAP_CHARS)[:CAPTION_LINES]
    draw = ImageDraw.Draw(cell)
    for i, line in enumerate(lines):
        draw.text((4, side + 6 + i * LINE_HEIGHT), line, fill=(230, 230, 230), font=font)
    return cell


def contact_sheet(items: list[tuple[str, Image.Image]], columns: int) -> Image.Image:
    """items: (caption, image) -> one grid image."""
    if not items:
        raise InputError("nothing to show: the job has no rendered images yet")
    font = ImageFont.load_default()
    tiles = [tile(image, caption, font) for caption, image in items]
    w, h = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (w * min(columns, len(tiles)), h * rows), (20, 20, 20))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % columns) * w, (i // columns) * h))
    return sheet


def load_items(root: Path, rows: list[tuple[str, str]]) -> list[tuple[str, Image.Image]]:
    items = []
    for caption, rel in rows:
        path = absolute(root, rel)
        if path.is_file():
            with Image.open(path) as im:
                items.append((caption, im.convert("RGB")))
    return items
