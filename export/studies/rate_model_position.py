"""A rate model with costs by zig-zag position, and what the encoder's choices gain from it (a study: no).

The shipped model (:func:`pillow_blockcnn.codec.quantise.block_bits`) charges every non-zero AC level the same
``_BIT_NZ`` and a block's end ``_BIT_LAST`` per zig-zag rank: six numbers fitted to whole planes' coded sizes
(``results/studies/rate_model.json``). JPEG's arithmetic coder (T.81 F.1.4.2) keeps a context per position for
each decision (end of block here or not, zero here or not) and codes magnitudes in two bands (up to Kx = 5 and
beyond). This model adds what plane totals can identify of that: a non-zero level costs ``a + b k`` at rank
``k``, a zero before the block's last non-zero level ``c + d k``, the end ``e`` per rank, and a magnitude its
``log2`` times a cost per band. (One free cost per rank was tried first: plane totals cannot tell the ranks
apart, and the fit came out with negative and runaway costs that wrecked the encoder.) It is fitted, as
``fit_rate_model``, to Y and Cb planes of training images at qualities 5..95 with both quantisers and the JPEG
and PSNR tables, and scored on planes of other training images.

``--tune-rdo`` then runs ``tune_rdo``'s measurement with this model in every decision of ``quantise`` and
``closed_loop`` and the trellis of ``quantise.trellis_levels`` on its costs (patched for the run; nothing
shipped changes)::

    python -m export.studies.rate_model_position --tune-rdo --json results/studies/rate_model_position.json
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from export.evaluation.report import emit, machine
from export.studies.fit_rate_model import coded_planes
from pillow_blockcnn.codec import closed_loop, quantise
from pillow_blockcnn.codec.dct import ZIGZAG
from pillow_blockcnn.codec.quantise import trellis_levels

#: Kx of T.81 (libjpeg's default ``arith_ac_K``): the magnitude contexts differ up to rank 5 and beyond it.
KX = 5
FEATURES = ["blocks", "nz", "nz_rank", "zr", "zr_rank", "last_rank", "mag_low", "mag_high", "dc_nonzero", "dc_log2"]
RANKS = np.arange(1, 64)


def _ranked(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[N, 63]`` AC magnitudes in zig-zag order (ranks 1..63) and each block's last non-zero rank (0: none)."""
    mag = np.abs(levels.reshape(len(levels), 64)[:, ZIGZAG[1:]].astype(np.int64))
    last = np.where(mag > 0, RANKS, 0).max(axis=1)
    return mag, last


def block_features(levels: np.ndarray, dc_reference: np.ndarray | int = 0) -> np.ndarray:
    """``[N, len(FEATURES)]`` per block: 1; the non-zero AC levels' count and rank sum; the zeros before the
    last non-zero level, count and rank sum; the last non-zero rank; ``log2 |level|`` summed up to rank KX and
    beyond; the DC difference's non-zero flag and ``log2``."""
    mag, last = _ranked(levels)
    nz = mag > 0
    zr = ~nz & (RANKS < last[:, None])
    log_mag = np.log2(np.maximum(mag, 1))
    dc = np.abs(levels[:, 0, 0].astype(np.int64) - dc_reference)
    return np.stack([
        np.ones(len(levels)), nz.sum(axis=1), (nz * RANKS).sum(axis=1), zr.sum(axis=1), (zr * RANKS).sum(axis=1),
        last, log_mag[:, :KX].sum(axis=1), log_mag[:, KX:].sum(axis=1), dc > 0, np.log2(np.maximum(dc, 1)),
    ], axis=1).astype(np.float64)


class PositionModel:
    """The fitted coefficients as per-rank costs: ``nz[k] = a + b k``, ``zr[k] = c + d k``, ``eob[k] = e k``,
    the magnitude's cost per ``log2`` by band."""

    def __init__(self, coef: np.ndarray) -> None:
        self.coef = coef
        block, nz, nz_rank, zr, zr_rank, last, mag_low, mag_high, self.dc_nz, self.dc_log2 = coef
        self.block = block
        self.nz = nz + nz_rank * RANKS
        self.zr = zr + zr_rank * RANKS
        self.eob = last * np.arange(64)
        self.mag = np.where(RANKS <= KX, mag_low, mag_high)

    def bits(self, levels: np.ndarray, dc_reference: np.ndarray | None = None) -> np.ndarray:
        """Like ``quantise.block_bits``: modelled bits of each ``[N, 8, 8]`` level block."""
        return block_features(levels, 0 if dc_reference is None else dc_reference) @ self.coef

    def dc_bits(self, difference: np.ndarray) -> np.ndarray:
        mag = np.abs(np.asarray(difference, dtype=np.int64))
        return np.where(mag > 0, self.dc_nz + self.dc_log2 * np.log2(np.maximum(mag, 1)), 0.0)

    def rank_costs(self) -> quantise.RankCosts:
        """The AC costs for ``quantise.trellis_levels``."""
        return quantise.RankCosts(nonzero=self.nz, inside_zero=self.zr, end=self.eob, magnitude=self.mag)

    def trellis(self, ratio: np.ndarray, qtable: np.ndarray, lam: float | np.ndarray) -> np.ndarray:
        """``quantise.trellis_levels`` for this model's costs."""
        return trellis_levels(ratio, qtable, lam, self.rank_costs())


def planes(paths: list[Path]) -> Iterator[tuple[np.ndarray, float, float]]:
    """(plane feature totals, coded bits, shipped-model bits) of ``fit_rate_model``'s planes."""
    for levels, bits in coded_planes(paths):
        reference = np.concatenate([[0], levels[:-1, 0, 0]])
        yield (block_features(levels, reference).sum(axis=0), float(bits),
               float(quantise.block_bits(levels, reference).sum()))


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares of whole planes' coded bits on their feature totals."""
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef


@contextlib.contextmanager
def using(model: PositionModel) -> Iterator[None]:
    """The encoder's decisions (``quantise`` and ``closed_loop``) with ``model``'s bits and trellis."""
    saved = (quantise.block_bits, quantise.dc_bits, closed_loop.block_bits, closed_loop.dc_bits,
             quantise.trellis_levels, quantise.TRELLIS)
    quantise.block_bits = closed_loop.block_bits = model.bits
    quantise.dc_bits = closed_loop.dc_bits = model.dc_bits
    quantise.trellis_levels, quantise.TRELLIS = model.trellis, True
    try:
        yield
    finally:
        (quantise.block_bits, quantise.dc_bits, closed_loop.block_bits, closed_loop.dc_bits,
         quantise.trellis_levels, quantise.TRELLIS) = saved


def _errors(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    err = np.abs(pred - y) / y
    return {"median_relative_error": float(np.median(err)), "p90_relative_error": float(np.quantile(err, 0.9))}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--images", type=int, default=24, help="fitted on these, scored on as many others")
    ap.add_argument("--tune-rdo", action="store_true", help="also the BD-rate of the encoder with this model")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    paths = sorted(args.data.glob("*.png"))
    step = max(1, len(paths) // (2 * args.images))
    picked = paths[::step][: 2 * args.images]
    fit_paths, test_paths = picked[0::2], picked[1::2]
    train = list(planes(fit_paths))
    test = list(planes(test_paths))
    x, y = np.array([t[0] for t in train]), np.array([t[1] for t in train])
    model = PositionModel(fit(x, y))
    xt, yt = np.array([t[0] for t in test]), np.array([t[1] for t in test])
    result: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "data": f"{args.data}: fitted on {len(fit_paths)} PNG images, scored on {len(test_paths)} others "
        "(q 5/15/30/50/75/95, tables jpeg+mse, Y and Cb, plain rounding and the encoder's choices)",
        "planes": {"fit": len(y), "scored": len(yt)},
        "shipped_model_on_scored": _errors(np.array([t[2] for t in test]), yt),
        "position_model_on_scored": _errors(xt @ model.coef, yt),
        "coefficients": dict(zip(FEATURES, model.coef.round(4).tolist(), strict=True)),
    }
    print({k: result[k] for k in ("shipped_model_on_scored", "position_model_on_scored")}, flush=True)
    if args.tune_rdo:
        from export.evaluation.bdrate import bd_rate, select_up_to
        from export.studies import tune_rdo

        images = tune_rdo.crops(args.data, 12)
        ref = select_up_to(*tune_rdo.jpeg_curve(images), 1.0)
        rows = {"shipped": bd_rate(*ref, *select_up_to(*tune_rdo.bcnn_curve(images), 1.0))}
        with using(model):
            rows["position model, trellis"] = bd_rate(*ref, *select_up_to(*tune_rdo.bcnn_curve(images), 1.0))
        result["tune_rdo_bd_rate_pct"] = rows
        print(rows, flush=True)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return emit(result, args.json)


if __name__ == "__main__":
    main()
