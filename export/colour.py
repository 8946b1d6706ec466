"""Full-range JFIF YCbCr conversion in float (the single definition shared with the runtime).

The runtime package mirrors these exact coefficients; the model is trained on YCbCr/255 produced here, so any
change must be made in both places.
"""

from __future__ import annotations

import numpy as np

_RGB2YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float64
)
_OFFSET = np.array([0.0, 128.0, 128.0], dtype=np.float64)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) in 0..255 (any dtype) -> float32 YCbCr (H, W, 3) in 0..255, JFIF full range, no rounding."""
    x = rgb.astype(np.float64)
    return (x @ _RGB2YCC.T + _OFFSET).astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Float YCbCr (H, W, 3) in 0..255 -> float32 RGB (H, W, 3), unclipped and unrounded (the caller rounds)."""
    y = ycc[..., 0].astype(np.float64)
    cb = ycc[..., 1].astype(np.float64) - 128.0
    cr = ycc[..., 2].astype(np.float64) - 128.0
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def gray_to_ycbcr(gray: np.ndarray) -> np.ndarray:
    """Grayscale (H, W) -> YCbCr (H, W, 3): Y is the grey value, Cb = Cr = 128 (neutral chroma)."""
    y = gray.astype(np.float32)
    neutral = np.full_like(y, 128.0)
    return np.stack([y, neutral, neutral], axis=-1)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half to even and clip to 0..255, as the runtime does when producing an 8-bit image."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
