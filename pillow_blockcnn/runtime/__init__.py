"""Models and how they run: the registry (:mod:`.registry`: manifest, sha256, in-process registration),
onnxruntime sessions (:mod:`.sessions`, :mod:`.settings`), and the adapters that put a model behind the codec's
predictor interface (:mod:`.predictor`) or restore a decoded image (:mod:`.deblocker`).

The runtime imports the byte-layout limits (:mod:`pillow_blockcnn.format`) and nothing of the codec.
"""

from __future__ import annotations

from .deblocker import HALO, deblock_array
from .int_predictor import IntegerOnnxPredictor
from .predictor import OnnxPredictor, predictor_for
from .registry import (
    TASKS,
    ModelError,
    ModelInfo,
    deblocker_for,
    default_model,
    dropped_before_release,
    model_bytes,
    model_info,
    models,
    register_model,
    registered_models,
    require_task,
    unregister_model,
)
from .sessions import clear_sessions, providers, session

__all__ = [
    "HALO",
    "TASKS",
    "ModelError",
    "IntegerOnnxPredictor",
    "ModelInfo",
    "OnnxPredictor",
    "clear_sessions",
    "deblock_array",
    "deblocker_for",
    "default_model",
    "dropped_before_release",
    "model_bytes",
    "model_info",
    "models",
    "predictor_for",
    "providers",
    "register_model",
    "registered_models",
    "require_task",
    "session",
    "unregister_model",
]
