"""The shapes world renders exactly as the issue specifies, and its captions say what is drawn."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lstmq.worker.shapes.captions import sample_scene, training_scenes, vocabulary
from lstmq.worker.shapes.world import COLOURS, HELD_OUT_PAIRS, Obj, box, render


def pixels(objs) -> np.ndarray:
    return np.asarray(render(objs))


def test_canvas_is_64x64_rgb_on_black():
    image = render([])
    assert image.size == (64, 64) and image.mode == "RGB"
    assert not np.asarray(image).any()


def test_box_follows_the_centre_and_side_rule():
    assert box(Obj("red", "square", "small", 0, 0)) == (9, 9, 22, 22)  # 16 - 7, side 14
    assert box(Obj("red", "square", "large", 1, 2)) == (35, 19, 60, 44)  # 48 - 13, 32 - 13


def test_large_square_fills_exactly_its_box():
    image = pixels([Obj("blue", "square", "large", 1, 1)])  # box (19, 19)-(44, 44)
    filled = (image == COLOURS["blue"]).all(axis=2)
    expected = np.zeros((64, 64), bool)
    expected[19:45, 19:45] = True
    assert (filled == expected).all()
    assert not image[~expected].any()


def test_triangle_has_its_apex_at_mid_top_and_base_on_the_bottom_row():
    image = pixels([Obj("green", "triangle", "large", 1, 1)])  # box (19, 19)-(44, 44), mid-x 31.5
    rows = image.max(axis=2) > 0
    assert not rows[18].any() and rows[19].any() and rows[19, :31].sum() == 0
    assert rows[44, 19:45].all() and not rows[45].any()
    assert tuple(image[44, 19]) == COLOURS["green"]


def test_diamond_touches_the_middle_of_each_side():
    image = pixels([Obj("purple", "diamond", "large", 1, 1)])
    fg = image.max(axis=2) > 0
    assert fg[19, 31] or fg[19, 32]  # top tip
    assert fg[31, 19] or fg[32, 19]  # left tip
    assert not fg[19, 19] and not fg[44, 44]  # corners empty


def test_circle_is_pillows_ellipse_of_the_box_with_no_outline():
    from PIL import Image, ImageDraw

    expected = Image.new("RGB", (64, 64))
    ImageDraw.Draw(expected).ellipse((3, 35, 28, 60), fill=(235, 235, 235))
    assert (pixels([Obj("white", "circle", "large", 2, 0)]) == np.asarray(expected)).all()
    assert set(map(tuple, pixels([Obj("white", "circle", "large", 2, 0)]).reshape(-1, 3))) == {
        (0, 0, 0),
        (235, 235, 235),
    }


@pytest.mark.parametrize("shape,area_ratio", [("square", 1.0), ("circle", 0.78), ("triangle", 0.5), ("diamond", 0.5)])
def test_each_shape_covers_the_expected_share_of_its_box(shape, area_ratio):
    area = (pixels([Obj("white", shape, "large", 1, 1)]).max(axis=2) > 0).sum()
    assert abs(area / 26**2 - area_ratio) < 0.06


def test_training_captions_never_name_a_held_out_pair():
    stream = training_scenes(seed=3)
    for _ in range(2000):
        scene = next(stream)
        assert not {(o.colour, o.shape) for o in scene.objects} & HELD_OUT_PAIRS
        assert set(scene.caption.split()) <= set(vocabulary())


def test_held_out_scenes_contain_a_held_out_pair():
    rng = random.Random(5)
    for n in (1, 2):
        for _ in range(100):
            scene = sample_scene(rng, n, held_out=True)
            assert {(o.colour, o.shape) for o in scene.objects} & HELD_OUT_PAIRS


def test_captions_follow_the_grammar_and_relations_place_objects():
    assert sample_scene(random.Random(0), 1).caption.startswith("a ")
    rng = random.Random(1)
    for _ in range(300):
        scene = sample_scene(rng, 2)
        a, b = scene.objects
        if "to the left of" in scene.caption:
            assert (a.col, b.col) == (0, 2) and a.row == b.row
        elif "to the right of" in scene.caption:
            assert (a.col, b.col) == (2, 0) and a.row == b.row
        elif " above " in scene.caption:
            assert (a.row, b.row) == (0, 2) and a.col == b.col
        else:
            assert (a.row, b.row) == (2, 0) and a.col == b.col


def test_one_object_captions_state_position_and_size_with_the_phrases():
    rng = random.Random(2)
    scenes = [sample_scene(rng, 1) for _ in range(400)]
    said = {s.caption.split(" ", 4)[-1] for s in scenes if s.spec.objects[0].row is not None}
    assert "at the top left" in " | ".join(said) and "in the center" in " | ".join(said)
    assert any(s.spec.objects[0].size is None for s in scenes)
    assert any(s.spec.objects[0].size == "large" and " large " in s.caption for s in scenes)
