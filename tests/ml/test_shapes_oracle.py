"""The oracle reads objects back from images: exact on ground truth, tolerant of blur."""

from __future__ import annotations

import random

import numpy as np
from PIL import ImageFilter

from lstmq.worker.shapes.captions import sample_scene
from lstmq.worker.shapes.evaluation import eval_sets, evaluate, ground_truth_generator
from lstmq.worker.shapes.oracle import parse
from lstmq.worker.shapes.scoring import score
from lstmq.worker.shapes.world import Obj, render


def as_tuples(found):
    return sorted((f.colour, f.shape, f.size, f.row, f.col) for f in found)


def test_oracle_reads_every_attribute_of_ground_truth_renders():
    rng = random.Random(11)
    scenes = [sample_scene(rng, 1 + i % 2, held_out=None) for i in range(400)]
    right = sum(
        as_tuples(parse(render(s.objects))) == sorted((o.colour, o.shape, o.size, o.row, o.col) for o in s.objects)
        for s in scenes
    )
    assert right / len(scenes) >= 0.995


def test_oracle_scores_ground_truth_as_exact_on_every_eval_set():
    sets = eval_sets(120)
    specs = {s.caption: s.spec for scenes in sets.values() for s in scenes}
    report = evaluate(ground_truth_generator(specs), n=120)
    for name in ("one_object", "two_object", "held_out"):
        assert report[name]["exact"] >= 0.995, (name, report[name])
    assert report["diversity"]["position"]["ratio"] > 0.8


def test_oracle_tolerates_blur_and_noise():
    rng = random.Random(12)
    noise = np.random.default_rng(0)
    right = 0
    for i in range(100):
        scene = sample_scene(rng, 1 + i % 2, held_out=None)
        image = np.asarray(render(scene.objects).filter(ImageFilter.GaussianBlur(0.8))).astype(int)
        image = np.clip(image + noise.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        right += score(scene.spec, parse(image))
    assert right >= 97


def test_blank_image_and_wrong_images_do_not_match():
    scene = sample_scene(random.Random(3), 1, held_out=False)
    assert parse(render([])) == []
    assert not score(scene.spec, parse(render([])))
    o = scene.objects[0]
    other = "square" if o.shape != "square" else "circle"
    assert not score(scene.spec, parse(render([Obj(o.colour, other, o.size, o.row, o.col)])))
    assert not score(scene.spec, parse(render([o, Obj("white", "square", "small", (o.row + 1) % 3, 0)])))


def test_unrecognisable_blob_is_found_without_a_shape():
    image = np.zeros((64, 64, 3), np.uint8)
    image[5:60, 30:34] = (230, 40, 40)  # a long thin bar matches no template
    (found,) = parse(image)
    assert found.colour == "red" and found.shape is None
