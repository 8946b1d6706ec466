"""The block-prediction interface and the wavefront order the codec visits blocks in.

A predictor sees, for each 8x8 block, the 24x24 window centred on it in the
*reconstructed* plane. Only the four causal neighbours (above-left, above,
above-right, left) are filled; the block itself, its right neighbour and the
row below are zero, because the decoder does not have them yet. Outside the
plane the window is zero too, and ``available`` says which neighbours exist.

Blocks in one anti-diagonal front ``t = bx + 2 * by`` depend only on earlier
fronts (the above-right neighbour of ``(by, bx)`` lies on front ``t - 1``), so
each front is one batched call: the result equals raster order.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["BLOCK", "CONTEXT", "BlockPredictor", "NullPredictor", "gather_contexts", "wavefronts"]

BLOCK = 8
CONTEXT = 3 * BLOCK


@runtime_checkable
class BlockPredictor(Protocol):
    """Anything that turns causal contexts into block predictions, deterministically.

    ``model_ids`` names the models a decoder needs to repeat the prediction;
    the file stores them. ``predict`` must return uint8: rounding to integers
    is what keeps tiny floating-point differences between machines from
    drifting through the closed loop.
    """

    model_ids: tuple[str, ...]

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray) -> np.ndarray:
        """``contexts`` ``[N, 24, 24]`` uint8, ``available`` ``[N, 4]`` bool, ``plane`` the plane index of
        all blocks or ``[N]`` one per block (the decoder batches the fronts of all planes) -> ``[N, 8, 8]``
        uint8. Each block's prediction must not depend on the other blocks of the call."""
        ...


class NullPredictor:
    """Predicts mid-grey everywhere: the residual is the block, so coding is plain JPEG."""

    model_ids: tuple[str, ...] = ()

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray) -> np.ndarray:
        return np.full((contexts.shape[0], BLOCK, BLOCK), 128, dtype=np.uint8)


def wavefronts(blocks_y: int, blocks_x: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Block coordinates ``(by, bx)`` of each front, in decoding order."""
    fronts = []
    for t in range(blocks_x + 2 * (blocks_y - 1)):
        by = np.arange(max(0, (t - blocks_x + 2) // 2), min(blocks_y - 1, t // 2) + 1)
        if len(by):  # a plane one block wide has blocks on even fronts only
            fronts.append((by, t - 2 * by))
    return fronts


# Causal part of the window: the top block row and the left block of the middle row.
_CAUSAL = np.zeros((CONTEXT, CONTEXT), dtype=bool)
_CAUSAL[:BLOCK, :] = True
_CAUSAL[BLOCK : 2 * BLOCK, :BLOCK] = True
_CAUSAL_U8 = _CAUSAL.astype(np.uint8).ravel()
#: Top-left corner in the window of the above-left, above, above-right and left neighbours.
_NEIGHBOURS = ((0, 0), (0, BLOCK), (0, 2 * BLOCK), (BLOCK, 0))
_WINDOW_ROWS, _WINDOW_COLS = np.divmod(np.arange(CONTEXT * CONTEXT), CONTEXT)


def gather_contexts(
    recon: np.ndarray, by: np.ndarray, bx: np.ndarray, available: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Windows around blocks ``(by, bx)`` of ``recon``, a plane with an 8-pixel zero border on every side.

    ``available`` (``[N, 4]`` bool, from :func:`.tiles.tile_fronts`) says which neighbours the blocks may
    use; a neighbour it excludes is zeroed like one outside the plane. Without it, every neighbour inside
    the plane is available (one tile). Returns ``(contexts [N, 24, 24] uint8, available [N, 4] bool)``.
    """
    stride = recon.shape[1]
    # One flat gather (``take``) of each window: the prediction pass runs this once per front, and fancy
    # indexing with broadcast row and column arrays cost as much as the network on small fronts.
    offsets = _WINDOW_ROWS * stride + _WINDOW_COLS
    corners = BLOCK * (by * stride + bx)
    contexts = np.take(recon.ravel(), corners[:, None] + offsets[None, :]) * _CAUSAL_U8
    contexts = contexts.reshape(-1, CONTEXT, CONTEXT)
    if available is None:
        blocks_x = (stride - 2 * BLOCK) // BLOCK
        top, left, right = by > 0, bx > 0, bx < blocks_x - 1
        available = np.stack([top & left, top, top & right, left], axis=1)
    elif not available.all():
        for i, (r, c) in enumerate(_NEIGHBOURS):
            contexts[~available[:, i], r : r + BLOCK, c : c + BLOCK] = 0
    return contexts, available
