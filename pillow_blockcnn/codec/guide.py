"""The luma guide of the chroma planes: the decoded Y plane at chroma resolution, for luma-guided predictors.

Why: a decoder rebuilds all of Y before Cb and Cr, so a chroma block's predictor may look at the luma of the
block itself (its edges and texture, which chroma edges usually follow), not only at decoded chroma
neighbours. The guide is integer arithmetic on the decoded Y plane, identical in encoder and decoder
(docs/FORMAT.md §5.3):

* Y's rebuilt plane, edge-extended (last row and column repeated) to ``fy`` x ``fx`` times the chroma plane's
  padded size, then reduced to chroma resolution by the rounded mean of each ``fy`` x ``fx`` cell:
  ``(sum + n/2) >> log2(n)``, n = fy * fx (4:4:4: the plane itself);
* a chroma block ``(by, bx)``'s guide window is rows ``8by - 8 .. 8by + 7``, columns ``8bx - 8 .. 8bx + 15`` of
  that plane (0 outside it): the above-left, above and above-right blocks, then the left block and the
  co-located block itself. The predictor masks the neighbours its tile does not make available.
"""

from __future__ import annotations

import numpy as np

from .blocks import BLOCK, context_windows

__all__ = ["GUIDE_ROWS", "guide_plane", "guide_windows"]

#: Rows of a guide window: the block row above and the block's own row.
GUIDE_ROWS = 2 * BLOCK


def guide_plane(luma: np.ndarray, shape: tuple[int, int], factors: tuple[int, int]) -> np.ndarray:
    """The guide of chroma planes of padded ``shape`` from the rebuilt Y plane ``luma`` (uint8), chroma
    subsampled by ``factors`` (vertical, horizontal), with an 8-pixel zero border on every side (the layout
    :func:`guide_windows` reads)."""
    fy, fx = factors
    height, width = shape[0] * fy, shape[1] * fx
    extended = luma[:height, :width]
    if extended.shape != (height, width):
        pad = ((0, height - extended.shape[0]), (0, width - extended.shape[1]))
        extended = np.pad(extended, pad, mode="edge")
    n = fy * fx
    if n == 1:
        reduced = extended
    else:
        cells = extended.reshape(shape[0], fy, shape[1], fx).sum(axis=(1, 3), dtype=np.int32)
        reduced = ((cells + n // 2) >> (n.bit_length() - 1)).astype(np.uint8)
    bordered = np.zeros((shape[0] + 2 * BLOCK, shape[1] + 2 * BLOCK), dtype=np.uint8)
    bordered[BLOCK:-BLOCK, BLOCK:-BLOCK] = reduced
    return bordered


def guide_windows(bordered: np.ndarray, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    """Guide windows ``[N, 16, 24]`` uint8 of chroma blocks ``(by, bx)`` from :func:`guide_plane`'s output."""
    return context_windows(bordered)[by, bx, :GUIDE_ROWS]
