"""Installed model artifacts: find them by name, check them, and derive their version ids.

Torch-free on purpose: producers validate model names with this module. An artifact is one
directory holding ``config.json`` (kind, labels, max tokens, architecture, metrics),
``model.safetensors`` (weights) and ``tokenizer.json`` (HF tokenizers). The directory name is
the model name. Directories on ``settings.model_search_path`` are searched in order, so a
user's model shadows a shipped one of the same name.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lstmq.errors import ArtifactError, ModelNotFound
from lstmq.settings import get_settings

ARTIFACT_FILES = ("config.json", "model.safetensors", "tokenizer.json")
MODEL_KINDS = ("classifier", "generator")
# Model names become directory names: no separators, no dot-dot, nothing exotic.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION_HEX_CHARS = 16
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024  # bytes; the format's own limit


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    kind: str
    labels: list[str] = field(hash=False)
    path: Path
    metrics: dict = field(hash=False)
    max_tokens: int


def valid_name(name: str) -> bool:
    return bool(NAME_PATTERN.match(name)) and ".." not in name


def read_config(path: Path) -> dict:
    """The artifact's config.json, checked for the keys every kind needs."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"model artifact {path} has no config.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"model artifact {path}: config.json is unreadable ({exc})") from None
    if not isinstance(config, dict) or config.get("kind") not in MODEL_KINDS:
        raise ArtifactError(f"model artifact {path}: config.json has no valid 'kind' ({'/'.join(MODEL_KINDS)})")
    if not isinstance(config.get("labels", []), list) or not isinstance(config.get("max_tokens", 0), int):
        raise ArtifactError(f"model artifact {path}: config.json has malformed 'labels' or 'max_tokens'")
    return config


def check_artifact(path: Path) -> dict:
    """Raise ArtifactError unless every file is present and structurally sound; return the config."""
    missing = [name for name in ARTIFACT_FILES if not (path / name).is_file()]
    if missing:
        raise ArtifactError(f"model artifact {path} is missing {', '.join(missing)}")
    config = read_config(path)
    _check_safetensors(path / "model.safetensors")
    try:
        json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"model artifact {path}: tokenizer.json is unreadable ({exc})") from None
    return config


def _check_safetensors(file: Path) -> None:
    """Header parses and the tensors cover the file exactly (catches truncation and garbage)."""
    size = file.stat().st_size
    try:
        with file.open("rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if not 0 < header_len <= min(_SAFETENSORS_MAX_HEADER, size - 8):
                raise ValueError("bad header length")
            header = json.loads(fh.read(header_len))
        ends = [t["data_offsets"][1] for key, t in header.items() if key != "__metadata__"]
    except (struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ArtifactError(f"model artifact {file.parent}: model.safetensors is corrupt ({exc})") from None
    if 8 + header_len + max(ends, default=0) != size:
        raise ArtifactError(f"model artifact {file.parent}: model.safetensors is truncated or padded")


def version_id(path: Path) -> str:
    """Content-derived version: hash of weights, tokenizer and architecture (not metrics)."""
    stats = tuple((path / name).stat() for name in ARTIFACT_FILES)
    signature = tuple((s.st_size, s.st_mtime_ns, s.st_ino) for s in stats)
    return _version_id(path.resolve(), signature)


@lru_cache(maxsize=256)
def _version_id(path: Path, signature: tuple) -> str:
    config = read_config(path)
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            {k: config.get(k) for k in ("kind", "labels", "max_tokens", "architecture")}, sort_keys=True
        ).encode()
    )
    for name in ("model.safetensors", "tokenizer.json"):
        with (path / name).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:VERSION_HEX_CHARS]


def load_info(path: Path) -> ModelInfo:
    config = check_artifact(path)
    return ModelInfo(
        name=path.name,
        version=version_id(path),
        kind=config["kind"],
        labels=list(config.get("labels", [])),
        path=path,
        metrics=dict(config.get("metrics", {})),
        max_tokens=int(config.get("max_tokens", 0)),
    )


def _candidates(settings) -> dict[str, Path]:
    """name -> first directory with that name on the search path (user dir before shipped)."""
    found: dict[str, Path] = {}
    for root in _search_path(settings):
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if child.is_dir() and valid_name(child.name) and (child / "config.json").exists():
                found.setdefault(child.name, child)
    return found


def _search_path(settings) -> list[Path]:
    if settings is None:
        settings = get_settings()
    return list(settings.model_search_path)


def scan_models(settings=None) -> tuple[list[ModelInfo], list[tuple[str, str]]]:
    """(usable models, [(name, why broken)]) in name order."""
    good, broken = [], []
    for name, path in sorted(_candidates(settings).items()):
        try:
            good.append(load_info(path))
        except ArtifactError as exc:
            broken.append((name, str(exc)))
    return good, broken


def installed_models(settings=None) -> list[ModelInfo]:
    return scan_models(settings)[0]


def locate_model(name: str, settings=None) -> Path:
    """The folder ``find_model`` loads, found without reading it (a worker asks before each batch)."""
    for root in _search_path(settings) if valid_name(name) else []:
        if (root / name / "config.json").exists():
            return root / name
    names = ", ".join(info.name for info in installed_models(settings)) or "(none)"
    raise ModelNotFound(f"unknown model {name!r}; installed: {names}")


def find_model(name: str, settings=None) -> ModelInfo:
    return load_info(locate_model(name, settings))
