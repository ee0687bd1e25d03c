"""Model artifacts on disk, for every model family: one folder holding config.json (kind,
labels, max tokens, architecture, metrics), model.safetensors and tokenizer.json.

Loading never unpickles: weights come from safetensors, the architecture from JSON, the
vocabulary from the tokenizer's JSON. Writing is atomic: the folder is built beside its
destination, then renamed into place, so a reader (a running worker) finds a whole artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from lstmq.errors import ArtifactError
from lstmq.modelstore import check_artifact
from lstmq.worker.ml.weights import loaded_state, round_to_dtype, stored_state

FORMAT_VERSION = 1


def write_artifact(
    path: Path,
    kind: str,
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    max_tokens: int,
    labels: Sequence[str] = (),
    extra: dict | None = None,
    dtype: str = "float16",
    leave_out: tuple[str, ...] = (),
) -> Path:
    """Round ``model`` to ``dtype`` in place (it then predicts as it will load) and write its
    artifact into ``path``, replacing any previous one; ``leave_out``: state-dict prefixes not stored."""
    round_to_dtype(model, dtype)
    config = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "labels": list(labels),
        "max_tokens": max_tokens,
        "architecture": model.cfg.to_dict(),
        "weights_dtype": dtype,
        **(extra or {}),
    }
    state = {k: v for k, v in stored_state(model, dtype).items() if not k.startswith(leave_out)}
    _swap_in(_staged(path, state, tokenizer, config), path)
    return path


def _staged(path: Path, state: dict, tokenizer: Tokenizer, config: dict) -> Path:
    """The whole artifact in a hidden sibling folder (same filesystem, so renaming it is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save(str(tmp / "tokenizer.json"))
        _write_config(tmp, config)
    except BaseException:
        shutil.rmtree(tmp)
        raise
    tmp.chmod(0o755)  # mkdtemp makes 0700 folders: artifacts ship as package data, readable by all
    for file in tmp.iterdir():
        file.chmod(0o644)
    return tmp


def _swap_in(tmp: Path, path: Path) -> None:
    """Move a previous artifact aside, rename ``tmp`` into place, then delete the old one: a
    reader sees the old or the new artifact (or, between the two renames, none), never a mix."""
    old = tmp.with_name(tmp.name + ".old")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _write_config(folder: Path, config: dict) -> None:
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def update_config(path: Path, **changes) -> None:
    """Merge keys into config.json (e.g. metrics after evaluation); weights are untouched. The
    file is replaced by a rename: a reader (a worker checking the version before each batch)
    finds the old file or the new one, never half of one; a failed write leaves the old one."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".json", dir=path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps({**config, **changes}, indent=2) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; artifacts are read by all (``_staged``)
        os.replace(tmp, path / "config.json")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_config(path: Path, kind: str) -> dict:
    """The checked config of a sound artifact of ``kind``. Raises ArtifactError."""
    config = check_artifact(path)
    if config["kind"] != kind:
        raise ArtifactError(f"model {path.name!r} is a {config['kind']}, not a {kind}")
    return config


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The stored weights, back as float32 tensors."""
    return loaded_state(load_file(str(path / "model.safetensors")))


def read_tokenizer(path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(path / "tokenizer.json"))


@contextmanager
def loading(path: Path) -> Iterator[None]:
    """Whatever fails while a model is built from ``path``, the artifact is unusable: one line."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"model artifact {path} cannot be loaded: {first[:200]}") from None
