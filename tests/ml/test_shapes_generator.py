"""The generator: a tiny training run improves its oracle score; artifacts round-trip exactly;
awkward captions get flags or a per-caption error, never an exception."""

from __future__ import annotations

import pytest
import torch

from lstmq.worker.ml.generator.artifact import load_generator_artifact, save_generator
from lstmq.worker.ml.generator.data import WorldPairs
from lstmq.worker.ml.generator.inference import ImageGenerator, from_artifact, redraw_seed
from lstmq.worker.ml.generator.train import TrainOptions, train
from lstmq.worker.shapes.evaluation import eval_sets, score_set

NEWS = (
    "Wall St. Bears Claw Back Into the Black (Reuters) Reuters - Short-sellers, Wall Street's "
    "dwindling band of ultra-cynics, are seeing green again as the market rallies on oil prices. "
) * 3


def tiny(steps: int, seed: int = 0):
    torch.set_num_threads(1)
    opts = TrainOptions(steps=steps, batch_size=32, seed=seed, lr=3e-3, eval_every=10**9)
    return train(WorldPairs(seed), opts, arch={"hidden_dim": 32, "decoder_dim": 128})


def mean_attribute_accuracy(model, tokenizer) -> float:
    generator = ImageGenerator("t", "0", model, tokenizer, 32, torch.device("cpu"))
    rates = score_set(generator.images, eval_sets(40)["one_object"], seed=1)["attributes"]
    return sum(rates.values()) / len(rates)


@pytest.fixture(scope="module")
def trained():
    return tiny(250)


@pytest.mark.slow
def test_a_short_training_run_improves_the_oracle_score(trained):
    before = mean_attribute_accuracy(*tiny(0))
    after = mean_attribute_accuracy(*trained)
    assert after > before + 0.2, (before, after)


def test_training_is_reproducible_from_its_seed():
    a, _ = tiny(3, seed=5)
    b, _ = tiny(3, seed=5)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_an_artifact_draws_exactly_what_the_trained_model_drew(trained, tmp_path):
    model, tokenizer = trained
    path = save_generator(tmp_path / "shapes-test", model, tokenizer, 32)  # rounds weights to fp16 in place
    before = ImageGenerator("t", "0", model, tokenizer, 32, torch.device("cpu")).images(["a red circle"] * 4, 3)
    after = from_artifact(path).images(["a red circle"] * 4, 3)
    assert all((x == y).all() for x, y in zip(before, after, strict=True))
    loaded, _, config = load_generator_artifact(path)
    assert config["kind"] == "generator" and "architecture" in config
    assert not any(
        k.startswith("posterior.")
        for k in loaded.state_dict()
        if k in __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(path / "model.safetensors"))
    )


def test_images_depend_on_the_seed_not_on_the_batch_they_are_drawn_in(trained):
    model, tokenizer = trained
    generator = ImageGenerator("t", "0", model, tokenizer, 32, torch.device("cpu"))
    alone = generator.render(["a small blue circle"], [42])[0].image
    mixed = generator.render(["a large red square on the left", "a small blue circle", "x"], [1, 42, 7])[1].image
    assert (alone == mixed).all()
    assert alone.shape == (64, 64, 3) and alone.dtype.name == "uint8"


def test_awkward_captions_get_flags_or_an_error_and_never_break_the_batch(trained):
    model, tokenizer = trained
    generator = ImageGenerator("t", "0", model, tokenizer, 32, torch.device("cpu"))
    texts = ["a red circle", "", "   ", "a glittering red circle", NEWS, "circle " * 500]
    out = generator.render(texts, list(range(len(texts))))
    assert out[0].flags == [] and out[0].image is not None
    assert out[1].error == out[2].error == "empty text" and out[1].image is None
    assert out[3].flags == ["unknown_words"] and out[3].image is not None
    assert set(out[4].flags) == {"truncated", "unknown_words", "out_of_domain"} and out[4].image is not None
    assert out[5].flags == ["truncated"] and out[5].image is not None


def test_empty_drawings_are_redrawn_with_seeded_noise_and_stay_deterministic(trained):
    model, tokenizer = trained
    generator = ImageGenerator("t", "0", model, tokenizer, 32, torch.device("cpu"))
    texts, seeds = ["a red circle", "a small blue square at the top left"], [42, 7]
    try:
        # Every drawing counts as empty: each is redrawn twice, ending on its 2nd redraw's noise.
        model.cfg.redraws, model.cfg.min_cover_pixels = 2, 64 * 64 + 1
        redrawn = [r.image for r in generator.render(texts, seeds)]
        assert all(
            (a == b).all() for a, b in zip(redrawn, [r.image for r in generator.render(texts, seeds)], strict=True)
        )
        alone = generator.render(texts[1:], seeds[1:])[0].image
        assert (alone == redrawn[1]).all()  # still independent of the batch it is drawn in
        model.cfg.redraws, model.cfg.min_cover_pixels = 0, 0
        last_noise = [r.image for r in generator.render(texts, [redraw_seed(s, 2) for s in seeds])]
        first_noise = [r.image for r in generator.render(texts, seeds)]
        assert all((a == b).all() for a, b in zip(redrawn, last_noise, strict=True))
        assert any((a != b).any() for a, b in zip(redrawn, first_noise, strict=True))
        # A threshold of 0 pixels redraws nothing, whatever the number of redraws allowed.
        model.cfg.redraws = 3
        assert all((a == r.image).all() for a, r in zip(first_noise, generator.render(texts, seeds), strict=True))
    finally:
        model.cfg.redraws, model.cfg.min_cover_pixels = 0, 0
