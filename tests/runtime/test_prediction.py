"""Predicted .bcnn files through the real ONNX path, with a stand-in predictor model.

The stand-in (``tests/runtime/models/test-predict.onnx``) is a small random-weight
BlockPredictorNet exported by the real export code (``python -m
export.conversion.stand_ins``), so encoder/decoder agreement, determinism and
error paths are tested without torch and without the trained model (whose
quality ``export/`` measures).
"""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from PIL import Image

import pillow_blockcnn
from pillow_blockcnn import codec, runtime
from pillow_blockcnn.format import container
from pillow_blockcnn.runtime import OnnxPredictor, sessions
from tests.conftest import save_bytes
from tests.helpers import register_models, stand_in

MODEL_ID = "test-predict"


@pytest.fixture
def registry(monkeypatch):
    entries = register_models(monkeypatch, {MODEL_ID: ("predict", stand_in(MODEL_ID))})
    # The stand-in has random weights: the encoder's rate-distortion choice would (rightly) code every plane
    # plain. These tests are about the model plumbing and exactness, so every block is predicted.
    monkeypatch.setattr(pillow_blockcnn.pipeline.codec, "encode", functools.partial(codec.encode, force_prediction=True))
    yield entries
    pillow_blockcnn.register_bcnn_opener(threads=0)
    runtime.clear_sessions()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_decoder_reproduces_the_encoder_bit_for_bit(registry, sample, mode) -> None:
    src = sample.convert(mode).crop((5, 7, 130, 90))
    pixels = np.asarray(src)
    encoded = codec.encode(pixels, mode, 30, predictor=OnnxPredictor(MODEL_ID, 30), reconstruct=True, force_prediction=True)
    data = container.write_container(encoded.container)
    assert container.read_container(io.BytesIO(data)).header.models == (MODEL_ID,)
    np.testing.assert_array_equal(_decode(data), encoded.reconstruction)
    assert _decode(save_bytes(src, quality=30)).shape == pixels.shape  # the plugin picks the packaged model


def test_save_uses_the_packaged_predictor_by_default(registry, small) -> None:
    with Image.open(io.BytesIO(save_bytes(small))) as im:
        assert im.info["predicted"]
        assert im.info["models"] == (MODEL_ID,)
    with Image.open(io.BytesIO(save_bytes(small, predict=False))) as im:
        assert not im.info["predicted"]


def test_a_save_can_name_its_prediction_model(registry, small) -> None:
    runtime.register_model("test-predict-newer", "predict", stand_in(MODEL_ID))  # now the default
    try:
        with Image.open(io.BytesIO(save_bytes(small))) as im:
            assert im.info["models"][0] == "test-predict-newer"
        with Image.open(io.BytesIO(save_bytes(small, predict=MODEL_ID))) as im:
            assert im.info["models"][0] == MODEL_ID
    finally:
        runtime.unregister_model("test-predict-newer")
    with pytest.raises(ValueError, match="not a prediction model here: predict takes True, False or None"):
        save_bytes(small, predict="dblk-9")
    with pytest.raises(ValueError, match=r"predict='pred-1' is not a prediction model here: .*; it was dropped before"):
        save_bytes(small, predict="pred-1")
    with pytest.raises(ValueError, match="predict must be True, False or None"):
        save_bytes(small, predict=3)


def test_decoding_is_identical_across_thread_counts_and_runs(registry, sample) -> None:
    data = save_bytes(sample.crop((0, 0, 200, 120)), quality=25)
    outputs = []
    for threads in (1, 2, 1):
        pillow_blockcnn.register_bcnn_opener(threads=threads)
        outputs.append(_decode(data))
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])


def test_prediction_does_not_depend_on_batch_size(registry) -> None:
    rng = np.random.default_rng(3)
    contexts = rng.integers(0, 256, (50, 24, 24), dtype=np.uint8)
    available = rng.random((50, 4)) > 0.3
    predictor = OnnxPredictor(MODEL_ID, 40)
    whole = predictor.predict(contexts, available, 0)
    singles = np.concatenate([predictor.predict(contexts[i : i + 1], available[i : i + 1], 0) for i in range(50)])
    np.testing.assert_array_equal(whole, singles)


def test_one_ulp_perturbation_of_every_prediction_stays_local(registry, sample, monkeypatch) -> None:
    """The CPU-vs-GPU case: predictions off by one float ulp change pixels only where rounding flips."""
    data = save_bytes(sample.crop((0, 0, 160, 96)), quality=20)
    exact = _decode(data).astype(np.int16)
    raw = OnnxPredictor.raw
    for direction in (np.inf, -np.inf):
        monkeypatch.setattr(OnnxPredictor, "raw", lambda self, *a, d=direction: np.nextafter(raw(self, *a), d))
        perturbed = _decode(data).astype(np.int16)
        diff = np.abs(perturbed - exact)
        assert diff.max() <= 2
        assert (diff > 0).mean() < 0.01


def test_a_predicted_file_needs_its_model(registry, small, monkeypatch) -> None:
    data = save_bytes(small)
    register_models(monkeypatch, {})
    with pytest.raises(runtime.ModelError, match=f"'{MODEL_ID}' is not part of pillow-blockcnn"):
        Image.open(io.BytesIO(data)).load()


def test_fuzzing_predicted_files_finds_no_unclean_outcome(registry, small) -> None:
    from tests.fuzzing import fuzz

    seeds = [save_bytes(small, quality=q) for q in (15, 60)] + [save_bytes(small.convert("L"), quality=30)]
    assert all(Image.open(io.BytesIO(s)).info["predicted"] for s in seeds)
    report = fuzz.run(cases=400, seed=7, seeds=seeds)
    assert report.failures == []
    assert report.outcomes["clean"] > 0
    assert report.outcomes["identical"] > 0


def test_prediction_models_stay_on_the_cpu_provider_by_default(registry, monkeypatch) -> None:
    monkeypatch.setattr(sessions, "providers", lambda: ("CUDAExecutionProvider", "CPUExecutionProvider"))
    runtime.session(MODEL_ID)
    # The session was asked for the CPU alone (onnxruntime would fall back to it silently anyway here).
    assert [key[2] for key in sessions._sessions if key[0] == MODEL_ID] == [("CPUExecutionProvider",)]


@pytest.mark.parametrize("model_id", [m.id for m in runtime.models("predict")])
def test_every_shipped_predictor_decodes_to_the_encoders_reconstruction(sample, model_id) -> None:
    pixels = np.asarray(sample.crop((40, 30, 240, 150)))
    predictor = runtime.predictor_for(model_id, 25)
    encoded = codec.encode(pixels, "RGB", 25, tables="mse", predictor=predictor, reconstruct=True, force_prediction=True)
    data = container.write_container(encoded.container)  # no deblocking flag: the decode is the reconstruction
    assert Image.open(io.BytesIO(data)).info["models"] == (model_id,)
    np.testing.assert_array_equal(_decode(data), encoded.reconstruction)
