"""The closed prediction loop: blocks in wavefront order, each predicted from reconstructed neighbours.

Encoder and decoder walk the same fronts (:func:`.blocks.wavefronts`). The
encoder codes each front's residual ``clip(x - prediction + 128)`` and decodes
it exactly as the decoder will (:func:`.jpeg.roundtrip_blocks`), so both sides
feed the predictor the same pixels; the decoder adds the stored residual to
the same prediction (``docs/FORMAT.md`` §5).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import jpeg
from .blocks import BLOCK, BlockPredictor, gather_contexts, wavefronts

__all__ = ["decode_predicted_plane", "encode_predicted_plane"]


def _predict_loop(
    shape: tuple[int, int],
    predictor: BlockPredictor,
    plane_index: int,
    code_front: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Walk the fronts; ``code_front(by, bx, prediction)`` returns the reconstructed blocks."""
    h, w = shape
    recon = np.zeros((h + 2 * BLOCK, w + 2 * BLOCK), dtype=np.uint8)
    for by, bx in wavefronts(h // BLOCK, w // BLOCK):
        contexts, available = gather_contexts(recon, by, bx)
        prediction = np.asarray(predictor.predict(contexts, available, plane_index))
        if prediction.dtype != np.uint8 or prediction.shape != (len(by), BLOCK, BLOCK):
            msg = f"predictor returned {prediction.dtype} {prediction.shape}, expected uint8 {(len(by), 8, 8)}"
            raise TypeError(msg)
        blocks = code_front(by, bx, prediction)
        for i in range(len(by)):
            y, x = BLOCK * (by[i] + 1), BLOCK * (bx[i] + 1)
            recon[y : y + BLOCK, x : x + BLOCK] = blocks[i]
    return recon[BLOCK:-BLOCK, BLOCK:-BLOCK]


def _blocks_at(plane: np.ndarray, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    rows = (BLOCK * by)[:, None] + np.arange(BLOCK)
    cols = (BLOCK * bx)[:, None] + np.arange(BLOCK)
    return plane[rows[:, :, None], cols[:, None, :]]


def _add_residual(prediction: np.ndarray, residual: np.ndarray) -> np.ndarray:
    return np.clip(prediction.astype(np.int16) + residual.astype(np.int16) - 128, 0, 255).astype(np.uint8)


def _frame_edge(blocks: np.ndarray, by: np.ndarray, bx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Blocks as a JPEG frame cut to libjpeg's side limit holds them (:func:`.jpeg.frame_size`): rows and
    columns beyond the frame are copies of its last row and column, in what is coded and in what is decoded."""
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


def encode_predicted_plane(
    plane: np.ndarray, qtable: list[int], predictor: BlockPredictor, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Closed loop: returns (residual plane to code, reconstruction the decoder will produce)."""
    residual = np.empty_like(plane)

    def code_front(by: np.ndarray, bx: np.ndarray, prediction: np.ndarray) -> np.ndarray:
        target = _blocks_at(plane, by, bx).astype(np.int16)
        r = np.clip(target - prediction.astype(np.int16) + 128, 0, 255).astype(np.uint8)
        r = _frame_edge(r, by, bx, plane.shape)
        for i in range(len(by)):
            residual[BLOCK * by[i] : BLOCK * (by[i] + 1), BLOCK * bx[i] : BLOCK * (bx[i] + 1)] = r[i]
        decoded = _frame_edge(jpeg.roundtrip_blocks(r, qtable), by, bx, plane.shape)
        return _add_residual(prediction, decoded)

    recon = _predict_loop(plane.shape, predictor, index, code_front)
    return residual, recon


def decode_predicted_plane(residual: np.ndarray, predictor: BlockPredictor, index: int) -> np.ndarray:
    """The plane rebuilt from its decoded residual, front by front, with the predictor it was coded with."""

    def code_front(by: np.ndarray, bx: np.ndarray, prediction: np.ndarray) -> np.ndarray:
        return _add_residual(prediction, _blocks_at(residual, by, bx))

    return _predict_loop(residual.shape, predictor, index, code_front)
