"""Test helpers shared across test modules."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np


class MeanEdgePredictor:
    """A deterministic, non-learned predictor: the mean of the pixels bordering the block above and to the left.

    It exercises the closed loop exactly as a learned model would (contexts in,
    uint8 blocks out) without needing a model file.
    """

    model_ids: tuple[str, ...] = ("test-mean-edge",)

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray) -> np.ndarray:
        self.calls.append(len(contexts))
        top = contexts[:, 7, 8:16].astype(np.int64).sum(axis=1) * available[:, 1]
        left = contexts[:, 8:16, 7].astype(np.int64).sum(axis=1) * available[:, 3]
        n = 8 * (available[:, 1].astype(np.int64) + available[:, 3])
        mean = np.where(n > 0, (top + left + n // 2) // np.maximum(n, 1), 128)
        return np.broadcast_to(mean[:, None, None], (len(contexts), 8, 8)).astype(np.uint8)


#: Tiny random-weight models made by ``python -m export.conversion.stand_ins`` (committed, so the runtime tests
#: need no torch): they exercise the plumbing, not a model's quality.
STAND_INS = Path(__file__).parent / "runtime" / "models"


def stand_in(name: str) -> bytes:
    """The bytes of a committed stand-in model: ``"test-deblock"`` or ``"test-predict"``."""
    return (STAND_INS / f"{name}.onnx").read_bytes()


def register_models(
    monkeypatch, models: dict[str, tuple[str, bytes]], sha_override: dict[str, str] | None = None, *, packaged=False
):
    """An installation whose models are ``{id: (task, onnx bytes)}`` (and the packaged ones if ``packaged``), for
    one test, through the public :func:`pillow_blockcnn.runtime.register_model`.

    The registry's own sha256 check still runs; ``sha_override`` gives an entry a wrong hash to test that check.
    The last entry of a task is its default. Everything is undone when the test ends.
    """
    from pillow_blockcnn import runtime
    from pillow_blockcnn.runtime import registry

    monkeypatch.setattr(registry, "_registered", {})
    if not packaged:
        monkeypatch.setattr(registry, "_packaged", dict)
    entries = {
        model_id: runtime.register_model(model_id, task, data, sha256=(sha_override or {}).get(model_id))
        for model_id, (task, data) in models.items()
    }
    runtime.clear_sessions()
    return entries


def block_contexts(sample, n_random: int, seed: int, p_available: float) -> tuple[np.ndarray, np.ndarray]:
    """(contexts [N, 24, 24] uint8, availability [N, 4] bool): every block context of the sample's gray plane
    (real content), then ``n_random`` random ones whose neighbours each exist with probability ``p_available``."""
    from pillow_blockcnn.codec.blocks import gather_contexts, wavefronts

    plane = np.asarray(sample.convert("L"))[:376, :512]
    padded = np.zeros((plane.shape[0] + 16, plane.shape[1] + 16), dtype=np.uint8)
    padded[8:-8, 8:-8] = plane
    parts = [gather_contexts(padded, by, bx) for by, bx in wavefronts(plane.shape[0] // 8, plane.shape[1] // 8)]
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (n_random, 24, 24), dtype=np.uint8)
    noise[:, 8:, 8:] = 0
    noise[:, 16:] = 0
    flags = rng.random((n_random, 4)) < p_available
    return np.concatenate([p[0] for p in parts] + [noise]), np.concatenate([p[1] for p in parts] + [flags])


def trellis_cost(
    ratio: np.ndarray, levels: np.ndarray, qtable: np.ndarray, lam: float, bits: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """A rate model's ``J`` of AC ``levels`` for coefficients over steps ``ratio``: the AC's squared error plus
    ``lam`` times ``bits`` of the AC (the DC excluded on both sides)."""
    ac = levels.copy()
    ac[:, 0, 0] = 0
    error = ((ratio - ac) * qtable) ** 2
    error[:, 0, 0] = 0
    return error.sum(axis=(1, 2)) + lam * bits(ac)


def assert_trellis_finds_the_optimum(
    trellis: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
    bits: Callable[[np.ndarray], np.ndarray],
    seed: int,
    n: int,
) -> None:
    """Coefficients only at the first five zig-zag ranks: every level there is 0, the step below or the step
    above (3^5 choices per block), every later one 0; ``trellis`` must reach the best of them under ``bits``
    exactly."""
    from pillow_blockcnn.codec import jpeg
    from pillow_blockcnn.codec.dct import ZIGZAG
    from pillow_blockcnn.codec.quantise import lagrangian

    rng = np.random.default_rng(seed)
    qtable = np.asarray(jpeg.quant_table(30, chroma=False, tables="mse")).reshape(8, 8)
    first = ZIGZAG[1:6]
    ratio = np.zeros((n, 8, 8))
    ratio.reshape(n, 64)[:, first] = rng.laplace(0, 1.5, (n, 5))
    lam = lagrangian(qtable)
    got = trellis_cost(ratio, trellis(ratio, qtable, lam), qtable, lam, bits)
    mag = np.abs(ratio.reshape(n, 64)[:, first])
    choices = np.stack([np.zeros_like(mag), np.floor(mag), np.floor(mag) + 1], axis=-1)  # [n, 5, 3]
    best = np.full(n, np.inf)
    for combo in itertools.product(range(3), repeat=5):
        levels = np.zeros((n, 64))
        picked = np.take_along_axis(choices, np.array(combo)[None, :, None].repeat(n, 0), axis=2)[..., 0]
        levels[:, first] = np.sign(ratio.reshape(n, 64)[:, first]) * picked
        best = np.minimum(best, trellis_cost(ratio, levels.reshape(n, 8, 8), qtable, lam, bits))
    np.testing.assert_allclose(got, best, rtol=1e-12, atol=1e-9)
