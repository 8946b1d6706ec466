"""Would signalled intra modes beside the network save bits? A closed-loop estimate before any format change.

    python -m export.studies.intra_modes --json results/studies/intra_modes.json

Issue 18 wants prediction to code 3 points of BD-rate smaller than ``pred-1`` did; ``pred-2`` codes at its rate, and
the strength study found it calibrated (``prediction_strength``). A network that must hedge between the
directions an edge may take predicts their average; a video codec instead lets the encoder pick one of a few
simple predictors per block and pays a few bits to say which (AV1's DC, smooth, Paeth and directional modes).
This study adds such candidates to the encoder's real closed loop: each predicted block may take the network's
prediction, its mean alone, or one of the classical modes computed from the same rebuilt neighbours, whichever
costs least in ``SSE + lambda * (bits + mode bits)``. The file's size is then the container (its binary
predicted/plain map included) plus the zeroth-order entropy of the chosen candidates over the predicted blocks
of each plane, what an adaptive coder of a mode symbol would spend. If the BD-rate (PSNR-RGB before restoration,
against ``pred-2`` alone) is clearly below -1%, the modes are worth a format change; otherwise they are not.

The classical modes here are float sketches of AV1's (linear interpolation along 7 angles, DC, smooth, Paeth),
rounded to integers: enough to size the gain, not yet the exact arithmetic a format would define.
Held-out training images only (split seed 1234), never Kodak, LIVE1 or Classic5.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np

from export.data.bcnn_pack import split
from export.data.crops import centre_crops
from export.evaluation.bdrate import bd_rates
from export.evaluation.metrics import psnr
from export.evaluation.report import emit, machine
from pillow_blockcnn import codec, runtime
from pillow_blockcnn.codec import closed_loop, image
from pillow_blockcnn.codec.blocks import BLOCK, BlockPredictor
from pillow_blockcnn.codec.quantise import block_bits, dc_bits, lagrangian, quantise_blocks
from pillow_blockcnn.codec.tiles import tile_fronts
from pillow_blockcnn.format import container

#: AV1's smooth-predictor weights for 8-sample blocks.
_SMOOTH = np.array([255, 197, 146, 105, 73, 50, 37, 32], dtype=np.float64) / 256
ANGLES = (45, 67, 90, 113, 135, 157, 180)
CANDIDATES = ("net", "net-mean", "dc", "smooth", "paeth", *(f"d{a}" for a in ANGLES))


def _edges(neighbours: np.ndarray, available: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top [N, 16]: the above and above-right blocks' last rows, the latter replicated from the above's last
    pixel where missing; left [N, 8]: the left block's last column; corner [N])."""
    n = neighbours.reshape(-1, 4, BLOCK, BLOCK).astype(np.float64)
    above, above_right, left_block = n[:, 1, 7, :], n[:, 2, 7, :], n[:, 3, :, 7]
    above_right = np.where(available[:, 2:3], above_right, above[:, 7:8])
    corner = np.where(available[:, 0], n[:, 0, 7, 7], np.where(available[:, 1], above[:, 0], left_block[:, 0]))
    return np.concatenate([above, above_right], axis=1), left_block, corner


def _directional(top: np.ndarray, left: np.ndarray, corner: np.ndarray, angle: float) -> np.ndarray:
    """Each pixel the edge sample its direction points back to, linearly interpolated (AV1's convention:
    90 degrees is vertical, 180 horizontal, below 90 leans toward the above-right)."""
    n = len(top)
    ys, xs = np.mgrid[0:BLOCK, 0:BLOCK].astype(np.float64)
    # edge: index 0 = corner, 1..16 = top; the left edge goes down from the corner
    top_edge = np.concatenate([corner[:, None], top], axis=1)  # x = -1 .. 15
    left_edge = np.concatenate([corner[:, None], left, np.repeat(left[:, -1:], 8, axis=1)], axis=1)  # y = -1 .. 15
    rad = math.radians(angle)
    dx, dy = math.cos(rad), math.sin(rad)  # direction toward the source, up is +dy
    out = np.empty((n, BLOCK, BLOCK))
    if dy > 1e-9:
        # where the ray from (y, x) upward hits row -1
        t_top = (ys + 1) / dy
        x_hit = xs + dx * t_top
    else:
        x_hit = np.full_like(xs, -np.inf)
    use_top = x_hit >= -1
    if dx < -1e-9:
        t_left = (xs + 1) / (-dx)
        y_hit = ys - dy * t_left
    else:
        y_hit = np.full_like(ys, np.inf)

    def sample(edge: np.ndarray, pos: np.ndarray) -> np.ndarray:
        p = np.clip(pos + 1, 0, edge.shape[1] - 1)
        i0 = np.floor(p).astype(int)
        i1 = np.minimum(i0 + 1, edge.shape[1] - 1)
        f = p - i0
        return edge[:, i0] * (1 - f) + edge[:, i1] * f

    out[:] = np.where(use_top, sample(top_edge, np.where(use_top, x_hit, 0)), sample(left_edge, np.where(use_top, 0, y_hit)))
    return out


def classical(neighbours: np.ndarray, available: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[K, N, 8, 8]`` uint8 predictions of the classical modes (``CANDIDATES[2:]``) and ``[K, N]`` bool: whether
    each mode has the neighbours it reads."""
    top, left, corner = _edges(neighbours, available)
    has_top, has_left = available[:, 1], available[:, 3]
    both = has_top & has_left
    preds, usable = [], []
    dc = np.where(both, (top[:, :8].sum(1) + left.sum(1)) / 16, np.where(has_top, top[:, :8].mean(1), left.mean(1)))
    preds.append(np.broadcast_to(dc[:, None, None], (len(top), 8, 8)))
    usable.append(has_top | has_left)
    w = _SMOOTH
    smooth = (w[None, :, None] * top[:, None, :8] + (1 - w)[None, :, None] * left[:, None, 7:8]
              + w[None, None, :] * left[:, :, None] + (1 - w)[None, None, :] * top[:, None, 7:8]) / 2
    preds.append(smooth)
    usable.append(both)
    base = top[:, None, :8] + left[:, :, None] - corner[:, None, None]
    d_top, d_left, d_corner = (np.abs(base - top[:, None, :8]), np.abs(base - left[:, :, None]),
                               np.abs(base - corner[:, None, None]))
    paeth = np.where((d_left <= d_top) & (d_left <= d_corner), left[:, :, None] * np.ones((1, 1, 8)),
                     np.where(d_top <= d_corner, top[:, None, :8] * np.ones((1, 8, 1)), corner[:, None, None] * np.ones((1, 8, 8))))
    preds.append(paeth)
    usable.append(both)
    for angle in ANGLES:
        preds.append(_directional(top, left, corner, angle))
        usable.append(has_top if angle <= 90 else (has_left if angle >= 180 else both))
    out = np.clip(np.rint(np.stack(preds)), 0, 255).astype(np.uint8)
    return out, np.stack(usable)


def entropy_bits(counts: np.ndarray) -> float:
    """The zeroth-order entropy of symbols drawn ``counts`` times each, in bits per symbol (0 for none)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() == 0:
        return 0.0
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # not -0.0 for one kind


class Recorder:
    """The candidates the closed loop chose, per plane call, for the side-information estimate."""

    def __init__(self, kinds: int) -> None:
        self.kinds = kinds
        self.choices: list[np.ndarray] = []
        #: ``[kinds, kinds]`` counts of (the left block's choice, this block's) over predicted blocks whose left
        #: neighbour is predicted: whether a context could code the choice for less than its entropy
        self.pairs = np.zeros((kinds, kinds), dtype=np.int64)

    def record(self, chosen: np.ndarray, modes: np.ndarray) -> None:
        """One plane's choices ``[BY, BX]`` where ``modes`` (predicted) holds."""
        self.choices.append(chosen[modes])
        both = modes[:, 1:] & modes[:, :-1]
        np.add.at(self.pairs, (chosen[:, :-1][both], chosen[:, 1:][both]), 1)

    def side_bits(self) -> float:
        """Zeroth-order entropy of the chosen candidate over each plane's predicted blocks, in bits."""
        # + a small header per plane: the adaptive coder's start
        return sum(len(chosen) * entropy_bits(np.bincount(chosen, minlength=self.kinds)) + 4 * self.kinds
                   for chosen in self.choices)


#: ``(neighbours [N, 256], available [N, 4], plane index, the network's prediction [N, 8, 8])`` ->
#: ``(candidates [K, N, 8, 8] uint8, usable [K, N] bool)``: the predictions a block may choose among.
Candidates = Callable[[np.ndarray, np.ndarray, int, np.ndarray], tuple[np.ndarray, np.ndarray]]


def network_and_classical(enabled: tuple[str, ...]) -> Candidates:
    """The network's prediction, its mean alone and the classical modes, those of ``enabled`` only."""
    keep = np.array([c in enabled for c in CANDIDATES])

    def candidates(neighbours: np.ndarray, available: np.ndarray, index: int, net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(net)
        net_mean = np.rint(net.reshape(n, -1).astype(np.float64).mean(1))[:, None, None] * np.ones((1, 8, 8))
        extra, usable = classical(neighbours, available)
        cands = np.concatenate([net[None], net_mean.astype(np.uint8)[None], extra])
        return cands, np.concatenate([np.ones((2, n), dtype=bool), usable]) & keep[:, None]

    return candidates


#: ``(candidates [K, N, 8, 8], decoded residuals [K, N, 8, 8], neighbours [N, 256], available [N, 4])`` ->
#: ``[K, N]``: the candidate a decoder would derive for each block from the residual coded against candidate k.
Derive = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def code_with_candidates(
    recorder: Recorder, mode_bits: float, free: int | None, candidates: Candidates,
    plane: np.ndarray, qtable: np.ndarray, predictor: BlockPredictor, index: int, tile: int, *,
    rdo: bool = True, force: bool = False, lam: float | np.ndarray | None = None,
    plain: closed_loop.CodedPlane | None = None, guide: np.ndarray | None = None, derive: Derive | None = None,
) -> closed_loop.CodedPlane:
    """:func:`closed_loop.code_predicted` with a choice among candidate predictions per predicted block; the RD
    choice charges ``mode_bits`` for every candidate but ``free`` (``None``: every one). ``derive``: the
    decoder derives the choice itself, so a candidate is usable only where the rule recovers it."""
    h, w = plane.shape
    blocks_y, blocks_x = h // BLOCK, w // BLOCK
    lam = lagrangian(qtable) if lam is None else lam
    target_blocks = closed_loop._as_blocks(plane)
    levels = np.zeros((blocks_y, blocks_x, BLOCK, BLOCK), dtype=np.int64)
    modes = np.zeros((blocks_y, blocks_x), dtype=bool)
    chosen = np.zeros((blocks_y, blocks_x), dtype=np.int64)
    recon = np.zeros((h + 2 * BLOCK, w + 2 * BLOCK), dtype=np.uint8)
    assert plain is not None
    assert plain.block_sse is not None
    plain_blocks, plain_block_sse = closed_loop._as_blocks(plain.recon), plain.block_sse
    sse = 0
    reader = closed_loop._Reader(recon, predictor)
    assert reader.fast is not None
    for front in tile_fronts(blocks_y, blocks_x, tile):
        by, bx = front.by, front.bx
        n = len(by)
        neighbours = reader.inputs(by, bx, front.available)
        net = reader.call(predictor, neighbours, front.available, index, None)
        cands, usable = candidates(neighbours, front.available, index, net)
        target = target_blocks[by, bx]
        reference = np.where(bx > 0, levels[by, np.maximum(bx - 1, 0), 0, 0], 0)
        lam_b = lam[by, bx] if np.ndim(lam) else lam
        lam_v = np.broadcast_to(np.asarray(lam_b, dtype=np.float64), (n,))
        quantised = [quantise_blocks(target, c, qtable, lam_b, rdo=rdo, dc_reference=reference) for c in cands]
        costs = np.stack([q.cost(lam_b) + lam_v * (0 if k == free else mode_bits) for k, q in enumerate(quantised)])
        if derive is not None:
            derived = derive(cands, np.stack([q.decoded for q in quantised]), neighbours, front.available)
            usable = usable & (derived == np.arange(len(cands))[:, None])
        costs[~usable] = np.inf
        best = costs.argmin(0)
        rows = np.arange(n)
        best_levels = np.stack([q.levels for q in quantised])[best, rows]
        best_decoded = np.stack([q.decoded for q in quantised])[best, rows]
        best_sse = np.stack([q.sse for q in quantised])[best, rows]
        best_pred = cands[best, rows]
        plain_levels, plain_sse = plain.levels[by, bx], plain_block_sse[by, bx]
        plain_decoded = plain_blocks[by, bx]
        plain_bits = block_bits(plain_levels, reference) + dc_bits(plain_levels[:, 0, 0])
        use = costs[best, rows] <= plain_sse + lam_v * plain_bits
        levels[by, bx] = np.where(use[:, None, None], best_levels, plain_levels)
        modes[by, bx] = use
        chosen[by, bx] = best
        residual = np.where(use[:, None, None], best_decoded, plain_decoded)
        residual = closed_loop._frame_edge_blocks(residual, by, bx, plane.shape)
        offset = np.where(use[:, None, None], best_pred, np.uint8(128))
        rebuilt = closed_loop._add_residual(offset, residual)
        sse += int(np.where(use, best_sse, plain_sse).sum())
        reader.flat[reader.origin(by, bx)[:, None] + reader.inside] = rebuilt.reshape(n, BLOCK * BLOCK)
    recorder.record(chosen, modes)
    return closed_loop.CodedPlane(levels, modes, recon[BLOCK:-BLOCK, BLOCK:-BLOCK].copy(), sse)


def rd_points(
    image_px: np.ndarray, qualities: list[int], model: str, tables: str,
    candidates: Callable[[int], Candidates] | None, mode_bits: float, free: int | None, names: tuple[str, ...],
    side_info: bool = True, derive: Derive | None = None,
) -> tuple[list[tuple[float, float]], dict, np.ndarray]:
    """(bits per pixel, PSNR-RGB before restoration) at each quality, and how often each candidate was chosen;
    ``candidates`` (per quality) ``None``: the network alone, the shipped closed loop. ``side_info=False``
    counts the choices as free: the bound no coding of them can beat. Also returns :attr:`Recorder.pairs`
    summed over the qualities."""
    points, usage = [], np.zeros(len(names), dtype=np.int64)
    pairs = np.zeros((len(names), len(names)), dtype=np.int64)
    for q in qualities:
        predictor = runtime.predictor_for(model, q)
        recorder = Recorder(len(names))
        if candidates is None:
            encoded = codec.encode(image_px, "RGB", q, tables=tables, predictor=predictor, reconstruct=True)
            extra = 0.0
        else:
            chooser = candidates(q)

            def patched(*a, **k):
                return code_with_candidates(recorder, mode_bits, free, chooser, *a, derive=derive, **k)

            with mock.patch.object(image, "code_predicted", patched):
                encoded = codec.encode(image_px, "RGB", q, tables=tables, predictor=predictor, reconstruct=True)
            # Every plane coded predicted is charged its symbols, also one the file then codes plain: the
            # estimate errs against the candidates.
            extra = recorder.side_bits() if side_info and encoded.container.header.predicted else 0.0
            for c in recorder.choices:
                usage += np.bincount(c, minlength=len(names))
            pairs += recorder.pairs
        bits = 8 * len(container.write_container(encoded.container)) + extra
        points.append((bits / (image_px.shape[0] * image_px.shape[1]), psnr(image_px, encoded.reconstruction)))
    return points, {c: int(u) for c, u in zip(names, usage, strict=True)}, pairs


def choice_entropies(pairs: np.ndarray) -> dict[str, float]:
    """From :attr:`Recorder.pairs`: the entropy of a block's choice, and given its left neighbour's, in bits."""
    total = pairs.sum()
    given = sum(row.sum() / total * entropy_bits(row) for row in pairs) if total else 0.0
    return {"bits": round(entropy_bits(pairs.sum(axis=0)), 3), "bits_given_left": round(float(given), 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, nargs=2, default=(256, 384), metavar=("H", "W"))
    ap.add_argument("--qualities", type=int, nargs="+", default=[10, 20, 30, 40, 60])
    ap.add_argument("--model", default="pred-2")
    ap.add_argument("--tables", default="balanced")
    ap.add_argument("--mode-bits", type=float, default=3.0, help="bits the RD choice charges a non-network candidate")
    ap.add_argument("--sets", nargs="+", default=["all", "net-mean", "classical"],
                    help="candidate sets: all, net-mean (network and its mean), classical (network and AV1-like modes)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    _, held_out = split()
    images = centre_crops(held_out, *args.size, count=args.images, either_orientation=True)
    start = time.perf_counter()
    sets = {"all": CANDIDATES, "net-mean": CANDIDATES[:2], "classical": (CANDIDATES[0], *CANDIDATES[2:])}
    base = [rd_points(im, args.qualities, args.model, args.tables, None, 0.0, 0, ("net",))[0] for im in images]
    result: dict = {"machine": machine(), "images": len(images), "size": list(args.size), "qualities": args.qualities,
                    "model": args.model, "tables": args.tables, "mode_bits": args.mode_bits, "sets": {}}
    for name in args.sets:
        chooser = network_and_classical(sets[name])
        curves, usage = [], dict.fromkeys(CANDIDATES, 0)
        for im in images:
            pts, used, _ = rd_points(im, args.qualities, args.model, args.tables, lambda q, c=chooser: c,
                                     args.mode_bits, 0, CANDIDATES)
            curves.append(pts)
            usage = {c: usage[c] + used[c] for c in CANDIDATES}
        per_image = bd_rates(base, curves)
        result["sets"][name] = {"bd_rate_mean_pct": round(float(np.mean(per_image)), 3),
                                "bd_rate_per_image_pct": [round(b, 2) for b in per_image],
                                "usage": {c: u for c, u in usage.items() if u}}
        print(name, result["sets"][name], flush=True)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return emit(result, args.json)


if __name__ == "__main__":
    main()
