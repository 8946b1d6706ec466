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

__all__ = [
    "BLOCK",
    "CONTEXT",
    "BlockPredictor",
    "NullPredictor",
    "block_offsets",
    "context_windows",
    "gather_contexts",
    "neighbour_offsets",
    "wavefronts",
]

BLOCK = 8
CONTEXT = 3 * BLOCK


@runtime_checkable
class BlockPredictor(Protocol):
    """Anything that turns causal contexts into block predictions, deterministically.

    ``model_ids`` names the models a decoder needs to repeat the prediction;
    the file stores them. ``predict`` must return uint8: rounding to integers
    is what keeps tiny floating-point differences between machines from
    drifting through the closed loop.

    A *luma-guided* predictor also has ``guided = True`` and takes a keyword ``guide``: for the blocks of a
    chroma plane, their windows ``[N, 16, 24]`` uint8 of the decoded luma at chroma resolution
    (:mod:`.guide`); the codec then codes and decodes Y before the chroma planes. Without the attribute a
    predictor is unguided.

    A predictor may serve concurrent calls: it then has ``concurrency = n`` > 1, the threads a decoder
    should share a plane's tiles among (they never look across their borders), and ``concurrent()``, which
    returns the equivalent predictor to call from those threads (the same predictions; each call sized for
    one core). Without the attributes it is called from one thread.

    A predictor may also read the neighbours without the window: ``predict_neighbours(neighbours,
    available, plane[, guide=])`` takes ``[N, 256]`` uint8, the above-left, above, above-right and left
    blocks (64 pixels each, row major; :func:`neighbour_offsets`), and must return what ``predict`` returns
    for the same blocks. The pixels of a neighbour that ``available`` excludes are then *unspecified* (the
    plane's border, another tile's pixels, a residual): the predictor must not let them matter. The codec
    prefers this call: a front is then one gather of 256 bytes per block instead of a 576-byte window
    masked and gathered again (export/NOTES.md, "One gather, one call, one write-back per front").
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


#: Top-left corner in the window of the above-left, above, above-right and left neighbours.
_NEIGHBOURS = ((0, 0), (0, BLOCK), (0, 2 * BLOCK), (BLOCK, 0))


def _window_masks() -> np.ndarray:
    """``[16, 24, 24]`` uint8: for each availability code (bit i = neighbour i of :data:`_NEIGHBOURS`), 1 on
    the available neighbours and 0 elsewhere (the block itself, its right neighbour and the row below are
    always 0). One multiply by a gathered mask masks a whole front: cheaper than zeroing region by region."""
    masks = np.zeros((16, CONTEXT, CONTEXT), dtype=np.uint8)
    for code in range(16):
        for i, (r, c) in enumerate(_NEIGHBOURS):
            if code >> i & 1:
                masks[code, r : r + BLOCK, c : c + BLOCK] = 1
    return masks


_WINDOW_MASKS = _window_masks()

_CODE_WEIGHTS = np.array([1, 2, 4, 8])


def block_offsets(stride: int) -> np.ndarray:
    """``[64]`` int64: the flat offsets of a block's pixels (row major) from its top-left pixel, in a plane
    whose rows are ``stride`` pixels long."""
    return (np.arange(BLOCK)[:, None] * stride + np.arange(BLOCK)[None, :]).ravel()


def neighbour_offsets(stride: int) -> np.ndarray:
    """``[256]`` int64: the flat offsets, in a bordered plane whose rows are ``stride`` pixels long, from a
    block's top-left pixel to the pixels of its above-left, above, above-right and left neighbours (the
    order of :data:`_NEIGHBOURS`, each block row major): ``flat[origin[:, None] + offsets]`` is a front's
    ``predict_neighbours`` input (see :class:`BlockPredictor`)."""
    inside = block_offsets(stride)
    return np.concatenate([inside + (r - BLOCK) * stride + (c - BLOCK) for r, c in _NEIGHBOURS])


def context_windows(recon: np.ndarray) -> np.ndarray:
    """Every block's 24x24 window of ``recon`` (a plane with an 8-pixel border) as one read-only strided
    view ``[blocks_y, blocks_x, 24, 24]``: a front's windows are then one fancy-indexed copy of 24-byte rows
    (the prediction pass does this once per front; a per-pixel gather cost as much as the network on small
    fronts). The view reads the plane as it is when indexed, so one view serves a whole decode."""
    sy, sx = recon.strides
    blocks_y, blocks_x = (recon.shape[0] - 2 * BLOCK) // BLOCK, (recon.shape[1] - 2 * BLOCK) // BLOCK
    return np.lib.stride_tricks.as_strided(
        recon, shape=(blocks_y, blocks_x, CONTEXT, CONTEXT), strides=(BLOCK * sy, BLOCK * sx, sy, sx),
        writeable=False,
    )


def gather_contexts(
    recon: np.ndarray,
    by: np.ndarray,
    bx: np.ndarray,
    available: np.ndarray | None = None,
    windows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows around blocks ``(by, bx)`` of ``recon``, a plane with an 8-pixel zero border on every side.

    ``available`` (``[N, 4]`` bool, from :func:`.tiles.tile_fronts`) says which neighbours the blocks may
    use; a neighbour it excludes is zeroed like one outside the plane. Without it, every neighbour inside
    the plane is available (one tile). ``windows``: :func:`context_windows` of ``recon``, when the caller
    keeps one. Returns ``(contexts [N, 24, 24] uint8, available [N, 4] bool)``.
    """
    if windows is None:
        windows = context_windows(recon)
    if available is None:
        top, left, right = by > 0, bx > 0, bx < windows.shape[1] - 1
        available = np.stack([top & left, top, top & right, left], axis=1)
    contexts = windows[by, bx]  # advanced indexing: a copy, ours to mask
    contexts *= _WINDOW_MASKS[available @ _CODE_WEIGHTS]
    return contexts, available
