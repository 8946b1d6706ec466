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

A luma-guided model (manifest ``"guide": "luma"``, docs/FORMAT.md §5.3) takes ``x`` ``[N, 582]``: those 262,
then the block's guide window (the above-left, above, above-right, left and co-located blocks of the decoded
luma at chroma resolution) minus ``gbase = (sum of the co-located block + 32) >> 6``, 0 for a neighbour not
available, all 0 for a luma or gray plane.

``pred-2`` is an unguided integer model (docs/FORMAT.md §5.2).
"""

from __future__ import annotations

import copy

import numpy as np

from . import settings
from .machine import usable_cores
from .registry import require_task
from .sessions import providers, session

__all__ = ["IntegerOnnxPredictor", "integer_inputs", "neighbour_inputs"]

_ACT_MAX = 127
_INPUTS = 262
_GUIDE_INPUTS = 5 * 64

#: Where the 256 pixel inputs sit in the flattened 24x24 window: the above-left, above and above-right
#: blocks (the window's top 8 rows, block by block), then the left block, each row major.
_PIXELS = np.concatenate(
    [(24 * np.arange(8)[:, None] + np.arange(c, c + 8)).ravel() for c in (0, 8, 16)]
    + [(24 * np.arange(8, 16)[:, None] + np.arange(8)).ravel()]
)
#: In those 256: the above block's last row and the left block's last column, which ``base`` averages.
_ABOVE_ROW = np.arange(64 + 56, 128)
_LEFT_COLUMN = np.arange(192 + 7, 256, 8)
#: ``base`` by the number of border rows it averages (0, 1 or 2 of 8 pixels): ``(sum + n/2) >> log2 n``,
#: and 128 when there is none (the sum is then 0).
_ROUNDING = np.array([0, 4, 8])
_SHIFT = np.array([0, 3, 4])
_NONE = np.array([128, 0, 0])


def _guide_inputs(out: np.ndarray, guide: np.ndarray, available: np.ndarray, chroma: np.ndarray) -> None:
    """Fill ``out`` ``[N, 320]`` with the guide inputs of guide windows ``[N, 16, 24]`` (module docstring)."""
    n = len(guide)
    own = guide[:, 8:16, 8:16]
    gbase = (own.sum(axis=(1, 2), dtype=np.int64) + 32) >> 6
    blocks = out.reshape(n, 5, 8, 8)
    blocks[:, :3] = guide[:, :8].reshape(n, 8, 3, 8).transpose(0, 2, 1, 3)
    blocks[:, 3] = guide[:, 8:16, :8]
    blocks[:, 4] = own
    out -= gbase[:, None].astype(np.float32)
    mask = np.concatenate([available, np.ones((n, 1), dtype=bool)], axis=1) & np.asarray(chroma)[..., None]
    if not mask.all():
        out.reshape(n, 5, 64)[:] *= mask.astype(np.float32)[:, :, None]


def integer_inputs(
    contexts: np.ndarray,
    available: np.ndarray,
    quality: int,
    chroma: bool | np.ndarray,
    guide: np.ndarray | None = None,
    guided: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(``x`` ``[N, 262]`` float32 holding integers, ``base`` ``[N]`` int64) for uint8 contexts ``[N, 24, 24]``
    and bool availability ``[N, 4]``, as defined above; ``chroma`` is one flag or one per block. ``guided``:
    ``x`` is ``[N, 582]``, with the inputs of ``guide`` (``[N, 16, 24]`` uint8; ``None``: all zero)."""
    return neighbour_inputs(contexts.reshape(len(contexts), -1)[:, _PIXELS], available, quality, chroma, guide, guided)


def neighbour_inputs(
    neighbours: np.ndarray,
    available: np.ndarray,
    quality: int,
    chroma: bool | np.ndarray,
    guide: np.ndarray | None = None,
    guided: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`integer_inputs` from the 256 neighbour pixels ``[N, 256]`` uint8 (above-left, above,
    above-right, left, each row major). The pixels of a neighbour ``available`` excludes may hold anything:
    ``base`` reads the above row and the left column only where those blocks are available, and the
    excluded blocks' inputs are set to 0.

    Every value is an integer of magnitude <= 255, so float32 holds it exactly and the arithmetic below is
    the integer arithmetic of docs/FORMAT.md §5.2 (it is built in float32 because that is what the graph
    takes: one conversion fewer per front)."""
    n = len(neighbours)
    avail = np.asarray(available, dtype=bool)
    top, left = avail[:, 1], avail[:, 3]
    # slices, not index arrays: the above block's last row is 8 contiguous bytes, the left block's last
    # column every 8th (the same pixels as _ABOVE_ROW and _LEFT_COLUMN)
    border = neighbours[:, _ABOVE_ROW[0] : _ABOVE_ROW[-1] + 1].sum(axis=1, dtype=np.int64) * top
    border += neighbours[:, _LEFT_COLUMN[0] :: 8].sum(axis=1, dtype=np.int64) * left
    count = top.astype(np.int64) + left  # border pixels / 8
    base = ((border + _ROUNDING[count]) >> _SHIFT[count]) + _NONE[count]
    x = np.empty((n, _INPUTS + (_GUIDE_INPUTS if guided else 0)), dtype=np.float32)
    pixels = x[:, :256]
    np.subtract(neighbours, base.astype(np.float32)[:, None], out=pixels)  # in float32: exact, cheaper than int64
    excluded = ~avail
    if excluded.any():
        pixels.reshape(n, 4, 64)[excluded] = 0  # whatever they held (a few blocks of a front: index, not multiply)
    np.multiply(avail, np.float32(_ACT_MAX), out=x[:, 256:260])
    x[:, 260] = quality
    np.multiply(chroma, np.float32(_ACT_MAX), out=x[:, 261])
    if guided:
        if guide is None:
            x[:, _INPUTS:] = 0
        else:
            _guide_inputs(x[:, _INPUTS:], guide, avail, np.broadcast_to(np.asarray(chroma, dtype=bool), (n,)))
    return x, base


class IntegerOnnxPredictor:
    """Predicts blocks with the integer model ``model_id`` for files of quality ``quality``."""

    def __init__(self, model_id: str, quality: int) -> None:
        info = require_task(model_id, "predict")
        self.model_ids = (model_id,)
        self.quality = quality
        #: Luma-guided (manifest ``"guide": "luma"``): the codec passes chroma blocks' guide windows.
        self.guided = info.details.get("guide") == "luma"
        #: Threads a decoder may share its tiles among, each calling :meth:`concurrent`'s predictor: one per
        #: core (or per configured thread) on the CPU; on CUDA one call at a time, on the whole device.
        self.concurrency = 1 if "CUDAExecutionProvider" in providers() else settings.THREADS or usable_cores()
        self._session = session(model_id)

    def concurrent(self) -> IntegerOnnxPredictor:
        """This predictor for :attr:`concurrency` threads calling at once: each call runs on one core (a
        front is a few dozen blocks, too small a matrix product to keep two cores busy in one call; two
        calls at once do). The predictions are the same integers: the arithmetic is exact."""
        twin = copy.copy(self)
        twin._session = session(self.model_ids[0], threads=1)
        return twin

    def predict(
        self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray, guide: np.ndarray | None = None
    ) -> np.ndarray:
        return self.predict_neighbours(contexts.reshape(len(contexts), -1)[:, _PIXELS], available, plane, guide)

    def predict_neighbours(
        self, neighbours: np.ndarray, available: np.ndarray, plane: int | np.ndarray, guide: np.ndarray | None = None
    ) -> np.ndarray:
        """:meth:`predict` from the 256 neighbour pixels of each block (``codec.blocks.BlockPredictor``)."""
        chroma = np.asarray(plane) > 0
        x, base = neighbour_inputs(neighbours, available, self.quality, chroma, guide, self.guided)
        (delta,) = self._session.run(["delta"], {"x": x})
        # delta holds integers and base is 0..255: their float32 sum is the integer sum wherever it is below
        # 2^24, and a sum beyond that clips to 0 or 255 whichever way float32 rounds it
        out = delta + base.astype(np.float32)[:, None]
        np.maximum(out, 0, out=out)  # ufuncs: np.clip's Python wrapper costs more than the clipping per front
        np.minimum(out, 255, out=out)
        return out.astype(np.uint8).reshape(-1, 8, 8)
