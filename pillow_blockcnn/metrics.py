"""Distortion measures used by the encoder's decisions, the benchmarks and the evaluations: one definition each."""

from __future__ import annotations

import numpy as np

from .codec.distortion import sse

__all__ = ["psnr", "sse"]


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all elements (inf for identical arrays)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(peak * peak / mse))
