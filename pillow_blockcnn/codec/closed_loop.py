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

import mmap
import threading
from dataclasses import dataclass

import numpy as np

from . import jpeg
from .blocks import BLOCK, BlockPredictor, block_offsets, context_windows, gather_contexts, neighbour_offsets
from .guide import guide_windows
from .quantise import block_bits, dc_bits, lagrangian, quantise_blocks
from .tiles import FrontOrder, front_order, tile_fronts

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


def code_plain(
    plane: np.ndarray, qtable: np.ndarray, *, rdo: bool = True, lam: float | np.ndarray | None = None
) -> CodedPlane:
    """Every block against mid-grey: JPEG's own coding, with the encoder's level decisions."""
    blocks = _as_blocks(plane)
    by, bx = blocks.shape[:2]
    flat = blocks.reshape(-1, BLOCK, BLOCK)
    dc_guess = np.rint((flat.astype(np.float64).mean(axis=(1, 2)) - 128) * 8 / qtable[0, 0]).astype(np.int64)
    reference = np.concatenate([[0], dc_guess[:-1]])  # the scan codes each DC against the block before it
    lam = lagrangian(qtable) if lam is None else lam
    q = quantise_blocks(flat, 128, qtable, np.ravel(lam) if np.ndim(lam) else lam, rdo=rdo, dc_reference=reference)
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
    lam: float | np.ndarray | None = None,
    plain: CodedPlane | None = None,
    guide: np.ndarray | None = None,
) -> CodedPlane:
    """The closed loop: each front predicted from reconstructed pixels, each block predicted or plain
    (``force``: every block predicted). ``lam`` defaults to the table's :func:`.quantise.lagrangian`; it
    may be a ``[BY, BX]`` map, one lambda per block (as for :func:`code_plain`).
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
    reader = _Reader(recon, predictor)
    for front in tile_fronts(blocks_y, blocks_x, tile):
        by, bx = front.by, front.bx
        prediction = _check_prediction(reader.predict(by, bx, front.available, index, guide), len(by))
        target = target_blocks[by, bx]
        # The scan codes a DC against the block before it in raster order: the left one, decoded already.
        reference = np.where(bx > 0, levels[by, np.maximum(bx - 1, 0), 0, 0], 0)
        lam_b = lam[by, bx] if np.ndim(lam) else lam
        predicted = quantise_blocks(target, prediction, qtable, lam_b, rdo=rdo, dc_reference=reference)
        if force:
            use = np.ones(len(by), dtype=bool)
            plain_levels, plain_decoded, plain_sse = predicted.levels, predicted.decoded, predicted.sse
        else:
            if plain is not None:
                plain_levels, plain_sse = plain.levels[by, bx], plain_block_sse[by, bx]
                plain_decoded = plain_blocks[by, bx]
            else:
                alone = quantise_blocks(target, 128, qtable, lam_b, rdo=rdo, dc_reference=reference)
                plain_levels, plain_decoded, plain_sse = alone.levels, alone.decoded, alone.sse
            # A plain block among predicted ones costs two DC jumps in the scan: its own (from the left
            # neighbour's level) and the next block's back to a residual DC near 0.
            plain_bits = block_bits(plain_levels, reference) + dc_bits(plain_levels[:, 0, 0])
            use = predicted.cost(lam_b) <= plain_sse + lam_b * plain_bits
        levels[by, bx] = np.where(use[:, None, None], predicted.levels, plain_levels)
        modes[by, bx] = use
        residual = np.where(use[:, None, None], predicted.decoded, plain_decoded)
        residual = _frame_edge_blocks(residual, by, bx, plane.shape)
        offset = np.where(use[:, None, None], prediction, np.uint8(128))
        rebuilt = _add_residual(offset, residual)
        sse += int(np.where(use, predicted.sse, plain_sse).sum())
        # one write-back per front (reader.flat is recon's memory), as the decoder's
        reader.flat[reader.origin(by, bx)[:, None] + reader.inside] = rebuilt.reshape(len(by), BLOCK * BLOCK)
    return CodedPlane(levels, modes, recon[BLOCK:-BLOCK, BLOCK:-BLOCK].copy(), sse)


class _Reader:
    """How a plane's blocks are shown to the predictor: the 256 neighbour pixels straight from the plane
    when it takes them (``predict_neighbours``), else the masked 24x24 windows (:class:`.blocks.BlockPredictor`).
    ``recon`` is the plane with its 8-pixel border, rebuilt block by block while the reader reads it."""

    def __init__(self, recon: np.ndarray, predictor: BlockPredictor) -> None:
        self.recon, self.flat, self.stride = recon, recon.reshape(-1), recon.shape[1]
        self.windows = context_windows(recon)
        self.neighbours = neighbour_offsets(self.stride)
        self.inside = block_offsets(self.stride)
        self.fast = getattr(predictor, "predict_neighbours", None)
        self.predictor = predictor

    def origin(self, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
        """Flat index in the bordered plane of each block's top-left pixel."""
        return BLOCK * ((by + 1) * self.stride + bx + 1)

    def inputs(
        self, by: np.ndarray, bx: np.ndarray, available: np.ndarray, origin: np.ndarray | None = None
    ) -> np.ndarray:
        """The blocks' neighbour pixels ``[N, 256]`` (unmasked) or masked windows ``[N, 24, 24]``."""
        if self.fast is not None:
            return self.flat[(self.origin(by, bx) if origin is None else origin)[:, None] + self.neighbours]
        return gather_contexts(self.recon, by, bx, available, self.windows)[0]

    def call(
        self, predictor: BlockPredictor, inputs: np.ndarray, available: np.ndarray, plane: int | np.ndarray,
        guide: np.ndarray | None,
    ) -> np.ndarray:
        """One predictor call on :meth:`inputs` (of one plane or several concatenated); ``guide``: the
        blocks' guide windows for a luma-guided predictor, else ``None``."""
        run = predictor.predict_neighbours if self.fast is not None else predictor.predict  # type: ignore[attr-defined]
        return run(inputs, available, plane) if guide is None else run(inputs, available, plane, guide=guide)

    def predict(
        self, by: np.ndarray, bx: np.ndarray, available: np.ndarray, plane: int, guide: np.ndarray | None
    ) -> np.ndarray:
        """One front of this plane; ``guide``: the plane's guide plane (luma-guided predictors) or ``None``."""
        windows = None if guide is None else guide_windows(guide, by, bx)
        return self.call(self.predictor, self.inputs(by, bx, available), available, plane, windows)


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


@dataclass
class _Frame:
    """The planes being rebuilt, in one buffer: each plane with an 8-pixel zero border, stacked top to bottom,
    every row as long as the widest. One row length means one set of neighbour offsets for every plane, so a
    front of blocks from all planes is one gather, one predictor call and one write-back, not one of each per
    plane (the per-front numpy work runs under the GIL, so it is what the threads queue on). Planes are
    addressed in *frame block rows*: plane ``p``'s block row ``by`` is frame block row ``rows[p] // 8 + by``.
    The chroma planes of a 4:2:0 file cost a Y plane's width of buffer rows: 6 MB more at 12 megapixels."""

    buffer: np.ndarray  # [sum(H + 16), max(W) + 16] uint8: residuals, replaced block by block by rebuilt pixels
    reader: _Reader  # shows the predictor the blocks rebuilt so far
    rows: list[int]  # each plane's first (border) row in the buffer, a multiple of 8
    shapes: list[tuple[int, int]]
    orders: list[FrontOrder]  # each plane's predicted blocks, in decoding order
    guides: list[np.ndarray] | None

    @classmethod
    def start(
        cls, residuals: list[np.ndarray], modes: list[np.ndarray], tile: int, guides: list[np.ndarray] | None,
        predictor: BlockPredictor,
    ) -> _Frame:
        shapes = [r.shape for r in residuals]
        rows = np.concatenate([[0], np.cumsum([h + 2 * BLOCK for h, _ in shapes])]).tolist()
        buffer = _mapped_zeros(rows[-1], max(w for _, w in shapes) + 2 * BLOCK)
        orders = []
        for residual, plane_modes, row in zip(residuals, modes, rows[:-1], strict=True):
            h, w = residual.shape
            buffer[row + BLOCK : row + BLOCK + h, BLOCK : BLOCK + w] = residual
            order = front_order(h // BLOCK, w // BLOCK, tile)
            orders.append(order.select(plane_modes[order.by, order.bx]))
        return cls(buffer, _Reader(buffer, predictor), rows[:-1], shapes, orders, guides)

    def plane(self, p: int) -> np.ndarray:
        """Plane ``p`` as it stands (a copy)."""
        (h, w), row = self.shapes[p], self.rows[p]
        return self.buffer[row + BLOCK : row + BLOCK + h, BLOCK : BLOCK + w].copy()


def _mapped_zeros(rows: int, cols: int) -> np.ndarray:
    """A zeroed ``[rows, cols]`` uint8 array in its own anonymous memory map, unmapped when the array goes.

    Not ``np.zeros``: glibc's malloc raises its mmap threshold to the size of each large block freed, so
    after a 24-megabyte frame (a 12-megapixel decode) every later allocation below that size, the
    deblocker's among them, came from the heap, which fragments and keeps its pages (export/NOTES.md, "The
    12-megapixel decode's memory"). A map of its own is returned to the system whole and leaves malloc alone."""
    return np.frombuffer(mmap.mmap(-1, max(1, rows * cols)), dtype=np.uint8)[: rows * cols].reshape(rows, cols)


#: :func:`_add_residual` of every (prediction, residual) pair, at ``prediction << 8 | residual``.
_REBUILT = _add_residual(np.repeat(np.arange(256, dtype=np.uint8), 256), np.tile(np.arange(256, dtype=np.uint8), 256))


def _balanced(sizes: dict[tuple[int, int], int], workers: int) -> list[list[tuple[int, int]]]:
    """``sizes`` (predicted blocks per (plane, tile)) shared among at most ``workers`` groups, largest first
    to the least loaded group, so the groups finish together."""
    groups: list[list[tuple[int, int]]] = [[] for _ in range(max(1, min(workers, len(sizes))))]
    load = [0] * len(groups)
    for unit in sorted(sizes, key=lambda u: -sizes[u]):
        g = load.index(min(load))
        groups[g].append(unit)
        load[g] += sizes[unit]
    return [group for group in groups if group]


def _rebuild_group(frame: _Frame, units: list[tuple[int, int]], predictor: BlockPredictor, indices: list[int]) -> None:
    """Rebuild the tiles ``units`` ((plane, tile) pairs): front ``t`` of all of them is one predictor call.

    A front needs only the earlier fronts of its own tile (and a guide plane decoded before), so the result
    is each tile's own decode whichever tiles share a call or a thread. Blocks not yet rebuilt hold their
    residual; the causal window never reads them (it masks the block itself, its right neighbour, the row
    below and every neighbour outside the tile, which another thread may be rebuilding)."""
    parts = []
    for p in sorted({p for p, _ in units}):
        order = frame.orders[p]
        order = order.select(np.isin(order.tile, [tile for q, tile in units if q == p]))
        parts.append((p, order))
    if not parts:
        return
    # every block of the group in decoding order: by front, then plane by plane (a stable sort of the planes'
    # orders concatenated), in frame block rows
    front = np.concatenate([order.front for _, order in parts])
    sort = np.argsort(front, kind="stable")
    front = front[sort]
    part = np.concatenate([np.full(len(order.by), i) for i, (_, order) in enumerate(parts)])[sort]
    by = np.concatenate([order.by for _, order in parts])[sort]
    gy = by + np.concatenate([np.full(len(order.by), frame.rows[p] // BLOCK) for p, order in parts])[sort]
    bx = np.concatenate([order.bx for _, order in parts])[sort]
    available = np.concatenate([order.available for _, order in parts])[sort]
    plane_index = np.asarray([indices[p] for p, _ in parts])[part]
    one_plane = len(parts) == 1
    fronts = int(front[-1]) + 1 if len(front) else 0
    bounds = np.searchsorted(front, np.arange(fronts + 1)).tolist()  # Python ints slice faster
    origin = frame.reader.origin(gy, bx)
    reader = frame.reader
    flat, inside = reader.flat, reader.inside
    for t in range(fronts):
        a, b = bounds[t], bounds[t + 1]
        if a == b:
            continue
        guide = None
        if frame.guides is not None:
            guide = np.concatenate([
                guide_windows(frame.guides[parts[i][0]], by[a:b][part[a:b] == i], bx[a:b][part[a:b] == i])
                for i in np.unique(part[a:b])
            ])
        inputs = reader.inputs(gy[a:b], bx[a:b], available[a:b], origin[a:b])
        index = int(plane_index[0]) if one_plane else plane_index[a:b]
        raw = reader.call(predictor, inputs, available[a:b], index, guide)
        pixels = origin[a:b, None] + inside
        code = _check_prediction(raw, b - a).reshape(-1, BLOCK * BLOCK).astype(np.intp)
        code <<= 8
        code += flat[pixels]
        flat[pixels] = _REBUILT[code]  # _add_residual as one table lookup: this runs once per front


def decode_predicted_planes(
    residuals: list[np.ndarray],
    modes: list[np.ndarray],
    predictor: BlockPredictor,
    indices: list[int],
    tile: int,
    guides: list[np.ndarray] | None = None,
    workers: int = 1,
) -> list[np.ndarray]:
    """:func:`decode_predicted` for several planes at once: front ``t`` of every tile of every plane is one
    predictor call (the network's fixed cost per call and the per-front numpy work were most of a 768x512
    decode), and with ``workers`` > 1 the tiles are shared among that many threads, each making its own
    calls (``predictor`` must then serve concurrent calls: see :class:`.blocks.BlockPredictor`'s
    ``concurrency``). ``guides``: one guide plane per plane, built from a plane decoded before. Every block
    comes out the same whatever ``workers`` is."""
    frame = _Frame.start(residuals, modes, tile, guides, predictor)
    sizes: dict[tuple[int, int], int] = {}
    for p, order in enumerate(frame.orders):
        tiles, counts = np.unique(order.tile, return_counts=True)
        sizes.update({(p, int(tile)): int(count) for tile, count in zip(tiles, counts, strict=True)})
    groups = _balanced(sizes, workers)
    errors: list[BaseException] = []

    def rebuild(units: list[tuple[int, int]]) -> None:
        try:
            _rebuild_group(frame, units, predictor, indices)
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    # One thread per group, the caller's among them (a pool may run two groups on one thread).
    threads = [threading.Thread(target=rebuild, args=(group,), daemon=True) for group in groups[1:]]
    for thread in threads:
        thread.start()
    if groups:
        rebuild(groups[0])
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [frame.plane(p) for p in range(len(residuals))]
