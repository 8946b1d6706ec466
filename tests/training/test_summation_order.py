"""The shipped `pred-2` is exact by construction, not by the luck of one kernel: its ONNX graph's float32
arithmetic gives the plain-integer reference's predictions under any summation order, blocking or fused
multiply-add a provider may use (a GPU's reduction trees and split-K sums among them), and even under TF32,
which keeps 11 significant bits of each operand: a conforming integer model's operands (inputs of at most 255
in magnitude, int8 weights times a power of two, activations 0..127) have at most 8 (docs/FORMAT.md §10).

The float32 emulations below follow the graph: per layer ``Floor(a @ W' + B')`` with ``W' = 2^-s W^T`` and
``B' = 2^-s B + 1/2``, then ``Clip(0, 127)`` on hidden layers."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import numpy as np
import onnx
import pytest

from export.conversion.export_int_predictor import integer_layers
from pillow_blockcnn.runtime import int_predictor
from tests import int_reference
from tests.helpers import block_contexts

Layers = list[tuple[np.ndarray, np.ndarray, int]]
Matmul = Callable[[np.ndarray, np.ndarray], np.ndarray]  # float32 [N, K] @ [K, M] -> float32 [N, M]


@pytest.fixture(scope="module")
def layers() -> Layers:
    with resources.as_file(resources.files("pillow_blockcnn") / "models" / "pred-2.onnx") as path:
        return integer_layers(onnx.load(path))


@pytest.fixture(scope="module")
def inputs(sample) -> tuple[np.ndarray, np.ndarray]:
    contexts, available = block_contexts(sample, 500, seed=11, p_available=0.7)
    rng = np.random.default_rng(3)
    pick = rng.choice(len(contexts), 1200, replace=False)  # real and random contexts, a size the loops allow
    x, _ = int_predictor.integer_inputs(contexts[pick], available[pick], 30, False)
    return x.astype(np.int64), pick


def _graph(x: np.ndarray, layers: Layers, matmul: Matmul) -> np.ndarray:
    a = x.astype(np.float32)
    for i, (w, b, s) in enumerate(layers):
        w_scaled = (w.T.astype(np.float64) * 2.0**-s).astype(np.float32)
        b_scaled = (b.astype(np.float64) * 2.0**-s + (0.5 if s > 0 else 0.0)).astype(np.float32)
        a = np.floor(matmul(a, w_scaled) + b_scaled)
        if i < len(layers) - 1:
            a = np.clip(a, 0, 127)
    return a.astype(np.int64)


def _blas(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    return a @ w


def _sequential(order: np.ndarray) -> Matmul:
    """One float32 accumulator per output, the inputs added one at a time in ``order`` (a permutation of a
    layer's inputs, cut to its length)."""

    def matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
        acc = np.zeros((a.shape[0], w.shape[1]), dtype=np.float32)
        for k in order[order < a.shape[1]]:
            acc += a[:, k : k + 1] * w[k]
        return acc

    return matmul


def _fused(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Fused multiply-add from the last input to the first: each step rounds once, ``acc + a*w`` exactly."""
    acc = np.zeros((a.shape[0], w.shape[1]), dtype=np.float32)
    for k in range(a.shape[1] - 1, -1, -1):
        acc = (acc.astype(np.float64) + a[:, k : k + 1].astype(np.float64) * w[k].astype(np.float64)).astype(np.float32)
    return acc


def _split_k(chunk: int) -> Matmul:
    """Partial sums over chunks of ``chunk`` inputs, then the partials added pairwise (a GPU's split-K)."""

    def matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
        parts = [a[:, i : i + chunk] @ w[i : i + chunk] for i in range(0, a.shape[1], chunk)]
        while len(parts) > 1:
            parts = [parts[i] + parts[i + 1] if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
        return parts[0]

    return matmul


def _tf32(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """TF32: each operand rounded to a 10-bit mantissa (round to nearest), products summed in float32."""

    def round10(v: np.ndarray) -> np.ndarray:
        bits = v.astype(np.float32).view(np.uint32).astype(np.uint64)
        bits = (bits + (1 << 12)) & ~np.uint64((1 << 13) - 1)
        return bits.astype(np.uint32).view(np.float32)

    return round10(a) @ round10(w)


def test_every_summation_order_gives_the_reference_integers(layers, inputs) -> None:
    x, _ = inputs
    expected = int_reference.delta(x, layers)
    rng = np.random.default_rng(0)
    width = max(w.shape[1] for w, _, _ in layers)
    orders: dict[str, Matmul] = {
        "blas": _blas,
        "sequential, shuffled": _sequential(rng.permutation(width)),
        "sequential, reversed": _sequential(np.arange(width)[::-1].copy()),
        "fused multiply-add": _fused,
        "split-K by 7, pairwise": _split_k(7),
        "split-K by 64, pairwise": _split_k(64),
    }
    for name, matmul in orders.items():
        np.testing.assert_array_equal(_graph(x, layers, matmul), expected, err_msg=name)


def test_tf32_computes_the_same_integers_because_every_operand_fits_its_mantissa(layers, inputs) -> None:
    x, _ = inputs
    assert np.abs(x).max() <= 255
    assert all(np.abs(w).max() <= 127 for w, _, _ in layers)
    np.testing.assert_array_equal(_graph(x, layers, _tf32), int_reference.delta(x, layers))
    # the emulation does round: an operand of 12 significant bits loses its last one
    assert _tf32(np.array([[4097.0]], dtype=np.float32), np.array([[1.0]], dtype=np.float32))[0, 0] != 4097.0
