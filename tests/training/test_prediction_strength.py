"""The prediction-strength study scales what the predictor predicts, and nothing else."""

from __future__ import annotations

import numpy as np

from export.studies.prediction_strength import ScaledPredictor


class _Fixed:
    model_ids = ("test-fixed",)

    def __init__(self, blocks: np.ndarray) -> None:
        self.blocks = blocks

    def predict(self, contexts, available, plane):
        return self.blocks[: len(contexts)]

    def predict_neighbours(self, neighbours, available, plane):
        return self.blocks[: len(neighbours)]


def test_scaling_keeps_each_blocks_mean_and_scales_its_texture() -> None:
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    inner = _Fixed(blocks)
    contexts = np.zeros((5, 24, 24), np.uint8)
    available = np.ones((5, 4), bool)
    assert np.array_equal(ScaledPredictor(inner, 1.0).predict(contexts, available, 0), blocks)
    flat = ScaledPredictor(inner, 0.0).predict_neighbours(np.zeros((5, 256), np.uint8), available, 0)
    means = np.rint(blocks.reshape(5, -1).astype(np.float32).mean(axis=1))
    assert np.array_equal(flat, np.broadcast_to(means[:, None, None], (5, 8, 8)).astype(np.uint8))
    half = ScaledPredictor(inner, 0.5).predict(contexts, available, 0).astype(np.float64)
    spread = blocks.reshape(5, -1).astype(np.float64).std(axis=1)
    assert np.allclose(half.reshape(5, -1).std(axis=1), spread / 2, atol=0.5)
    assert ScaledPredictor(inner, 0.5).model_ids == ("test-fixed",)
