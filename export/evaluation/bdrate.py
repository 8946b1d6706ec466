"""Bjøntegaard delta rate (BD-rate): the average bitrate difference between two RD curves at equal quality.

Both curves are fitted as log(rate) as a function of PSNR, the fits are integrated over the PSNR interval the
two curves share, and the difference of the mean log-rates is turned back into a percentage
(``exp(mean_test - mean_anchor) - 1``): -20% means the test codec needs 20% fewer bits than the anchor for
the same PSNR, averaged over that interval.

Two interpolations are provided, because both are in use and they give slightly different numbers:

* ``"cubic"``: a least-squares cubic polynomial through all points (Bjøntegaard, VCEG-M33, 2001). This is
  what CompressAI and most learned-compression papers report, so it is the one our tables lead with.
* ``"pchip"``: piecewise cubic Hermite interpolation through the points (Fritsch-Carlson slopes, as
  ``scipy.interpolate.PchipInterpolator``), the variant of VCEG-AL22 / JCTVC and JVET common test
  conditions. It never overshoots between points, so it is safer when a curve has more than four points or
  an uneven spacing, where a single cubic can wiggle.

Rate is whatever the caller passes (bpp here); only ratios matter. Pure numpy: no scipy dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Method = Literal["cubic", "pchip"]

__all__ = ["Method", "bd_rate", "bd_rates", "overlap", "select_up_to"]


def select_up_to(rate: Sequence[float], quality: Sequence[float], max_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Points with ``rate <= max_rate``: BD-rate is usually computed over the low-rate range that matters."""
    r, q = np.asarray(rate, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    keep = r <= max_rate
    return r[keep], q[keep]


def overlap(quality_a: Sequence[float], quality_b: Sequence[float]) -> tuple[float, float]:
    """The quality interval both curves cover; extrapolating a fit outside its points is meaningless."""
    lo = max(float(np.min(quality_a)), float(np.min(quality_b)))
    hi = min(float(np.max(quality_a)), float(np.max(quality_b)))
    return lo, hi


def _sorted_strict(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort by x; an interpolant needs x strictly increasing, so equal PSNRs are an error, not a guess."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        msg = "PSNR values must be distinct for piecewise interpolation"
        raise ValueError(msg)
    return x, y


def _cubic_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Integral over [lo, hi] of the least-squares cubic through (x, y)."""
    antiderivative = np.polyint(np.polyfit(x, y, 3))
    return float(np.polyval(antiderivative, hi) - np.polyval(antiderivative, lo))


def _pchip_end_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    """Shape-preserving three-point end slope (the rule scipy's PchipInterpolator uses)."""
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > abs(3 * m0):
        return 3 * m0
    return float(d)


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson derivatives: a weighted harmonic mean of neighbouring secants, 0 at local extrema."""
    h = np.diff(x)
    m = np.diff(y) / h
    if x.size == 2:
        return np.array([m[0], m[0]])
    d = np.zeros_like(y)
    w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
    same_sign = (m[:-1] * m[1:]) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / m[:-1] + w2 / m[1:])
    d[1:-1] = np.where(same_sign, harmonic, 0.0)
    d[0] = _pchip_end_slope(h[0], h[1], m[0], m[1])
    d[-1] = _pchip_end_slope(h[-1], h[-2], m[-1], m[-2])
    return d


def _pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral over [lo, hi] of the pchip interpolant: each Hermite segment is a cubic in t = x - x_k."""
    x, y = _sorted_strict(x, y)
    d = _pchip_slopes(x, y)
    total = 0.0
    for k in range(x.size - 1):
        a, b = max(lo, x[k]), min(hi, x[k + 1])
        if b <= a:
            continue
        h = x[k + 1] - x[k]
        secant = (y[k + 1] - y[k]) / h
        c2 = (3 * secant - 2 * d[k] - d[k + 1]) / h
        c3 = (d[k] + d[k + 1] - 2 * secant) / (h * h)
        # y(t) = y_k + d_k t + c2 t^2 + c3 t^3; its antiderivative, evaluated at both ends of the piece:
        antiderivative = np.array([c3 / 4, c2 / 3, d[k] / 2, y[k], 0.0])
        total += float(np.polyval(antiderivative, b - x[k]) - np.polyval(antiderivative, a - x[k]))
    return total


def bd_rate(
    rate_anchor: Sequence[float],
    psnr_anchor: Sequence[float],
    rate_test: Sequence[float],
    psnr_test: Sequence[float],
    method: Method = "cubic",
) -> float:
    """BD-rate of the test curve against the anchor, in percent (negative: the test codec saves bits).

    Each curve needs at least four points (a cubic has four coefficients) and the curves must overlap in
    PSNR; otherwise ``ValueError`` says which condition failed rather than returning a made-up number.
    """
    curves = []
    for rate, psnr in ((rate_anchor, psnr_anchor), (rate_test, psnr_test)):
        r, q = np.asarray(rate, dtype=np.float64), np.asarray(psnr, dtype=np.float64)
        if r.shape != q.shape or r.size < 4:
            msg = f"each curve needs >= 4 (rate, PSNR) points of equal count, got {r.size} and {q.size}"
            raise ValueError(msg)
        if np.any(r <= 0):
            msg = "rates must be positive (BD-rate fits log-rate)"
            raise ValueError(msg)
        curves.append((q, np.log(r)))
    lo, hi = overlap(curves[0][0], curves[1][0])
    if hi <= lo:
        msg = f"the curves do not overlap in PSNR ({lo:.2f} >= {hi:.2f} dB)"
        raise ValueError(msg)
    integral = {"cubic": _cubic_integral, "pchip": _pchip_integral}[method]
    mean_anchor = integral(*curves[0], lo, hi) / (hi - lo)
    mean_test = integral(*curves[1], lo, hi) / (hi - lo)
    return float(100.0 * np.expm1(mean_test - mean_anchor))


def bd_rates(
    anchors: Sequence[Sequence[tuple[float, float]]], tests: Sequence[Sequence[tuple[float, float]]]
) -> list[float]:
    """:func:`bd_rate` of each image's test curve against its anchor curve, each curve a list of (rate, PSNR)
    points: what the studies that code held-out images both ways report per image."""
    return [
        bd_rate([r for r, _ in anchor], [q for _, q in anchor], [r for r, _ in test], [q for _, q in test])
        for anchor, test in zip(anchors, tests, strict=True)
    ]
