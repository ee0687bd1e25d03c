"""Loaded models, one per (name, device) in a process, loaded again when the artifact changes.

``lstmq train classifier --name mine`` replaces an artifact under a running worker, which must
then use the new weights. Each lookup re-derives the installed artifact's version
(``modelstore.version_id``: a few stat calls, the content is hashed again only when the files
changed); a new version replaces the loaded model. While an artifact is missing or unreadable
(e.g. between the two renames of its replacement) the loaded model keeps serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from lstmq.errors import LstmqError
from lstmq.modelstore import ModelInfo, find_model, locate_model, version_id

Model = TypeVar("Model")  # a loaded model with a ``version`` attribute


class ModelCache:
    def __init__(self) -> None:
        self._models: dict[tuple[str, str], object] = {}
        # Threads of one worker share its models: one of them loads, the others wait for it.
        self._loading = threading.Lock()

    def get(self, name: str, device: str, load: Callable[[ModelInfo], Model]) -> Model:
        """The loaded model unless another version is installed now; else ``load(find_model(name))``."""
        model = self._models.get((name, device))
        if model is not None and installed_version(name) in (None, model.version):
            return model
        with self._loading:
            model = self._models.get((name, device))  # another thread may have loaded it meanwhile
            if model is None or installed_version(name) not in (None, model.version):
                model = self._models[name, device] = load(find_model(name))
            return model

    def clear(self) -> None:
        self._models.clear()


def installed_version(name: str) -> str | None:
    """The version of the artifact ``name`` finds now; None while there is none that reads."""
    try:
        return version_id(locate_model(name))
    except (LstmqError, OSError):
        return None
