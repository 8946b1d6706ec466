"""Block prediction by a registered float ONNX model, behind the codec's ``BlockPredictor`` interface.

No shipped model is float any more (``pred-1`` was dropped before release: floats round differently across
machines, docs/FORMAT.md §10); this adapter runs float models registered in-process, for studies and for
candidates, and :func:`predictor_for` picks the integer adapter for integer models.

The adapter satisfies :class:`pillow_blockcnn.codec.blocks.BlockPredictor` structurally, without importing
the codec: the runtime sits beside the codec, not above it.

Model interface (``export.networks.predictor`` builds it):

* input ``context``: ``[N, 24, 24]`` float32, the causal window / 255 (zeros where the decoder has nothing);
* input ``info``: ``[N, 6]`` float32: the four neighbour-availability flags (above-left, above, above-right,
  left), quality / 100, and 1.0 for a chroma plane (0.0 for Y or gray);
* output ``block``: ``[N, 8, 8]`` float32 prediction in pixel units.

The adapter rounds to the nearest integer and clamps to 0..255. Rounding is what
makes prediction reproducible across machines, thread counts and providers in
all but the rare case of a value within float error of .5 (``docs/FORMAT.md``
bounds what such a flip does).
"""

from __future__ import annotations

import numpy as np

from .int_predictor import IntegerOnnxPredictor
from .registry import require_task
from .sessions import session

__all__ = ["OnnxPredictor", "predictor_for"]


class OnnxPredictor:
    """Predicts blocks with the packaged model ``model_id`` for files of quality ``quality``."""

    def __init__(self, model_id: str, quality: int) -> None:
        require_task(model_id, "predict")
        self.model_ids = (model_id,)
        self.quality = quality
        self._session = session(model_id)

    def raw(self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray) -> np.ndarray:
        """The model's unrounded output ``[N, 8, 8]`` float32 (for analysis; the codec uses :meth:`predict`)."""
        n = contexts.shape[0]
        info = np.empty((n, 6), dtype=np.float32)
        info[:, :4] = available
        info[:, 4] = self.quality / 100.0
        info[:, 5] = np.asarray(plane) > 0
        feeds = {"context": contexts.astype(np.float32) / 255.0, "info": info}
        (block,) = self._session.run(["block"], feeds)
        return block

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray) -> np.ndarray:
        return np.clip(np.rint(self.raw(contexts, available, plane)), 0, 255).astype(np.uint8)


def predictor_for(model_id: str, quality: int) -> OnnxPredictor | IntegerOnnxPredictor:
    """The adapter for ``model_id``'s interface: integer arithmetic (manifest ``"arithmetic": "integer"``) or
    the float interface above. Raises :class:`~.registry.ModelError` for a model that is missing or not a
    predictor."""
    info = require_task(model_id, "predict")
    if info.details.get("arithmetic") == "integer":
        return IntegerOnnxPredictor(model_id, quality)
    return OnnxPredictor(model_id, quality)

