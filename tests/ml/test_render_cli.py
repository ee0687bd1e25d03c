"""`lstmq render`, `lstmq contact-sheet` and `lstmq train generator --data`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lstmq.cli import main
from tests.support.jobs import add_job, batch_of
from tests.support.tiny_generator import TINY_NAME, make_tiny_generator


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def models(lstmq_env, tmp_path):
    make_tiny_generator(tmp_path / "models")
    lstmq_env(model_dir=str(tmp_path / "models"), image_dir=str(tmp_path / "images"))
    return tmp_path


def test_render_writes_a_64x64_png_and_names_the_version(models, capsys):
    code, out, _ = run(capsys, "render", "--model", TINY_NAME, "a red circle", "-o", str(models / "a.png"))
    assert code == 0 and TINY_NAME in out
    assert Image.open(models / "a.png").size == (64, 64)


def test_render_samples_makes_a_sheet_and_empty_captions_are_one_line_errors(models, capsys):
    code, _, _ = run(
        capsys, "render", "--model", TINY_NAME, "a cyan square", "--samples", "4", "-o", str(models / "s.png")
    )
    assert code == 0 and Image.open(models / "s.png").width > 4 * 128
    code, _, err = run(capsys, "render", "--model", TINY_NAME, "  ", "-o", str(models / "e.png"))
    assert code == 2 and err.strip() == "error: cannot render this caption: empty text"
    code, _, err = run(capsys, "render", "--model", "nope", "x", "-o", str(models / "e.png"))
    assert code == 2 and err.startswith("error: unknown model 'nope'")


def test_contact_sheet_shows_a_render_job_and_refuses_other_jobs(models, migrated_db, capsys, db_url, lstmq_env):
    from lstmq.worker.render import render_batch

    lstmq_env(database_url=db_url, model_dir=str(models / "models"), image_dir=str(models / "images"))
    texts = ["a red circle", "a blue square", "a white diamond on the left"]
    job_id, ids = add_job(migrated_db, texts, model=TINY_NAME, task="render")
    render_batch(batch_of(job_id, TINY_NAME, ids), migrated_db, device="cpu")
    code, out, _ = run(capsys, "contact-sheet", job_id, "-o", str(models / "sheet.png"), "--columns", "2")
    assert code == 0 and "3 images" in out
    assert Image.open(models / "sheet.png").width == 2 * (128 + 8)
    classify_job, _ = add_job(migrated_db, ["x"], model="news", task="classify")
    code, _, err = run(capsys, "contact-sheet", classify_job, "-o", str(models / "no.png"))
    assert code == 2 and "render job" in err


def test_train_generator_accepts_a_users_captioned_images(models, capsys):
    folder = models / "mine"
    folder.mkdir()
    lines = []
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)] * 3):
        Image.fromarray(np.full((32, 32, 3), colour, np.uint8)).save(folder / f"{i}.png")
        lines.append(json.dumps({"text": "all red" if colour[0] else "all blue", "image": f"{i}.png"}))
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run(
        capsys,
        "train",
        "generator",
        "--name",
        "mine",
        "--data",
        str(folder / "data.jsonl"),
        "--steps",
        "3",
        "--out",
        str(models / "out"),
    )
    assert code == 0, err
    config = json.loads((models / "out" / "config.json").read_text())
    assert config["kind"] == "generator" and "data.jsonl" in config["training"]["data"]
    assert (models / "out" / "MODEL_CARD.md").is_file()


def test_a_bad_dataset_line_is_one_error_with_file_and_line(models, capsys):
    data = models / "bad.jsonl"
    data.write_text('{"text": "a", "image": "missing.png"}\n')
    code, _, err = run(capsys, "train", "generator", "--name", "x", "--data", str(data), "--steps", "1")
    assert code == 2 and err.startswith(f"error: {data}:1: image") and "not found" in err
