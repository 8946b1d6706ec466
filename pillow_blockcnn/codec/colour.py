"""Colour transform and chroma resampling, in libjpeg's integer arithmetic.

The planes are coded as separate grayscale JPEGs (so every block decodes
independently, which closed-loop prediction needs), which means the colour
conversion and chroma subsampling that libjpeg would do inside a colour JPEG
happen here instead. They copy libjpeg's fixed-point formulas
(``jccolor.c``, ``jcsample.c``, ``jdsample.c`` "fancy" upsampling,
``jdcolor.c``): integer-only, so every machine decodes the same pixels, and
with no prediction a .bcnn file matches a Pillow JPEG of the same quality.

The float JFIF conversion the networks see is not here: it belongs to the
runtime (:mod:`pillow_blockcnn.runtime.jfif`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["downsample", "rgb_to_ycbcr", "upsample", "ycbcr_to_rgb"]

_SCALEBITS = 16
_ONE_HALF = 1 << (_SCALEBITS - 1)
_CBCR_OFFSET = 128 << _SCALEBITS


def _fix(x: float) -> int:
    return int(x * (1 << _SCALEBITS) + 0.5)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB -> ``[3, H, W]`` uint8 Y, Cb, Cr exactly as libjpeg's ``rgb_ycc_convert``."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    y = (_fix(0.299) * r + _fix(0.587) * g + _fix(0.114) * b + _ONE_HALF) >> _SCALEBITS
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + _CBCR_OFFSET + _ONE_HALF - 1) >> _SCALEBITS
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + _CBCR_OFFSET + _ONE_HALF - 1) >> _SCALEBITS
    return np.stack([y, cb, cr]).astype(np.uint8)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """``[3, H, W]`` uint8 -> ``[H, W, 3]`` uint8 RGB exactly as libjpeg's ``ycc_rgb_convert``."""
    y, cb, cr = (ycc[i].astype(np.int32) for i in range(3))
    cb = cb - 128
    cr = cr - 128
    r = y + ((_fix(1.40200) * cr + _ONE_HALF) >> _SCALEBITS)
    g = y + ((-_fix(0.34414) * cb - _fix(0.71414) * cr + _ONE_HALF) >> _SCALEBITS)
    b = y + ((_fix(1.77200) * cb + _ONE_HALF) >> _SCALEBITS)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def downsample(plane: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """Box-average by ``(fy, fx)`` with libjpeg's alternating rounding bias.

    ``plane`` sides must be multiples of the factors (the caller pads by edge
    replication first, as libjpeg does).
    """
    fy, fx = factors
    p = plane.astype(np.int32)
    w = p.shape[1]
    if fy == 1 and fx == 1:
        return plane.copy()
    if fy == 2 and fx == 2:
        s = p[0::2, 0::2] + p[0::2, 1::2] + p[1::2, 0::2] + p[1::2, 1::2]
        bias = np.where(np.arange(w // 2) % 2 == 0, 1, 2)
        return ((s + bias) >> 2).astype(np.uint8)
    if fy == 1 and fx == 2:
        s = p[:, 0::2] + p[:, 1::2]
        bias = np.arange(w // 2) % 2
        return ((s + bias) >> 1).astype(np.uint8)
    msg = f"unsupported subsampling factors {factors}"
    raise ValueError(msg)


def upsample(plane: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """libjpeg's "fancy" (triangle) upsampling; edges replicate the outermost samples."""
    fy, fx = factors
    if fy == 1 and fx == 1:
        return plane.copy()
    p = plane.astype(np.int32)
    if fy == 2 and fx == 2:
        padded = np.pad(p, 1, mode="edge")
        this = padded[1:-1]
        above, below = padded[:-2], padded[2:]
        out = np.empty((2 * p.shape[0], 2 * p.shape[1]), dtype=np.int32)
        for v, other in ((0, above), (1, below)):
            colsum = this * 3 + other  # [H, W + 2]
            centre, left, right = colsum[:, 1:-1], colsum[:, :-2], colsum[:, 2:]
            out[v::2, 0::2] = (centre * 3 + left + 8) >> 4
            out[v::2, 1::2] = (centre * 3 + right + 7) >> 4
        return out.astype(np.uint8)
    if fy == 1 and fx == 2:
        padded = np.pad(p, ((0, 0), (1, 1)), mode="edge")
        centre, left, right = padded[:, 1:-1], padded[:, :-2], padded[:, 2:]
        out = np.empty((p.shape[0], 2 * p.shape[1]), dtype=np.int32)
        out[:, 0::2] = (centre * 3 + left + 1) >> 2
        out[:, 1::2] = (centre * 3 + right + 2) >> 2
        return out.astype(np.uint8)
    msg = f"unsupported subsampling factors {factors}"
    raise ValueError(msg)
