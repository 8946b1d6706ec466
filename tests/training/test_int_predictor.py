"""The integer predictor is exact by construction: its torch (training) forward, its ONNX graph under every
onnxruntime optimisation level and thread count, and a plain-integer reference give the same integers."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export.conversion.export_int_predictor import int_predictor_graph, integer_layers
from export.networks.int_predictor import EXACT_LIMIT, IntPredictorNet, accumulator_bound
from tests import int_reference
from tests.helpers import block_contexts


def _contexts(sample, n_random: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    return block_contexts(sample, n_random, seed=0, p_available=0.7)


@pytest.fixture(scope="module")
def trained_like(sample):
    """A small net with weights as varied as a trained one's, calibrated on real contexts."""
    torch.manual_seed(3)
    model = IntPredictorNet(width=48, depth=2)
    with torch.no_grad():
        model.layers[-1].linear.weight.normal_(0, 0.05)
        for layer in model.layers:
            layer.linear.bias.normal_(0, 0.5)
    contexts, available = _contexts(sample)
    model.eval()
    model(*_torch_inputs(contexts[:4096], available[:4096], 30, False))  # calibrates the activation steps
    return model, contexts, available


def _torch_inputs(contexts, available, quality, chroma):
    info = np.zeros((len(contexts), 6), dtype=np.float32)
    info[:, :4], info[:, 4], info[:, 5] = available, quality / 100.0, float(chroma)
    return torch.from_numpy(contexts.astype(np.float32) / 255.0), torch.from_numpy(info)


@pytest.mark.parametrize(("quality", "chroma"), [(10, False), (75, True)])
def test_onnx_torch_and_the_integer_reference_agree_exactly(trained_like, quality, chroma) -> None:
    model, contexts, available = trained_like
    layers = model.integer_layers()
    assert accumulator_bound(layers) < EXACT_LIMIT
    expected = int_reference.predict(contexts, available, quality, chroma, layers)
    with torch.no_grad():
        from_torch = model(*_torch_inputs(contexts, available, quality, chroma)).numpy()
    np.testing.assert_array_equal(np.clip(from_torch, 0, 255).astype(np.uint8), expected)
    x, base = int_reference.inputs(contexts, available, quality, chroma)
    data = int_predictor_graph(layers).SerializeToString()
    levels = [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              ort.GraphOptimizationLevel.ORT_ENABLE_ALL]
    for level in levels:
        for threads in (1, 2):
            so = ort.SessionOptions()
            so.graph_optimization_level, so.intra_op_num_threads = level, threads
            session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
            for batch in (1, 7, len(x)):  # a front can be one block or thousands
                (delta,) = session.run(None, {"x": x[:batch].astype(np.float32)})
                got = np.clip(base[:batch, None] + delta.astype(np.int64), 0, 255).astype(np.uint8).reshape(-1, 8, 8)
                np.testing.assert_array_equal(got, expected[:batch], err_msg=f"{level} threads={threads} batch={batch}")


def test_the_graph_gives_back_its_integer_layers(trained_like) -> None:
    """A second decoder reads the integers from the file: the scaled weights, with the shifts in the metadata."""
    layers = trained_like[0].integer_layers()
    rng = np.random.default_rng(0)
    layers.append((rng.integers(-3, 4, (2, 64)), np.array([5, -1]), -1))  # layers that shift left or not at all
    layers.append((np.array([[1, 2]]), np.array([-7]), 0))
    for (w, b, shift), (w2, b2, shift2) in zip(layers, integer_layers(int_predictor_graph(layers)), strict=True):
        np.testing.assert_array_equal(w2, w)
        np.testing.assert_array_equal(b2, b)
        assert shift2 == shift
    assert [node.op_type for node in int_predictor_graph(layers[:2]).graph.node] == ["Gemm", "Floor", "Clip", "Gemm", "Floor"]


def test_an_inexact_graph_is_refused() -> None:
    # 262 inputs of up to 255 times weights of 127 stay below 2^24; a second such layer on 7-bit activations
    # with a large bias does not.
    first = (np.full((512, 262), 127, dtype=np.int64), np.zeros(512, dtype=np.int64), 8)
    second = (np.full((64, 512), 127, dtype=np.int64), np.full(64, 2**24, dtype=np.int64), 0)
    assert accumulator_bound([first]) < EXACT_LIMIT <= accumulator_bound([first, second])
    with pytest.raises(ValueError, match="2\\^24"):
        int_predictor_graph([first, second])


def test_it_trains_through_the_rounding(sample) -> None:
    contexts, available = _contexts(sample, n_random=0)
    target = torch.from_numpy(contexts[:512, 8:16, 8:16].astype(np.float32))  # stand-in target: any block
    model = IntPredictorNet(width=32, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs = _torch_inputs(contexts[:512], available[:512], 30, False)
    losses = []
    for _ in range(30):
        loss = (model(*inputs) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_a_luma_guided_network_is_exact_too_and_starts_as_the_unguided_one(trained_like, sample) -> None:
    """Torch (training), ONNX and the plain-integer reference agree on a guided network; widened from an
    unguided one it predicts what that one does until training moves the guide's weights."""
    from export.networks.int_predictor import widen_for_guide
    from pillow_blockcnn.codec.guide import guide_plane, guide_windows

    model, contexts, available = trained_like
    guided = IntPredictorNet(width=48, depth=2, guide=True)
    guided.load_state_dict(widen_for_guide(model.state_dict()))
    guided.eval()
    luma = np.asarray(sample.convert("L"))[:256, :384]
    rng = np.random.default_rng(1)
    guide = guide_windows(guide_plane(luma, (128, 192), (2, 2)), rng.integers(0, 16, len(contexts)),
                          rng.integers(0, 24, len(contexts)))
    context_t, info_t = _torch_inputs(contexts, available, 30, True)
    guide_t = torch.from_numpy(guide.astype(np.float32) / 255.0)
    with torch.no_grad():
        np.testing.assert_array_equal(guided(context_t, info_t, guide_t).numpy(), model(context_t, info_t).numpy())
        guided.layers[0].linear.weight[:, 262:].normal_(0, 0.02)
        from_torch = guided(context_t, info_t, guide_t).numpy()
    layers = guided.integer_layers()
    assert layers[0][0].shape[1] == 582
    assert accumulator_bound(layers) < EXACT_LIMIT
    expected = int_reference.predict(contexts, available, 30, True, layers, guide)
    np.testing.assert_array_equal(np.clip(from_torch, 0, 255).astype(np.uint8), expected)
    x, base = int_reference.inputs(contexts, available, 30, True)
    x = np.concatenate([x, int_reference.guide_inputs(guide, available, True)], axis=1)
    session = ort.InferenceSession(int_predictor_graph(layers).SerializeToString(), providers=["CPUExecutionProvider"])
    (delta,) = session.run(None, {"x": x.astype(np.float32)})
    got = np.clip(base[:, None] + delta.astype(np.int64), 0, 255).astype(np.uint8).reshape(-1, 8, 8)
    np.testing.assert_array_equal(got, expected)
    assert (expected != int_reference.predict(contexts, available, 30, True, layers, None)).any()


def test_a_guided_run_initialised_from_an_unguided_snapshot_starts_as_it(sample) -> None:
    from export.training.train_predictor import init_from

    contexts, available = _contexts(sample, n_random=0)
    guided, plain = IntPredictorNet(guide=True), IntPredictorNet()
    init_from(guided, "predict_v2")  # the committed snapshot of pred-2's run
    init_from(plain, "predict_v2")
    context_t, info_t = _torch_inputs(contexts[:2000], available[:2000], 25, True)
    guide = torch.rand(2000, 16, 24)
    with torch.no_grad():
        np.testing.assert_array_equal(guided.eval()(context_t, info_t, guide).numpy(), plain.eval()(context_t, info_t).numpy())
