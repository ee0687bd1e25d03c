"""lstmq.modelstore: finding, checking and versioning artifacts, without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from safetensors.numpy import save_file

from lstmq.errors import ArtifactError, ModelNotFound
from lstmq.modelstore import find_model, installed_models, scan_models, version_id


def make_artifact(root: Path, name: str, weights: float = 1.0, kind: str = "classifier", **config) -> Path:
    path = root / name
    path.mkdir(parents=True)
    save_file({"w": np.full((4, 3), weights, dtype=np.float16)}, str(path / "model.safetensors"))
    (path / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"[PAD]": 0}}}))
    body = {"kind": kind, "labels": ["a", "b"], "max_tokens": 32, "architecture": {"hidden": 3}, **config}
    (path / "config.json").write_text(json.dumps(body))
    return path


@pytest.fixture
def roots(tmp_path):
    user, shipped = tmp_path / "user", tmp_path / "shipped"
    user.mkdir(), shipped.mkdir()
    return SimpleNamespace(user=user, shipped=shipped, settings=SimpleNamespace(model_search_path=[user, shipped]))


def test_installed_models_lists_both_roots_with_metadata(roots):
    make_artifact(roots.shipped, "news", metrics={"dev": {"accuracy": 0.9}})
    make_artifact(roots.user, "mine", kind="generator", labels=[])
    models = {m.name: m for m in installed_models(roots.settings)}
    assert sorted(models) == ["mine", "news"]
    assert models["news"].labels == ["a", "b"] and models["news"].max_tokens == 32
    assert models["news"].metrics == {"dev": {"accuracy": 0.9}}
    assert models["mine"].kind == "generator"
    assert len(models["news"].version) == 16


def test_user_model_shadows_shipped_model_of_same_name(roots):
    make_artifact(roots.shipped, "spam")
    user_spam = make_artifact(roots.user, "spam", weights=2.0)
    assert find_model("spam", roots.settings).path == user_spam
    assert [m.path for m in installed_models(roots.settings)] == [user_spam]


def test_unknown_model_error_is_one_line_listing_installed(roots):
    for name in ("spam", "news", "sentiment"):
        make_artifact(roots.shipped, name)
    with pytest.raises(ModelNotFound) as err:
        find_model("nope", roots.settings)
    assert str(err.value) == "unknown model 'nope'; installed: news, sentiment, spam"


@pytest.mark.parametrize("name", ["../shipped/news", "/etc", "..", "a/b", ""])
def test_path_like_names_are_unknown_models(roots, name):
    make_artifact(roots.shipped, "news")
    with pytest.raises(ModelNotFound):
        find_model(name, roots.settings)


def test_version_depends_on_weights_not_on_metrics(roots):
    a = make_artifact(roots.user, "a", metrics={"dev": {"accuracy": 0.5}})
    b = make_artifact(roots.shipped, "b", metrics={"dev": {"accuracy": 0.9}})
    c = make_artifact(roots.shipped, "c", weights=3.0)
    assert version_id(a) == version_id(b) != version_id(c)


def test_missing_file_is_an_artifact_error_naming_it(roots):
    path = make_artifact(roots.user, "spam")
    (path / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="missing tokenizer.json"):
        find_model("spam", roots.settings)


@pytest.mark.parametrize("damage", ["truncate_weights", "garbage_weights", "bad_config", "no_kind", "bad_tokenizer"])
def test_corrupt_artifact_is_one_line_artifact_error(roots, damage):
    path = make_artifact(roots.user, "spam")
    weights = path / "model.safetensors"
    if damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[:-5])
    elif damage == "garbage_weights":
        weights.write_bytes(b"\xff" * 64)
    elif damage == "bad_config":
        (path / "config.json").write_text("{not json")
    elif damage == "no_kind":
        (path / "config.json").write_text(json.dumps({"labels": []}))
    else:
        (path / "tokenizer.json").write_text("")
    with pytest.raises(ArtifactError) as err:
        find_model("spam", roots.settings)
    assert "\n" not in str(err.value) and "spam" in str(err.value)


def test_broken_models_are_reported_not_listed(roots):
    make_artifact(roots.shipped, "news")
    (make_artifact(roots.user, "spam") / "config.json").write_text("[]")
    good, broken = scan_models(roots.settings)
    assert [m.name for m in good] == ["news"]
    assert [name for name, _ in broken] == ["spam"]


def test_modelstore_does_not_import_torch():
    code = "import sys, lstmq.modelstore; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
