"""A plain-integer implementation of the integer predictor, written from the arithmetic in
``export/networks/int_predictor.py``'s docstring alone: what a second decoder would write. numpy int64 only."""

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


def predict(contexts, available, quality, chroma, layers) -> np.ndarray:
    """Predicted blocks [N, 8, 8] uint8."""
    x, base = inputs(contexts, available, quality, chroma)
    return np.clip(base[:, None] + delta(x, layers), 0, 255).astype(np.uint8).reshape(-1, 8, 8)
