"""Artifacts of both model families are written by one writer: same files, same modes, atomic."""

from __future__ import annotations

import stat

from tests.support.tiny_classifier import make_tiny_classifier
from tests.support.tiny_generator import make_tiny_generator


def modes(folder) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.iterdir()]}


def test_a_generator_artifact_gets_the_same_modes_as_a_classifiers(tmp_path):
    classifier = modes(make_tiny_classifier(tmp_path / "clf"))
    generator = modes(make_tiny_generator(tmp_path, "gen"))

    assert classifier["clf"] == generator["gen"] == 0o755  # readable: artifacts ship as package data
    assert {classifier[f] for f in classifier if f != "clf"} == {generator[f] for f in generator if f != "gen"}


def test_rewriting_an_artifact_replaces_it_and_leaves_no_temporary_folders(tmp_path):
    make_tiny_classifier(tmp_path / "clf", seed=0)
    first = (tmp_path / "clf" / "model.safetensors").read_bytes()
    make_tiny_classifier(tmp_path / "clf", seed=1)

    assert (tmp_path / "clf" / "model.safetensors").read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == ["clf"]
