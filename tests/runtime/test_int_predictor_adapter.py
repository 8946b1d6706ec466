"""The runtime's integer-predictor adapter gives the integers of a plain-integer reference, at every thread
count and onnxruntime optimisation level, and closes the prediction loop exactly (no torch needed: the model
is the committed stand-in ``tests/runtime/models/test-int-predict.onnx``, its integer layers beside it)."""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
import pytest

from pillow_blockcnn import codec, runtime
from pillow_blockcnn.format import container
from pillow_blockcnn.runtime import int_predictor
from tests import int_reference
from tests.helpers import STAND_INS, block_contexts

MODEL_ID = "test-int-predict"


def _layers() -> list[tuple[np.ndarray, np.ndarray, int]]:
    saved = np.load(STAND_INS / f"{MODEL_ID}.npz")
    return [(saved[f"W{i}"], saved[f"B{i}"], int(saved[f"S{i}"])) for i in range(len(saved.files) // 3)]


@pytest.fixture
def registry(monkeypatch):
    data = (STAND_INS / f"{MODEL_ID}.onnx").read_bytes()
    monkeypatch.setattr(runtime.registry, "_registered", {})
    monkeypatch.setattr(runtime.registry, "_packaged", dict)
    runtime.register_model(MODEL_ID, "predict", data, arithmetic="integer")
    runtime.clear_sessions()
    yield data
    runtime.clear_sessions()


def _contexts(sample) -> tuple[np.ndarray, np.ndarray]:
    return block_contexts(sample, 20_000, seed=5, p_available=0.6)


def test_the_adapter_prepares_the_references_inputs(sample) -> None:
    contexts, available = _contexts(sample)
    for quality, chroma in ((5, False), (90, True)):
        x, base = int_predictor.integer_inputs(contexts, available, quality, chroma)
        x_ref, base_ref = int_reference.inputs(contexts, available, quality, chroma)
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(base, base_ref)


@pytest.mark.parametrize(
    "level",
    [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
     ort.GraphOptimizationLevel.ORT_ENABLE_ALL],
)
def test_onnxruntime_computes_the_reference_integers(registry, sample, level) -> None:
    contexts, available = _contexts(sample)
    expected = int_reference.predict(contexts, available, 40, False, _layers())
    x, base = int_predictor.integer_inputs(contexts, available, 40, False)
    for threads in (1, 2):
        so = ort.SessionOptions()
        so.graph_optimization_level, so.intra_op_num_threads = level, threads
        session = ort.InferenceSession(registry, so, providers=["CPUExecutionProvider"])
        (delta,) = session.run(None, {"x": x.astype(np.float32)})
        got = np.clip(base[:, None] + delta.astype(np.int64), 0, 255).astype(np.uint8).reshape(-1, 8, 8)
        np.testing.assert_array_equal(got, expected, err_msg=f"{level} threads={threads}")
    predictor = runtime.predictor_for(MODEL_ID, 40)
    assert isinstance(predictor, runtime.IntegerOnnxPredictor)
    np.testing.assert_array_equal(predictor.predict(contexts[:999], available[:999], 0), expected[:999])


def test_a_predicted_file_decodes_to_the_encoders_reconstruction(registry, sample) -> None:
    pixels = np.asarray(sample.crop((40, 30, 160, 110)))
    predictor = runtime.predictor_for(MODEL_ID, 30)
    encoded = codec.encode(pixels, "RGB", 30, predictor=predictor, reconstruct=True, force_prediction=True)
    parsed = container.read_container(io.BytesIO(container.write_container(encoded.container)))
    assert parsed.header.models == (MODEL_ID,)
    from pillow_blockcnn import pipeline

    np.testing.assert_array_equal(pipeline.decode_pixels(parsed).pixels, encoded.reconstruction)


def test_cuda_is_asked_for_exact_float32_for_integer_models_only() -> None:
    """What test_cuda_exactness checks on a GPU, checked here on the request: TF32 off for integer models."""
    from pillow_blockcnn.runtime.sessions import EXACT_CUDA_OPTIONS, provider_entries

    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert provider_entries(wanted, exact=True) == [("CUDAExecutionProvider", EXACT_CUDA_OPTIONS), "CPUExecutionProvider"]
    assert EXACT_CUDA_OPTIONS["use_tf32"] == "0"
    assert provider_entries(wanted, exact=False) == list(wanted)
