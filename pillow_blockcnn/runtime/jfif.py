"""Full-range JFIF YCbCr in float: the colour space the networks see, defined once for training and inference.

The codec's own colour conversion is libjpeg's integer arithmetic
(:mod:`pillow_blockcnn.codec.colour`); this float one is the deblocker's input
and output convention (``docs/FORMAT.md`` §7). ``export/`` trains on exactly
these functions, so a model sees at inference what it saw in training.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gray_to_ycbcr_float", "rgb_to_ycbcr_float", "to_uint8", "ycbcr_to_rgb_float"]


def rgb_to_ycbcr_float(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3]`` RGB (0..255, any float or int dtype) -> ``[..., 3]`` float32 full-range JFIF YCbCr."""
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb_float(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr_float` (no rounding or clipping)."""
    ycc = ycc.astype(np.float32)
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 128.0, ycc[..., 2] - 128.0
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return np.stack([r, g, b], axis=-1)


def gray_to_ycbcr_float(gray: np.ndarray) -> np.ndarray:
    """Grayscale ``[H, W]`` -> float32 ``[H, W, 3]``: Y is the grey value, Cb = Cr = 128 (neutral chroma)."""
    ycc = np.full((*gray.shape, 3), 128.0, dtype=np.float32)
    ycc[..., 0] = gray
    return ycc


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half to even and clip to 0..255: how a network's float output becomes an 8-bit image."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
