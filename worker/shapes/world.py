"""The shapes world: an exact Pillow renderer and the caption language that describes it.

Ground truth for the ``shapes`` text-to-image model (cf. alignDRAW's captioned digits): every
caption comes with the objects it names, so a generated image can be scored exactly.
Torch-free. Canvas 64x64 RGB on black; objects sit on a 3x3 grid and never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

CANVAS = 64
BACKGROUND = (0, 0, 0)
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "orange": (245, 130, 30),
    "yellow": (240, 220, 40),
    "green": (40, 180, 70),
    "cyan": (40, 210, 220),
    "blue": (40, 90, 230),
    "purple": (150, 60, 210),
    "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle", "diamond")
SIZES: dict[str, int] = {"small": 14, "large": 26}  # side in pixels
GRID = (16, 32, 48)  # centre coordinate of row/column 0, 1, 2
POSITION_PHRASES: dict[tuple[int, int], str] = {  # (row, column) -> phrase
    (0, 0): "at the top left",
    (0, 1): "at the top",
    (0, 2): "at the top right",
    (1, 0): "on the left",
    (1, 1): "in the center",
    (1, 2): "on the right",
    (2, 0): "at the bottom left",
    (2, 1): "at the bottom",
    (2, 2): "at the bottom right",
}
RELATIONS = ("to the left of", "to the right of", "above", "below")
# Never in a training caption; the model must still draw them (compositional generalisation).
HELD_OUT_PAIRS = frozenset(
    {
        ("red", "triangle"),
        ("orange", "square"),
        ("yellow", "diamond"),
        ("green", "circle"),
        ("cyan", "triangle"),
        ("blue", "square"),
        ("purple", "diamond"),
        ("white", "circle"),
    }
)


@dataclass(frozen=True)
class Obj:
    """One drawn object: every attribute fixed."""

    colour: str
    shape: str
    size: str
    row: int
    col: int


def box(obj: Obj) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive, of the object's bounding square."""
    side = SIZES[obj.size]
    x0, y0 = GRID[obj.col] - side // 2, GRID[obj.row] - side // 2
    return x0, y0, x0 + side - 1, y0 + side - 1


def draw_object(draw: ImageDraw.ImageDraw, obj: Obj) -> None:
    x0, y0, x1, y1 = box(obj)
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    fill = COLOURS[obj.colour]
    if obj.shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([(mx, y0), (x1, y1), (x0, y1)], fill=fill)
    elif obj.shape == "diamond":
        draw.polygon([(mx, y0), (x1, my), (mx, y1), (x0, my)], fill=fill)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def render(objects: list[Obj] | tuple[Obj, ...]) -> Image.Image:
    """The exact ground-truth image of ``objects``."""
    image = Image.new("RGB", (CANVAS, CANVAS), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        draw_object(draw, obj)
    return image


def pair_allowed(colour: str, shape: str, held_out: bool | None) -> bool:
    """held_out=False: training pairs only; True: held-out pairs only; None: any."""
    if held_out is None:
        return True
    return ((colour, shape) in HELD_OUT_PAIRS) == held_out


def all_pairs(held_out: bool | None) -> list[tuple[str, str]]:
    return [(c, s) for c in COLOURS for s in SHAPES if pair_allowed(c, s, held_out)]
