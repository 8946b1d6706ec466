"""Block prediction by an integer-arithmetic ONNX model (manifest ``"arithmetic": "integer"``).

Such a model computes only with integers and powers of two, every sum below 2^24, so onnxruntime's float32
gives the same integers on every machine, thread count and optimisation level (``export.networks.int_predictor``
defines the arithmetic and trains it; ``tests/runtime/test_int_predictor_adapter.py`` checks this adapter
against a plain-integer reference). The graph takes the integer inputs this adapter prepares and returns
integer offsets:

* ``base``: the rounded mean of the 8 pixels above the block (context row 7, columns 8..15) when the block
  above exists and of the 8 to its left (rows 8..15, column 7) when that exists, ``(sum + n/2) >> log2(n)``
  for n = 8 or 16; 128 when neither exists;
* input ``x`` ``[N, 262]``: the above-left, above, above-right and left blocks (64 pixels each, row major)
  minus ``base``, 0 where a neighbour does not exist; then 127 x each availability flag, the quality, and
  127 x the chroma flag;
* output ``delta`` ``[N, 64]``; the prediction is ``clip(base + delta, 0, 255)``.

``pred-2``, the default predictor, is such a model (docs/FORMAT.md §5.2).
"""

from __future__ import annotations

import numpy as np

from .registry import require_task
from .sessions import session

__all__ = ["IntegerOnnxPredictor", "integer_inputs"]

_ACT_MAX = 127


def integer_inputs(
    contexts: np.ndarray, available: np.ndarray, quality: int, chroma: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(``x`` ``[N, 262]`` int64, ``base`` ``[N]`` int64) for uint8 contexts ``[N, 24, 24]`` and bool
    availability ``[N, 4]``, as defined above."""
    pixels = contexts.astype(np.int64)
    avail = np.asarray(available, dtype=np.int64)
    top, left = avail[:, 1], avail[:, 3]
    border = pixels[:, 7, 8:16].sum(axis=1) * top + pixels[:, 8:16, 7].sum(axis=1) * left
    count = top + left  # border pixels / 8
    base = np.full(len(pixels), 128, dtype=np.int64)
    one, two = count == 1, count == 2
    base[one] = (border[one] + 4) >> 3
    base[two] = (border[two] + 8) >> 4
    x = np.empty((len(pixels), 262), dtype=np.int64)
    for i, (rows, cols) in enumerate(((0, 0), (0, 8), (0, 16), (8, 0))):
        block = pixels[:, rows : rows + 8, cols : cols + 8].reshape(-1, 64)
        x[:, 64 * i : 64 * (i + 1)] = (block - base[:, None]) * avail[:, i : i + 1]
    x[:, 256:260] = avail * _ACT_MAX
    x[:, 260] = quality
    x[:, 261] = _ACT_MAX if chroma else 0
    return x, base


class IntegerOnnxPredictor:
    """Predicts blocks with the integer model ``model_id`` for files of quality ``quality``."""

    def __init__(self, model_id: str, quality: int) -> None:
        require_task(model_id, "predict")
        self.model_ids = (model_id,)
        self.quality = quality
        self._session = session(model_id)

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane: int) -> np.ndarray:
        x, base = integer_inputs(contexts, available, self.quality, plane > 0)
        (delta,) = self._session.run(["delta"], {"x": x.astype(np.float32)})
        return np.clip(base[:, None] + delta.astype(np.int64), 0, 255).astype(np.uint8).reshape(-1, 8, 8)
