"""onnxruntime sessions and the registry of packaged models.

This is the only module that imports onnxruntime, and it does so lazily, so
``import pillow_blockcnn`` (which every Pillow-based app pays for) stays cheap.
A model is known by a stable id listed in ``models/manifest.json`` with its
file name and sha256. Only those files are ever loaded, from inside the
package, after their hash is checked: nothing in a .bcnn file can make the
decoder read a path, a URL or arbitrary ONNX.

Sessions are built once per (model, providers, threads) and shared:
``InferenceSession.run`` is safe to call from several threads at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from . import __version__, options

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["ModelError", "ModelInfo", "clear_sessions", "default_model", "model_bytes", "model_info", "models", "providers", "session"]


class ModelError(OSError):
    """A model a file needs is missing from this installation, or its file is damaged."""


@dataclass(frozen=True)
class ModelInfo:
    """One manifest entry: what the model does, where it came from, how well it measured."""

    id: str
    task: str
    file: str
    sha256: str
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def max_quality(self) -> int:
        """The highest JPEG quality a deblocking model was measured to improve (manifest ``max_quality``,
        from ``export/quality_range.py``); above it ``deblock()`` leaves images as they are."""
        return int(self.details.get("max_quality", 100))

    def max_quality_for(self, mode: str | None) -> int:
        """:attr:`max_quality` for JPEGs of one kind: ``"colour 4:2:0"``, ``"colour 4:4:4"`` or ``"gray"``
        (manifest ``max_quality_by_mode``); kinds it was not measured on, and ``None``, get ``max_quality``."""
        by_mode = self.details.get("max_quality_by_mode", {})
        return int(by_mode[mode]) if mode in by_mode else self.max_quality


@lru_cache(maxsize=1)
def _manifest() -> dict[str, ModelInfo]:
    path = resources.files(__package__) / "models" / "manifest.json"
    entries = json.loads(path.read_text(encoding="utf-8"))["models"]
    known = {}
    for entry in entries:
        entry = dict(entry)
        info = ModelInfo(
            id=entry.pop("id"), task=entry.pop("task"), file=entry.pop("file"), sha256=entry.pop("sha256"), details=entry
        )
        known[info.id] = info
    return known


def models(task: str | None = None) -> list[ModelInfo]:
    """The packaged models, optionally only those for ``task`` ("deblock" or "predict")."""
    return [m for m in _manifest().values() if task is None or m.task == task]


@lru_cache(maxsize=1)
def _retired() -> dict[str, str]:
    """Models earlier releases shipped and this one no longer does: id -> the releases that have it."""
    path = resources.files(__package__) / "models" / "manifest.json"
    return {entry["id"]: entry["releases"] for entry in json.loads(path.read_text(encoding="utf-8")).get("retired", [])}


def model_info(model_id: str) -> ModelInfo:
    try:
        return _manifest()[model_id]
    except KeyError:
        pass
    releases = _retired().get(model_id)
    where = (
        f"pillow-blockcnn {releases} ships it: install that release to decode this file"
        if releases
        else "the file was written by a newer or modified pillow-blockcnn: install the release whose "
        "models/manifest.json lists it"
    )
    raise ModelError(f"model {model_id!r} is not part of pillow-blockcnn {__version__}; {where}")


def default_model(task: str, tables: str = "jpeg") -> ModelInfo | None:
    """The model new files use for ``task``: the last one listed that was trained for quantisation
    tables ``tables`` (manifest ``tables``, default ``["jpeg"]``), or None when none is packaged."""
    candidates = [m for m in models(task) if tables in m.details.get("tables", ["jpeg"])]
    return candidates[-1] if candidates else None


def _read_packaged(file: str) -> bytes:
    return (resources.files(__package__) / "models" / file).read_bytes()


def model_bytes(model_id: str) -> bytes:
    """The packaged ONNX file of ``model_id``, checked against the manifest's sha256 (a damaged install is an
    error, not a silently different model)."""
    info = model_info(model_id)
    data = _read_packaged(info.file)
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.sha256:
        raise ModelError(f"model file {info.file} is damaged (sha256 {digest[:12]}…, manifest {info.sha256[:12]}…)")
    return data


def providers() -> tuple[str, ...]:
    """Providers sessions are built with: the configured ones, else CUDA when onnxruntime offers it, then CPU."""
    import onnxruntime as ort

    if options.PROVIDERS is not None:
        return options.PROVIDERS
    available = ort.get_available_providers()
    return tuple(p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available)


_lock = threading.Lock()
_sessions: dict[tuple[str, tuple[str, ...], int], onnxruntime.InferenceSession] = {}


def session(model_id: str) -> onnxruntime.InferenceSession:
    """The shared session for ``model_id`` under the current provider and thread options.

    Prediction models run on the CPU provider unless providers were set
    explicitly: their rounded outputs feed a closed loop, and a GPU's
    last-bit differences would drift the decoded pixels (docs/FORMAT.md §10).
    """
    import onnxruntime as ort

    wanted = providers()
    if options.PROVIDERS is None and model_info(model_id).task == "predict":
        wanted = ("CPUExecutionProvider",)
    key = (model_id, wanted, options.THREADS)
    with _lock:
        cached = _sessions.get(key)
        if cached is not None:
            return cached
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.THREADS
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(model_bytes(model_id), sess_options=so, providers=list(wanted))
        # onnxruntime falls back to CPU with only a log line when CUDA fails to load. In automatic mode
        # that fallback is what we want; providers the user asked for by name must really run.
        missing = [p for p in wanted if p not in sess.get_providers()]
        if missing and options.PROVIDERS is not None:
            raise ModelError(f"onnxruntime could not start providers {missing} (it runs {sess.get_providers()})")
        _sessions[key] = sess
        return sess


def clear_sessions() -> None:
    """Drop cached sessions (after changing providers or threads they are rebuilt on next use)."""
    with _lock:
        _sessions.clear()
