"""Coding one plane: plain, or predicted in the closed loop with a rate-distortion choice per block.

Plain coding quantises every block against mid-grey, as JPEG does. Predicted
coding walks the tile fronts (:mod:`.tiles`); for each block the encoder
quantises both the residual to the network's prediction and the plain block
(:func:`.quantise.quantise_blocks`), and keeps whichever costs less in
``SSE + lambda * bits``. Where the predictor misses by more than the residual
can carry (text, hard edges, the first block), the plain block wins, so no
content comes out worse than plain coding would make it. The decoder reads
the block-mode map (:mod:`.block_modes`), predicts only the predicted blocks
from the same reconstructed neighbours, and adds the residual libjpeg decoded
(``docs/FORMAT.md`` §5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import jpeg
from .blocks import BLOCK, BlockPredictor, context_windows, gather_contexts
from .guide import guide_windows
from .quantise import block_bits, dc_bits, lagrangian, quantise_blocks
from .tiles import tile_fronts

__all__ = ["CodedPlane", "code_plain", "code_predicted", "decode_predicted", "decode_predicted_planes"]


@dataclass
class CodedPlane:
    """An encoder's plane: levels to entropy-code, block modes, and the decoder's exact reconstruction."""

    levels: np.ndarray  # [BY, BX, 8, 8] int64, natural order
    modes: np.ndarray  # [BY, BX] bool, True = predicted
    recon: np.ndarray  # [Hp, Wp] uint8
    sse: int
    block_sse: np.ndarray | None = None  # [BY, BX], plain coding only: what the closed loop reuses


def _as_blocks(plane: np.ndarray) -> np.ndarray:
    h, w = plane.shape
    return plane.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(0, 2, 1, 3)


def _from_blocks(blocks: np.ndarray) -> np.ndarray:
    by, bx = blocks.shape[:2]
    return blocks.transpose(0, 2, 1, 3).reshape(by * BLOCK, bx * BLOCK)


def _frame_edge_blocks(blocks: np.ndarray, by: np.ndarray, bx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """:func:`.jpeg.extend_frame` for single blocks at ``(by, bx)`` of a plane of ``shape``."""
    fh, fw = jpeg.frame_size(*shape)
    if (fh, fw) == shape:
        return blocks
    blocks = blocks.copy()
    for i in range(len(by)):
        rows, cols = fh - BLOCK * int(by[i]), fw - BLOCK * int(bx[i])
        if rows < BLOCK:
            blocks[i, rows:, :] = blocks[i, rows - 1 : rows, :]
        if cols < BLOCK:
            blocks[i, :, cols:] = blocks[i, :, cols - 1 : cols]
    return blocks


def _add_residual(prediction: np.ndarray, residual: np.ndarray) -> np.ndarray:
    return np.clip(prediction.astype(np.int16) + residual.astype(np.int16) - 128, 0, 255).astype(np.uint8)


def code_plain(plane: np.ndarray, qtable: np.ndarray, *, rdo: bool = True, lam: float | None = None) -> CodedPlane:
    """Every block against mid-grey: JPEG's own coding, with the encoder's level decisions."""
    blocks = _as_blocks(plane)
    by, bx = blocks.shape[:2]
    flat = blocks.reshape(-1, BLOCK, BLOCK)
    dc_guess = np.rint((flat.astype(np.float64).mean(axis=(1, 2)) - 128) * 8 / qtable[0, 0]).astype(np.int64)
    reference = np.concatenate([[0], dc_guess[:-1]])  # the scan codes each DC against the block before it
    lam = lagrangian(qtable) if lam is None else lam
    q = quantise_blocks(flat, 128, qtable, lam, rdo=rdo, dc_reference=reference)
    decoded = _from_blocks(q.decoded.reshape(by, bx, BLOCK, BLOCK))
    fh, fw = jpeg.frame_size(*decoded.shape)
    recon = jpeg.extend_frame(decoded[:fh, :fw], *decoded.shape)
    return CodedPlane(
        q.levels.reshape(by, bx, BLOCK, BLOCK),
        np.zeros((by, bx), dtype=bool),
        recon,
        int(q.sse.sum()),
        q.sse.reshape(by, bx),
    )


def _check_prediction(prediction: np.ndarray, n: int) -> np.ndarray:
    prediction = np.asarray(prediction)
    if prediction.dtype != np.uint8 or prediction.shape != (n, BLOCK, BLOCK):
        msg = f"predictor returned {prediction.dtype} {prediction.shape}, expected uint8 {(n, 8, 8)}"
        raise TypeError(msg)
    return prediction


def code_predicted(
    plane: np.ndarray,
    qtable: np.ndarray,
    predictor: BlockPredictor,
    index: int,
    tile: int,
    *,
    rdo: bool = True,
    force: bool = False,
    lam: float | None = None,
    plain: CodedPlane | None = None,
    guide: np.ndarray | None = None,
) -> CodedPlane:
    """The closed loop: each front predicted from reconstructed pixels, each block predicted or plain
    (``force``: every block predicted). ``lam`` defaults to the table's :func:`.quantise.lagrangian`.
    ``plain``, this plane's :func:`code_plain` with the same table, saves quantising every block twice:
    a plain block does not depend on the loop. ``guide``: a chroma plane's :func:`.guide.guide_plane`, for a
    luma-guided predictor."""
    h, w = plane.shape
    blocks_y, blocks_x = h // BLOCK, w // BLOCK
    lam = lagrangian(qtable) if lam is None else lam
    target_blocks = _as_blocks(plane)
    levels = np.zeros((blocks_y, blocks_x, BLOCK, BLOCK), dtype=np.int64)
    modes = np.zeros((blocks_y, blocks_x), dtype=bool)
    recon = np.zeros((h + 2 * BLOCK, w + 2 * BLOCK), dtype=np.uint8)
    if plain is not None:
        if plain.block_sse is None:
            msg = "plain= takes the CodedPlane that code_plain() returns (it carries the per-block error)"
            raise ValueError(msg)
        plain_blocks, plain_block_sse = _as_blocks(plain.recon), plain.block_sse
    sse = 0
    windows = context_windows(recon)
    for front in tile_fronts(blocks_y, blocks_x, tile):
        by, bx = front.by, front.bx
        contexts, available = gather_contexts(recon, by, bx, front.available, windows)
        prediction = _check_prediction(_predict(predictor, contexts, available, index, guide, by, bx), len(by))
        target = target_blocks[by, bx]
        # The scan codes a DC against the block before it in raster order: the left one, decoded already.
        reference = np.where(bx > 0, levels[by, np.maximum(bx - 1, 0), 0, 0], 0)
        predicted = quantise_blocks(target, prediction, qtable, lam, rdo=rdo, dc_reference=reference)
        if force:
            use = np.ones(len(by), dtype=bool)
            plain_levels, plain_decoded, plain_sse = predicted.levels, predicted.decoded, predicted.sse
        else:
            if plain is not None:
                plain_levels, plain_sse = plain.levels[by, bx], plain_block_sse[by, bx]
                plain_decoded = plain_blocks[by, bx]
            else:
                alone = quantise_blocks(target, 128, qtable, lam, rdo=rdo, dc_reference=reference)
                plain_levels, plain_decoded, plain_sse = alone.levels, alone.decoded, alone.sse
            # A plain block among predicted ones costs two DC jumps in the scan: its own (from the left
            # neighbour's level) and the next block's back to a residual DC near 0.
            plain_bits = block_bits(plain_levels, reference) + dc_bits(plain_levels[:, 0, 0])
            use = predicted.cost(lam) <= plain_sse + lam * plain_bits
        levels[by, bx] = np.where(use[:, None, None], predicted.levels, plain_levels)
        modes[by, bx] = use
        residual = np.where(use[:, None, None], predicted.decoded, plain_decoded)
        residual = _frame_edge_blocks(residual, by, bx, plane.shape)
        offset = np.where(use[:, None, None], prediction, np.uint8(128))
        rebuilt = _add_residual(offset, residual)
        sse += int(np.where(use, predicted.sse, plain_sse).sum())
        for i in range(len(by)):
            y, x = BLOCK * (by[i] + 1), BLOCK * (bx[i] + 1)
            recon[y : y + BLOCK, x : x + BLOCK] = rebuilt[i]
    return CodedPlane(levels, modes, recon[BLOCK:-BLOCK, BLOCK:-BLOCK].copy(), sse)


def _predict(
    predictor: BlockPredictor,
    contexts: np.ndarray,
    available: np.ndarray,
    plane: int | np.ndarray,
    guide: np.ndarray | None,
    by: np.ndarray,
    bx: np.ndarray,
) -> np.ndarray:
    """One predictor call; a luma-guided predictor gets the blocks' guide windows when the plane has a guide."""
    if guide is None:
        return predictor.predict(contexts, available, plane)
    return predictor.predict(contexts, available, plane, guide=guide_windows(guide, by, bx))


def _block_pixels(stride: int, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    """Flat indices ``[N, 64]`` of blocks ``(by, bx)`` in a plane with an 8-pixel border and row ``stride``."""
    inside = (np.arange(BLOCK)[:, None] * stride + np.arange(BLOCK)[None, :]).ravel()
    return (BLOCK * ((by + 1) * stride + bx + 1))[:, None] + inside[None, :]


def decode_predicted(
    residual: np.ndarray,
    modes: np.ndarray,
    predictor: BlockPredictor,
    index: int,
    tile: int,
    guide: np.ndarray | None = None,
) -> np.ndarray:
    """The plane rebuilt from libjpeg's decoded residual plane and the block modes: predicted blocks are
    ``clip(prediction + residual - 128)``, plain blocks the residual itself. ``guide`` as for
    :func:`code_predicted`."""
    return decode_predicted_planes([residual], [modes], predictor, [index], tile, None if guide is None else [guide])[0]


def decode_predicted_planes(
    residuals: list[np.ndarray],
    modes: list[np.ndarray],
    predictor: BlockPredictor,
    indices: list[int],
    tile: int,
    guides: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """:func:`decode_predicted` for several planes at once: front ``t`` of every plane is one predictor
    call. A front needs only the earlier fronts of its own plane (and, with ``guides``, one guide plane per
    plane, built from a plane decoded before), so the result is each plane's own decode; the calls are fewer
    and larger (the network's fixed cost per call and per-front numpy work were most of a 768x512 decode)."""
    recons, flats, windows, fronts = [], [], [], []
    for residual in residuals:
        h, w = residual.shape
        recon = np.zeros((h + 2 * BLOCK, w + 2 * BLOCK), dtype=np.uint8)
        recon[BLOCK:-BLOCK, BLOCK:-BLOCK] = residual
        recons.append(recon)
        flats.append(recon.reshape(-1))  # a view: writing it rebuilds the plane
        windows.append(context_windows(recon))  # a view too: it reads the blocks rebuilt so far
        fronts.append(tile_fronts(h // BLOCK, w // BLOCK, tile))
    for t in range(max((len(f) for f in fronts), default=0)):
        parts = []
        for p, plane_fronts in enumerate(fronts):
            if t >= len(plane_fronts):
                continue
            front = plane_fronts[t]
            keep = modes[p][front.by, front.bx]
            if keep.any():
                by, bx = front.by[keep], front.bx[keep]
                # Blocks not yet rebuilt hold their residual; the causal window never reads them (it reads
                # only earlier fronts, and masks the block itself, its right neighbour and the row below).
                contexts, available = gather_contexts(recons[p], by, bx, front.available[keep], windows[p])
                guide = None if guides is None else guide_windows(guides[p], by, bx)
                parts.append((p, _block_pixels(recons[p].shape[1], by, bx), contexts, available, guide))
        if not parts:
            continue
        counts = [len(part[2]) for part in parts]
        plane = np.repeat(np.asarray([indices[part[0]] for part in parts]), counts)
        contexts = parts[0][2] if len(parts) == 1 else np.concatenate([part[2] for part in parts])
        available = parts[0][3] if len(parts) == 1 else np.concatenate([part[3] for part in parts])
        index = indices[parts[0][0]] if len(parts) == 1 else plane
        if guides is None:
            raw = predictor.predict(contexts, available, index)
        else:
            guide = parts[0][4] if len(parts) == 1 else np.concatenate([part[4] for part in parts])
            raw = predictor.predict(contexts, available, index, guide=guide)
        prediction = _check_prediction(raw, len(plane)).reshape(-1, BLOCK * BLOCK)
        start = 0
        for (p, pixels, *_), n in zip(parts, counts):
            flat = flats[p]
            flat[pixels] = _add_residual(prediction[start : start + n], flat[pixels])
            start += n
    return [recon[BLOCK:-BLOCK, BLOCK:-BLOCK].copy() for recon in recons]
