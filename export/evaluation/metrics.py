"""Image-quality metrics in the conventions of the JPEG-restoration literature (AR-CNN, DnCNN, FBCNN).

Y is MATLAB's ``rgb2ycbcr`` luma (BT.601, 16..235): the published gray-protocol numbers are computed on it.
"""

from __future__ import annotations

import numpy as np

from pillow_blockcnn.metrics import psnr  # one PSNR for the package's bench and the evaluations

__all__ = ["ms_ssim", "ms_ssim_db", "ms_ssim_rgb_db", "psnr", "psnr_b", "rgb_to_y_matlab", "ssim"]


def rgb_to_y_matlab(rgb: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) in 0..255 -> float64 Y in 16..235 (not rounded)."""
    x = rgb.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation with a 1-D window along both axes (MATLAB filter2(..., 'valid'))."""
    k = win.size
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0) @ win
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ win


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Single-channel SSIM of Wang et al. (11x11 Gaussian, sigma 1.5, K1=0.01, K2=0.03, L=255, valid region)."""
    return _ssim_parts(a.astype(np.float64), b.astype(np.float64))[0]


_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _ssim_parts(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure term) of one scale of float64 images: :func:`ssim`'s definition."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    w = _gaussian_window()
    mu_a, mu_b = _filter_valid(a, w), _filter_valid(b, w)
    s_aa = _filter_valid(a * a, w) - mu_a**2
    s_bb = _filter_valid(b * b, w) - mu_b**2
    s_ab = _filter_valid(a * b, w) - mu_a * mu_b
    cs = (2 * s_ab + c2) / (s_aa + s_bb + c2)
    lum = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    return float((lum * cs).mean()), float(cs.mean())


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) of one channel: five scales, 2x2 mean downsampling,
    the published weights, contrast-structure terms at the four finer scales and full SSIM at the coarsest
    (the definition CompressAI and the learned-compression literature use). Five scales need sides >= 176;
    a smaller image uses the scales it has (the coarsest needs 11 pixels), with the weights renormalised, so
    smoke runs on thumbnails still get a number."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    scales = max(1, min(len(_MS_WEIGHTS), int(np.floor(np.log2(min(a.shape) / 11))) + 1))
    weights = np.array(_MS_WEIGHTS[:scales]) / np.sum(_MS_WEIGHTS[:scales])
    value = 1.0
    for i, weight in enumerate(weights):
        full, cs = _ssim_parts(a, b)
        if i == len(weights) - 1:
            value *= max(full, 0.0) ** weight
        else:
            value *= max(cs, 0.0) ** weight
            h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
            a = a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            b = b[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return value


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on the dB scale, ``-10 log10(1 - MS-SSIM)``, where equal steps are equal visible steps."""
    return float(-10.0 * np.log10(max(1.0 - value, 1e-10)))


def ms_ssim_rgb_db(a: np.ndarray, b: np.ndarray) -> float:
    """The brief's MS-SSIM score: mean over R, G, B of MS-SSIM, then on the dB scale."""
    return ms_ssim_db(float(np.mean([ms_ssim(a[..., c], b[..., c]) for c in range(a.shape[-1])])))


def blocking_effect_factor(img: np.ndarray, block: int = 8) -> float:
    """BEF of Yim & Bovik (2011): excess squared difference across 8x8 block boundaries (0..255 scale)."""
    x = img.astype(np.float64)
    h, w = x.shape
    dh = (x[:, :-1] - x[:, 1:]) ** 2  # horizontal neighbours, column j vs j+1
    dv = (x[:-1, :] - x[1:, :]) ** 2
    bh = np.zeros(w - 1, bool)
    bh[block - 1 :: block] = True
    bv = np.zeros(h - 1, bool)
    bv[block - 1 :: block] = True
    n_bh, n_bv = h * (w // block - 1), w * (h // block - 1)
    boundary = (dh[:, bh].sum() + dv[bv, :].sum()) / (n_bh + n_bv)
    n_nh, n_nv = h * (w - 1) - n_bh, w * (h - 1) - n_bv
    nonboundary = (dh[:, ~bh].sum() + dv[~bv, :].sum()) / (n_nh + n_nv)
    if boundary <= nonboundary:
        return 0.0
    return float(np.log2(block) / np.log2(min(h, w)) * (boundary - nonboundary))


def psnr_b(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR-B (Yim & Bovik 2011): MSE plus the blocking effect factor of the *test* image, single channel."""
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return 10.0 * np.log10(255.0**2 / (mse + blocking_effect_factor(test)))
