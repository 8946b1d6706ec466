"""The registry of models: the packaged ones (``models/manifest.json``, each file checked against its sha256)
and those an application or a test registers in-process.

A model is known by a stable id. Only registered bytes are ever loaded:
nothing in a .bcnn file can make the decoder read a path, a URL or arbitrary
ONNX. This module knows model files and nothing of images or onnxruntime.

Models a file names play two roles (``docs/FORMAT.md`` §2, §7): a *prediction*
model is part of the exact decode, so a file naming one this installation lacks
is refused by name; a *deblocking* model is a post-filter recommendation, so a
missing one is replaced by the installation's current deblocker
(:func:`deblocker_for`), and the decoder says which it ran.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from .._version import __version__
from ..format.limits import DEFAULT_TABLES, TABLE_SETS

__all__ = [
    "TASKS",
    "ModelError",
    "ModelInfo",
    "default_model",
    "deblocker_for",
    "dropped_before_release",
    "model_bytes",
    "model_info",
    "models",
    "register_model",
    "registered_models",
    "require_task",
    "unregister_model",
]

#: What a model does: predict blocks inside the decode loop, or deblock the decoded image.
TASKS = ("predict", "deblock")


class ModelError(OSError):
    """A model a file needs is missing from this installation, its file is damaged, or it does another task."""


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry: what the model does, where its bytes are, how well it measured."""

    id: str
    task: str
    file: str
    sha256: str
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def tables(self) -> tuple[str, ...]:
        """The quantisation table sets the model was trained for (manifest ``tables``)."""
        return tuple(self.details.get("tables", ("jpeg",)))

    @property
    def restores(self) -> tuple[str, ...]:
        """What a deblocking model was trained to restore (manifest ``restores``): ``"jpeg"`` (Pillow JPEGs,
        what :func:`pillow_blockcnn.deblock` is for) and/or ``"bcnn"`` (the codec's own decodes); both when
        the manifest does not say, as for the models from before the distinction."""
        return tuple(self.details.get("restores", ("jpeg", "bcnn")))

    @property
    def max_quality(self) -> int:
        """The highest JPEG quality a deblocking model was measured to improve (manifest ``max_quality``,
        from ``export.evaluation.quality_range``); above it ``deblock()`` leaves images as they are."""
        return int(self.details.get("max_quality", 100))

    def max_quality_for(self, kind: str | None) -> int:
        """:attr:`max_quality` for JPEGs of one kind: ``"colour 4:2:0"``, ``"colour 4:4:4"`` or ``"gray"``
        (manifest ``max_quality_by_mode``); kinds it was not measured on, and ``None``, get ``max_quality``."""
        by_kind = self.details.get("max_quality_by_mode", {})
        return int(by_kind[kind]) if kind in by_kind else self.max_quality


def _manifest_json() -> dict[str, Any]:
    path = resources.files("pillow_blockcnn") / "models" / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _packaged() -> dict[str, ModelInfo]:
    known = {}
    for entry in _manifest_json()["models"]:
        entry = dict(entry)
        model_id, task, file, sha256 = (entry.pop(key) for key in ("id", "task", "file", "sha256"))
        info = ModelInfo(id=model_id, task=task, file=file, sha256=sha256, details=entry)
        known[info.id] = info
    return known


@lru_cache(maxsize=1)
def _retired() -> dict[str, dict[str, Any]]:
    """Models earlier versions shipped and this one no longer does: id -> its manifest ``retired`` entry."""
    return {entry["id"]: entry for entry in _manifest_json().get("retired", [])}


_lock = threading.Lock()
_registered: dict[str, tuple[ModelInfo, bytes]] = {}


def dropped_before_release(model_id: str) -> str | None:
    """Why ``model_id`` is no longer packaged, when an earlier pre-release shipped it (the manifest's ``retired``
    list); None for ids this package never had. Errors about a named model say it, so a user who asks for an
    old id learns it was dropped rather than mistyped."""
    retired = _retired().get(model_id)
    return None if retired is None else f"it was dropped before release ({retired.get('why', 'superseded')})"


def _known() -> dict[str, ModelInfo]:
    with _lock:
        extra = {model_id: info for model_id, (info, _) in _registered.items()}
    return {**_packaged(), **extra}


def models(task: str | None = None) -> list[ModelInfo]:
    """The available models (packaged, then registered), optionally only those for ``task``."""
    return [m for m in _known().values() if task is None or m.task == task]


def model_info(model_id: str) -> ModelInfo:
    """The entry of ``model_id``; a :class:`ModelError` that says where to get it when it is not here."""
    known = _known()
    if model_id in known:
        return known[model_id]
    where = dropped_before_release(model_id)
    if where is None:
        where = (
            "the file was written by a newer or modified pillow-blockcnn: install the release whose "
            "models/manifest.json lists it"
        )
    msg = f"model {model_id!r} is not part of pillow-blockcnn {__version__}; {where}"
    raise ModelError(msg)


def require_task(model_id: str, task: str) -> ModelInfo:
    """:func:`model_info` of a model that must do ``task``: the one error for "not a deblocking model" and
    "not a block predictor"."""
    info = model_info(model_id)
    if info.task != task:
        msg = f"model {model_id!r} is a {info.task} model, not a {task} model"
        raise ModelError(msg)
    return info


def default_model(task: str, tables: str = DEFAULT_TABLES, restores: str = "bcnn") -> ModelInfo | None:
    """The model new files use for ``task``: the last one listed (registered models after packaged ones) that
    was trained for quantisation tables ``tables`` (and, for deblocking, to restore ``restores``: ``"bcnn"``
    decodes or ``"jpeg"`` files), or None when there is none."""
    candidates = [m for m in models(task) if tables in m.tables and (task != "deblock" or restores in m.restores)]
    return candidates[-1] if candidates else None


def deblocker_for(model_id: str) -> ModelInfo:
    """The deblocking model to run for a file that recommends ``model_id``: that model when it is here,
    otherwise this installation's current default deblocker (every deblocking model takes the same input,
    ``docs/FORMAT.md`` §7). A model id that names a prediction model is an error, not a fallback."""
    known = _known()
    if model_id in known:
        return require_task(model_id, "deblock")
    fallback = default_model("deblock", DEFAULT_TABLES) or next(iter(models("deblock")), None)
    if fallback is None:
        msg = f"the file recommends deblocking with {model_id!r} and this installation has no deblocking model"
        raise ModelError(msg)
    return fallback


def _read_packaged(file: str) -> bytes:
    return (resources.files("pillow_blockcnn") / "models" / file).read_bytes()


def model_bytes(model_id: str) -> bytes:
    """The ONNX bytes of ``model_id``, checked against its sha256 (a damaged install is an error, not a
    silently different model)."""
    info = model_info(model_id)
    with _lock:
        registered = _registered.get(model_id)
    data = registered[1] if registered is not None and registered[0] is info else _read_packaged(info.file)
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.sha256:
        msg = f"model file {info.file} is damaged (sha256 {digest[:12]}…, registered {info.sha256[:12]}…)"
        raise ModelError(msg)
    return data


def register_model(
    model_id: str,
    task: str,
    data: bytes,
    *,
    tables: Sequence[str] = TABLE_SETS,
    sha256: str | None = None,
    **details: Any,
) -> ModelInfo:
    """Make ``data`` (ONNX bytes) available as ``model_id`` in this process, after the packaged models: it
    becomes ``task``'s default for ``tables`` (every table set unless told). For tests and for evaluating
    candidates before they ship.

    ``sha256`` is what the registry checks the bytes against on use (default: theirs; a test passes a wrong
    one to exercise the check). Registering an id again replaces the entry. Sessions built for the id before
    are dropped by :func:`pillow_blockcnn.runtime.clear_sessions`.
    """
    if task not in TASKS:
        msg = f"task {task!r} is unknown; use one of {TASKS}"
        raise ValueError(msg)
    digest = sha256 if sha256 is not None else hashlib.sha256(data).hexdigest()
    info = ModelInfo(model_id, task, f"{model_id}.onnx", digest, {"tables": list(tables), **details})
    with _lock:
        _registered.pop(model_id, None)  # re-registering moves the entry to the end (the newest)
        _registered[model_id] = (info, bytes(data))
    return info


def unregister_model(model_id: str) -> None:
    """Forget a model :func:`register_model` added (packaged models cannot be removed)."""
    with _lock:
        _registered.pop(model_id, None)


@contextmanager
def registered_models(models: Mapping[str, tuple[str, bytes, Sequence[str]]]) -> Iterator[list[ModelInfo]]:
    """Within the block, ``{id: (task, onnx bytes, table sets)}`` are registered; afterwards they are gone."""
    infos = [register_model(model_id, task, data, tables=tables) for model_id, (task, data, tables) in models.items()]
    try:
        yield infos
    finally:
        for model_id in models:
            unregister_model(model_id)
