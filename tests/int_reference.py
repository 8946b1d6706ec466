"""A plain-integer implementation of the integer predictor, written from the arithmetic in
``export/networks/int_predictor.py``'s docstring and docs/FORMAT.md §5.2-5.3 alone: what a second decoder
would write, the luma guide included. numpy int64 only."""

from __future__ import annotations

import numpy as np

ACT_MAX = 127


def inputs(contexts: np.ndarray, available: np.ndarray, quality: int, chroma: bool) -> tuple[np.ndarray, np.ndarray]:
    """(x [N, 262] int64, base [N] int64) for uint8 contexts [N, 24, 24] and bool availability [N, 4]."""
    px = contexts.astype(np.int64)
    avail = available.astype(np.int64)
    top, left = avail[:, 1], avail[:, 3]
    total = px[:, 7, 8:16].sum(1) * top + px[:, 8:16, 7].sum(1) * left
    n = 8 * (top + left)
    base = np.where(n == 16, (total + 8) >> 4, np.where(n == 8, (total + 4) >> 3, 128))
    blocks = np.stack([px[:, 0:8, 0:8], px[:, 0:8, 8:16], px[:, 0:8, 16:24], px[:, 8:16, 0:8]], axis=1)
    centred = (blocks - base[:, None, None, None]) * avail[:, :, None, None]
    extra = np.concatenate(
        [avail * ACT_MAX, np.full((len(px), 1), quality), np.full((len(px), 1), ACT_MAX * int(chroma))], axis=1
    )
    return np.concatenate([centred.reshape(len(px), 256), extra], axis=1), base


def guide_plane(luma: np.ndarray, chroma_shape: tuple[int, int], fy: int, fx: int) -> np.ndarray:
    """FORMAT.md §5.3: the rebuilt Y plane, edge-extended to fy x fx times the chroma plane, each fy x fx cell
    replaced by (sum + n/2) >> log2(n); returned without a border, int64."""
    h, w = chroma_shape[0] * fy, chroma_shape[1] * fx
    y = luma.astype(np.int64)
    rows = np.minimum(np.arange(h), y.shape[0] - 1)
    cols = np.minimum(np.arange(w), y.shape[1] - 1)
    y = y[rows][:, cols]
    n = fy * fx
    total = sum(y[i::fy, j::fx] for i in range(fy) for j in range(fx))
    return (total + n // 2) >> {1: 0, 2: 1, 4: 2}[n]


def guide_window(plane: np.ndarray, by: int, bx: int) -> np.ndarray:
    """FORMAT.md §5.3: rows 8by-8 .. 8by+7, columns 8bx-8 .. 8bx+15 of the guide plane, 0 outside it."""
    out = np.zeros((16, 24), dtype=np.int64)
    for r in range(16):
        for c in range(24):
            y, x = 8 * by - 8 + r, 8 * bx - 8 + c
            if 0 <= y < plane.shape[0] and 0 <= x < plane.shape[1]:
                out[r, c] = plane[y, x]
    return out


def guide_inputs(guide: np.ndarray, available: np.ndarray, chroma: bool) -> np.ndarray:
    """The 320 guide inputs [N, 320] int64 of guide windows [N, 16, 24]: the above-left, above, above-right,
    left and co-located blocks minus gbase = (sum of the co-located block + 32) >> 6, 0 where a neighbour is
    not available; all 0 for a luma plane."""
    g = guide.astype(np.int64)
    n = len(g)
    if not chroma:
        return np.zeros((n, 320), dtype=np.int64)
    gbase = (g[:, 8:16, 8:16].sum((1, 2)) + 32) >> 6
    blocks = np.stack([g[:, 0:8, 0:8], g[:, 0:8, 8:16], g[:, 0:8, 16:24], g[:, 8:16, 0:8], g[:, 8:16, 8:16]], axis=1)
    mask = np.concatenate([available.astype(np.int64), np.ones((n, 1), dtype=np.int64)], axis=1)
    return ((blocks - gbase[:, None, None, None]) * mask[:, :, None, None]).reshape(n, 320)


def shift(acc: np.ndarray, s: int) -> np.ndarray:
    """(acc + 2^(s-1)) >> s, an arithmetic (flooring) shift; a left shift for s < 0."""
    if s > 0:
        return (acc + (1 << (s - 1))) >> s
    return acc << -s


def delta(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray, int]]) -> np.ndarray:
    """The network's integer output [N, 64] for integer inputs [N, 262]."""
    a = x.astype(np.int64)
    for i, (w, b, s) in enumerate(layers):
        a = shift(a @ w.T.astype(np.int64) + b.astype(np.int64), s)
        if i < len(layers) - 1:
            a = np.clip(a, 0, ACT_MAX)
    return a


def predict(contexts, available, quality, chroma, layers, guide=None) -> np.ndarray:
    """Predicted blocks [N, 8, 8] uint8; a luma-guided model's layers take 582 inputs (``guide``: the blocks'
    guide windows [N, 16, 24], or None for a luma plane)."""
    x, base = inputs(contexts, available, quality, chroma)
    if layers[0][0].shape[1] > x.shape[1]:
        windows = np.zeros((len(x), 16, 24), dtype=np.int64) if guide is None else guide
        x = np.concatenate([x, guide_inputs(windows, available, chroma and guide is not None)], axis=1)
    return np.clip(base[:, None] + delta(x, layers), 0, 255).astype(np.uint8).reshape(-1, 8, 8)
