"""Telling screen content (text, graphics, flat colours) from photographs, to choose a save's table set.

The default tables (``"balanced"``) trade a little PSNR for MS-SSIM on photographs. On text and flat colours
their steeper high frequencies ring more around sharp edges, and their larger lambda lets a flat colour drift
by two levels (``tests/runtime/test_content_battery.py``), where the flatter PSNR-tuned tables keep both as
JPEG does. The rule that tells the two apart is libaom's (``av1_set_screen_content_options``, which switches
AV1's screen-content tools on): an image is screen content when more than a tenth of its 16x16 blocks hold at
most four distinct colours. A photograph's noise gives nearly every block dozens of colours.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FEW_COLOURS", "MIN_SHARE", "few_colour_share", "is_screen_content"]

#: Side of the blocks whose colours are counted (libaom's 16).
BLOCK = 16
#: A block with at most this many distinct colours counts as screen content (libaom's ``color_thresh``).
FEW_COLOURS = 4
#: Screen content is more than this share of such blocks (libaom: ``counts * 16 * 16 * 10 > area``).
MIN_SHARE = 0.1
#: Block rows counted at a time, so a 12-megapixel image needs a few MB beyond its pixels.
_BAND_ROWS = 32


def _colour_keys(pixels: np.ndarray) -> np.ndarray:
    """One integer per pixel that differs exactly where the colours (alpha included) differ."""
    if pixels.ndim == 2:
        return pixels.astype(np.uint32)
    keys = np.zeros(pixels.shape[:2], dtype=np.uint32)
    for c in range(pixels.shape[2]):
        keys = (keys << 8) | pixels[..., c]
    return keys


def few_colour_share(pixels: np.ndarray) -> float:
    """The share of the whole 16x16 blocks of uint8 ``pixels`` (``[H, W]`` or ``[H, W, C]``, C <= 4) that hold at
    most :data:`FEW_COLOURS` colours; an image smaller than one block counts as one block."""
    h, w = pixels.shape[:2]
    bh, bw = max(1, h // BLOCK), max(1, w // BLOCK)
    side_h, side_w = min(h, BLOCK), min(w, BLOCK)
    few = 0
    for row in range(0, bh, _BAND_ROWS):
        rows = min(_BAND_ROWS, bh - row)
        band = _colour_keys(pixels[row * side_h : (row + rows) * side_h, : bw * side_w])
        blocks = band.reshape(rows, side_h, bw, side_w).transpose(0, 2, 1, 3).reshape(rows * bw, -1)
        ordered = np.sort(blocks, axis=1)
        colours = 1 + np.count_nonzero(np.diff(ordered, axis=1), axis=1)
        few += int(np.count_nonzero(colours <= FEW_COLOURS))
    return few / (bh * bw)


def is_screen_content(pixels: np.ndarray) -> bool:
    """Whether ``pixels`` look like text, graphics or flat colours rather than a photograph (libaom's rule)."""
    return few_colour_share(pixels) > MIN_SHARE
