"""Differentiable image-quality terms for restoration losses.

The benchmarks score two things (the brief): PSNR-RGB and MS-SSIM (mean over R, G, B, on the dB scale
``-10 log10(1 - MS-SSIM)``). A loss that serves both adds the two in the same unit: ``log10(MSE)`` is
``-PSNR/10`` up to a constant and ``log10(1 - MS-SSIM)`` is ``-MS-SSIM dB / 10``, so a weight of 1 says "one
dB of either is worth the same". :func:`ms_ssim` follows ``export.evaluation.metrics.ms_ssim`` (Gaussian 11x11
window, sigma 1.5, valid filtering, 2x2 mean downsampling, the published weights renormalised to the scales a
crop has), on 0..1 data.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_C1, _C2 = 0.01**2, 0.03**2


def _window(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(11, dtype=dtype, device=device) - 5
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian, valid part only, per channel of ``[N, C, H, W]``."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _ssim_parts(a: torch.Tensor, b: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    s_aa = _blur(a * a, g) - mu_a**2
    s_bb = _blur(b * b, g) - mu_b**2
    s_ab = _blur(a * b, g) - mu_a * mu_b
    cs = (2 * s_ab + _C2) / (s_aa + s_bb + _C2)
    lum = (2 * mu_a * mu_b + _C1) / (mu_a**2 + mu_b**2 + _C1)
    return (lum * cs).mean(dim=(2, 3)), cs.mean(dim=(2, 3))


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of every channel of ``[N, C, H, W]`` images in 0..1: ``[N, C]``."""
    g = _window(a.device, a.dtype)
    scales = max(1, min(len(_MS_WEIGHTS), int(torch.log2(torch.tensor(min(a.shape[2:]) / 11)).floor()) + 1))
    weights = torch.tensor(_MS_WEIGHTS[:scales], dtype=a.dtype)
    weights = weights / weights.sum()
    value = torch.ones(a.shape[:2], dtype=a.dtype, device=a.device)
    for i in range(scales):
        full, cs = _ssim_parts(a, b, g)
        last = i == scales - 1
        value = value * (full if last else cs).clamp_min(1e-6) ** weights[i]
        if not last:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return value


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """JFIF full-range YCbCr/255 ``[N, 3, H, W]`` to RGB/255 (``pillow_blockcnn.runtime.jfif``'s matrix)."""
    y, cb, cr = ycc[:, 0], ycc[:, 1] - 128 / 255, ycc[:, 2] - 128 / 255
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.stack([r, g, b], dim=1)
