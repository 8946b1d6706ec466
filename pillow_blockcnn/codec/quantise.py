"""Choosing the quantised DCT levels of 8x8 blocks by rate-distortion cost, and what they decode to.

Any integers are a valid JPEG scan; the decoder only multiplies them by the
table and runs libjpeg's inverse DCT (:mod:`.dct`). So the encoder is free to
pick, for each block, the levels that minimise ``J = SSE + lambda * bits``
rather than the nearest ones. The candidates, each kept only where it lowers
``J`` measured on the decoded samples:

* a dead zone: AC levels round towards zero unless the coefficient is well
  past the half step (a Laplacian source's optimum, and what makes isolated
  small coefficients of noise free);
* optionally (``TRELLIS``, off), a trellis search over the rate model
  (:func:`trellis_levels`): each AC level is 0, or the step below or above the
  coefficient, and the block's last non-zero position is chosen with them,
  exactly minimising the model's ``J`` (mozjpeg's trellis, for this model's
  rates instead of Huffman code lengths);
* the DC level is the one of its two neighbours (floor, ceiling) that
  reconstructs the block best *after* libjpeg's clamping to 0..255, so that
  flat white or black blocks come back exact;
* a whole block's AC may be dropped when the bits it costs buy less than
  ``lambda`` per unit of squared error.

``bits`` is :func:`block_bits`, a model of the arithmetic-coded size fitted on
training images (``export/studies/fit_rate_model.py``); ``lambda`` follows from
the quantiser step (:func:`lagrangian`). Everything here is vectorised over blocks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .dct import ZIGZAG, fdct, islow_idct, range_limit

__all__ = [
    "DEADZONE",
    "RD_LAMBDA",
    "SHIPPED_RANK_COSTS",
    "TRELLIS",
    "Quantised",
    "RankCosts",
    "block_bits",
    "dc_bits",
    "lagrangian",
    "quantise_blocks",
    "reconstruct",
    "trellis_levels",
]

#: Rounding offset of AC levels: ``|level| = floor(|F| / q + DEADZONE)`` (0.5 would be plain rounding).
DEADZONE = 0.33
#: ``lambda = RD_LAMBDA * q_low^2`` (:func:`lagrangian`). DEADZONE and RD_LAMBDA are the best of a grid on
#: 12 training crops with the PSNR tables (``python -m export.studies.tune_rdo``): -43.1% BD-rate against
#: Pillow's JPEG there, -37.1% with plain rounding (results/studies/tune_rdo.json, measured with lambda on the
#: mean of all 64 steps; 0.086 on the low frequencies is the same lambda for these tables, -43.07%:
#: results/studies/tune_rdo_lowfreq_lambda.json).
RD_LAMBDA = 0.086
# Rate model: bits = _BIT_BLOCK + per non-zero AC level (_BIT_NZ + _BIT_MAG * log2 |level|) + _BIT_LAST * index of
# the last non-zero level in zig-zag order + DC (_BIT_DC_NZ + _BIT_DC_MAG * log2 |dc difference|, when non-zero).
# Fitted to libjpeg's arithmetic coder on 24 training images (results/studies/rate_model.json).
_BIT_BLOCK = 1.58
_BIT_NZ = 2.09
_BIT_MAG = 1.29
_BIT_LAST = 0.85
_BIT_DC_NZ = 0.65
_BIT_DC_MAG = 3.04

#: Zig-zag rank of each natural-order position (T.81 Figure A.6).
_RANK = np.argsort(ZIGZAG).reshape(8, 8)
#: libjpeg decodes a block exactly as :func:`reconstruct` does only while its inverse DCT stays in this range
#: (its SIMD kernels wrap differently outside it); the encoder never writes a block that leaves it.
IDCT_RANGE = (-512, 511)


_LOW = (np.add.outer(np.arange(8), np.arange(8)) <= 3).ravel()


#: Whether :func:`quantise_blocks` also tries :func:`trellis_levels`. Off: on training crops it codes 0.1-0.3
#: points of BD-rate smaller (``python -m export.studies.tune_rdo --trellis 0 1``), but it trusts the rate
#: model where the model is wrong, and black text on white came out larger than Pillow's JPEG
#: (tests/runtime/test_content_battery.py); ``export/NOTES.md``, "A trellis over the rate model".
TRELLIS = False

#: Adaptive lambda (:func:`activity_weights`): 0 = one lambda per plane.
AQ_STRENGTH = 0.0
#: SSIM's C2 for 8-bit samples, (0.03 * 255)^2.
_C2 = (0.03 * 255) ** 2


def activity_weights(plane: np.ndarray, strength: float) -> np.ndarray | float:
    """Per-block lambda factors ``[BY, BX]`` for a plane (sides multiples of 8): ``((2 var + C2) / G)^strength``
    with ``G`` their geometric mean over the plane, so the plane's mean log-lambda stays. SSIM weighs a block's
    squared error by about ``1 / (2 var + C2)``: bits moved from busy blocks to flat ones buy more of it.
    ``strength`` 0 returns 1.0 (one lambda)."""
    if strength == 0:
        return 1.0
    h, w = plane.shape
    blocks = plane.reshape(h // 8, 8, w // 8, 8).astype(np.float64)
    activity = np.log(2 * blocks.var(axis=(1, 3)) + _C2)
    return np.exp(strength * (activity - activity.mean()))


def lagrangian(qtable: np.ndarray | list[int]) -> float:
    """``lambda`` (squared error per bit) for a quantisation table: proportional to the squared mean step of
    the ten lowest frequencies (u + v <= 3), where a block's bits and error mostly are; JPEG's steep tables
    would make a mean over all 64 steps far too large for their fine low frequencies."""
    return RD_LAMBDA * float(np.mean(np.asarray(qtable, dtype=np.float64).ravel()[_LOW])) ** 2


def dc_bits(difference: np.ndarray) -> np.ndarray:
    """Modelled bits of coding a DC difference (0 costs nothing here: its bit is in ``_BIT_BLOCK``)."""
    mag = np.abs(np.asarray(difference, dtype=np.int64))
    return np.where(mag > 0, _BIT_DC_NZ + _BIT_DC_MAG * np.log2(np.maximum(mag, 1)), 0.0)


def block_bits(levels: np.ndarray, dc_reference: np.ndarray | None = None) -> np.ndarray:
    """Modelled coded size in bits of each ``[N, 8, 8]`` level block; the DC is coded as the difference to
    ``dc_reference`` (the DC level of the block before it in the scan, 0 where unknown)."""
    mag = np.abs(levels.astype(np.int64))
    ac = mag.copy()
    ac[:, 0, 0] = 0
    nz = ac > 0
    bits = _BIT_BLOCK + (nz * (_BIT_NZ + _BIT_MAG * np.log2(np.maximum(ac, 1)))).sum(axis=(1, 2))
    last = np.where(nz, _RANK, 0).max(axis=(1, 2))
    bits = bits + _BIT_LAST * last
    return bits + dc_bits(levels[:, 0, 0].astype(np.int64) - (0 if dc_reference is None else dc_reference))


def reconstruct(levels: np.ndarray, qtable: np.ndarray) -> np.ndarray:
    """What libjpeg decodes ``[N, 8, 8]`` levels to: uint8 samples (level-shifted by 128, clamped)."""
    return range_limit(islow_idct(levels.astype(np.int64) * qtable))


class RankCosts(NamedTuple):
    """A rate model's AC costs in bits by zig-zag rank ``k`` = 1..63 (``end``: 0..63), for :func:`trellis_levels`:
    a non-zero level at ``k`` costs ``nonzero[k-1] + magnitude[k-1] log2 |level|``, a zero before the block's
    last non-zero level ``inside_zero[k-1]``, and a block whose last non-zero level is at ``k`` ``end[k]``."""

    nonzero: np.ndarray
    inside_zero: np.ndarray
    end: np.ndarray
    magnitude: np.ndarray


#: :func:`block_bits`' AC costs in that form.
SHIPPED_RANK_COSTS = RankCosts(
    nonzero=np.full(63, _BIT_NZ),
    inside_zero=np.zeros(63),
    end=_BIT_LAST * np.arange(64.0),
    magnitude=np.full(63, _BIT_MAG),
)


def trellis_levels(
    ratio: np.ndarray, qtable: np.ndarray, lam: float | np.ndarray, costs: RankCosts = SHIPPED_RANK_COSTS
) -> np.ndarray:
    """AC levels of ``[N, 8, 8]`` blocks of coefficients over steps (``ratio = F / qtable``) that minimise
    ``J = sum((F - level * q)^2) + lam * bits`` exactly under the rate model ``costs`` (by default
    :func:`block_bits`' own); the DC is left at 0 for the caller.

    The DCT is orthonormal, so the squared error is the sum over coefficients. For a fixed last non-zero rank
    ``L`` every level before it is chosen on its own (0, the step below the coefficient or the step above),
    level ``L`` is the best non-zero one and those after it are 0; the best ``L`` (or none) follows from prefix
    sums over zig-zag order, all blocks at once.
    """
    n = len(ratio)
    lam_b = np.reshape(np.asarray(lam, dtype=np.float64), (-1, 1)) if np.ndim(lam) else float(lam)
    r = ratio.reshape(n, 64)[:, ZIGZAG[1:]]
    step = np.asarray(qtable, dtype=np.float64).ravel()[ZIGZAG[1:]]
    mag = np.abs(r)
    below = np.floor(mag)
    above = below + 1

    def cost(level: np.ndarray) -> np.ndarray:
        bits = costs.nonzero + costs.magnitude * np.log2(np.maximum(level, 1))
        return ((mag - level) * step) ** 2 + lam_b * bits

    zero = (mag * step) ** 2
    inside_zero = zero + lam_b * costs.inside_zero
    cost_above = cost(above)
    cost_below = np.where(below >= 1, cost(below), np.inf)
    nonzero = np.minimum(cost_below, cost_above)
    nonzero_level = np.where(cost_below <= cost_above, below, above)
    best = np.minimum(inside_zero, nonzero)
    # J(L) for the last non-zero level at zig-zag rank L = 1..63, and J(0) = the block without AC.
    before = np.concatenate([np.zeros((n, 1)), np.cumsum(best, axis=1)[:, :-1]], axis=1)
    after = np.cumsum(zero[:, ::-1], axis=1)[:, ::-1] - zero
    total = before + nonzero + after + lam_b * costs.end[1:]
    empty = zero.sum(axis=1, keepdims=True) + lam_b * costs.end[0]
    last = np.argmin(np.concatenate([empty, total], axis=1), axis=1)
    rank = np.arange(1, 64)
    chosen = np.where(best == inside_zero, 0.0, nonzero_level)
    chosen = np.where(rank < last[:, None], chosen, 0.0)
    chosen = np.where(rank == last[:, None], nonzero_level, chosen)
    levels = np.zeros((n, 64), dtype=np.int64)
    levels[:, ZIGZAG[1:]] = (np.sign(r) * chosen).astype(np.int64)
    return levels.reshape(n, 8, 8)


class Quantised:
    """Levels chosen for a batch of blocks: what libjpeg decodes them to (``decoded``, the residual samples),
    the rebuilt blocks' squared error to the target and their modelled bits."""

    __slots__ = ("bits", "decoded", "levels", "sse")

    def __init__(self, levels: np.ndarray, decoded: np.ndarray, sse: np.ndarray, bits: np.ndarray) -> None:
        self.levels, self.decoded, self.sse, self.bits = levels, decoded, sse, bits

    def cost(self, lam: float) -> np.ndarray:
        return self.sse + lam * self.bits


def _sse(samples: np.ndarray, target: np.ndarray) -> np.ndarray:
    diff = samples.astype(np.int64) - target
    return (diff * diff).sum(axis=(1, 2))


def _in_range(levels: np.ndarray, qtable: np.ndarray) -> np.ndarray:
    out = islow_idct(levels.astype(np.int64) * qtable)
    return ((out >= IDCT_RANGE[0]) & (out <= IDCT_RANGE[1])).all(axis=(1, 2))


#: Blocks quantised per batch: every block's decision is its own (its DC reference is given), so batches give
#: the same levels as one call, and about twenty int64/float64 temporaries of a batch stay near 4 MB each
#: instead of 91 MB each for a 12-megapixel luma plane coded plain in one call (its encode peaked at 1.27 GB).
BATCH_BLOCKS = 8192


def quantise_blocks(
    target: np.ndarray,
    offset: np.ndarray | int,
    qtable: np.ndarray,
    lam: float | np.ndarray,
    *,
    rdo: bool = True,
    dc_reference: np.ndarray | None = None,
) -> Quantised:
    """Levels for ``[N, 8, 8]`` blocks ``target`` (int, 0..255) coded as a residual to ``offset`` (the
    prediction, or 128 for a plain block): the decoder will rebuild ``clip(offset + samples - 128)``.

    ``rdo=False`` gives plain rounding (what libjpeg's own quantiser does, up to its FDCT's rounding).
    ``qtable`` is the ``[8, 8]`` table (natural order); ``lam`` one lambda or one per block.
    """
    n = len(target)
    if n <= BATCH_BLOCKS:
        return _quantise_batch(target, offset, qtable, lam, rdo=rdo, dc_reference=dc_reference)

    offsets = np.broadcast_to(np.asarray(offset), target.shape)  # views: one offset and one lambda per block
    lams = np.broadcast_to(np.asarray(lam, dtype=np.float64), (n,))
    parts = [
        _quantise_batch(target[sl], offsets[sl], qtable, lams[sl], rdo=rdo,
                        dc_reference=None if dc_reference is None else dc_reference[sl])
        for sl in (slice(i, i + BATCH_BLOCKS) for i in range(0, n, BATCH_BLOCKS))
    ]
    return Quantised(*(np.concatenate([getattr(q, f) for q in parts]) for f in ("levels", "decoded", "sse", "bits")))


def _quantise_batch(
    target: np.ndarray,
    offset: np.ndarray | int,
    qtable: np.ndarray,
    lam: float | np.ndarray,
    *,
    rdo: bool,
    dc_reference: np.ndarray | None,
) -> Quantised:
    target = target.astype(np.int64)
    offset = np.asarray(offset, dtype=np.int64)
    if offset.ndim == 0:
        offset = np.broadcast_to(offset, target.shape)
    coeffs = fdct(target - offset) / qtable
    if rdo:
        ratio = np.abs(coeffs)
        levels = np.sign(coeffs) * np.floor(ratio + DEADZONE)
        levels[:, 0, 0] = np.rint(coeffs[:, 0, 0])
    else:
        levels = np.rint(coeffs)
    levels = levels.astype(np.int64)

    def decode(lv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        outputs = islow_idct(lv * qtable)
        residual = range_limit(outputs)
        inside = ((outputs >= IDCT_RANGE[0]) & (outputs <= IDCT_RANGE[1])).all(axis=(1, 2))
        return residual, _sse(np.clip(offset + residual.astype(np.int64) - 128, 0, 255), target), inside

    decoded, sse, inside = decode(levels)
    bits = block_bits(levels, dc_reference)
    if rdo:
        candidates = []
        if TRELLIS:
            trellis = trellis_levels(coeffs, qtable, lam)
            trellis[:, 0, 0] = levels[:, 0, 0]
            candidates.append(trellis)
        # The DC's other neighbour: matters where clamping hides part of the step (flat black or white).
        other = levels.copy()
        other[:, 0, 0] = np.where(coeffs[:, 0, 0] >= levels[:, 0, 0], levels[:, 0, 0] + 1, levels[:, 0, 0] - 1)
        candidates.append(other)
        # The block without its AC.
        dc_only = np.zeros_like(levels)
        dc_only[:, 0, 0] = levels[:, 0, 0]
        candidates.append(dc_only)
        for alt in candidates:
            alt_decoded, alt_sse, alt_inside = decode(alt)
            alt_bits = block_bits(alt, dc_reference)
            better = (alt_sse + lam * alt_bits < sse + lam * bits) & alt_inside
            if better.any():
                levels[better], decoded[better] = alt[better], alt_decoded[better]
                sse[better], bits[better], inside[better] = alt_sse[better], alt_bits[better], True
    bad = ~inside
    if bad.any():  # only contrived residuals get here: fall back to the plain rounding, AC halved until it fits
        fixed = np.rint(coeffs[bad]).astype(np.int64)
        while not _in_range(fixed, qtable).all():
            dc = fixed[:, 0, 0].copy()
            fixed = np.sign(fixed) * (np.abs(fixed) >> 1)  # towards zero, so the loop ends
            fixed[:, 0, 0] = dc
        levels[bad] = fixed
        residual = reconstruct(fixed, qtable)
        decoded[bad] = residual
        sse[bad] = _sse(np.clip(offset[bad] + residual.astype(np.int64) - 128, 0, 255), target[bad])
        bits[bad] = block_bits(fixed, None if dc_reference is None else dc_reference[bad])
    return Quantised(levels, decoded, sse, bits)
