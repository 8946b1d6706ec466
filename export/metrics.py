"""Image-quality metrics in the conventions of the JPEG-restoration literature (AR-CNN, DnCNN, FBCNN).

Y is MATLAB's ``rgb2ycbcr`` luma (BT.601, 16..235): the published gray-protocol numbers are computed on it.
"""

from __future__ import annotations

import numpy as np


def rgb_to_y_matlab(rgb: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) in 0..255 -> float64 Y in 16..235 (not rounded)."""
    x = rgb.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all elements."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)
