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


def _layers(model_id: str = MODEL_ID) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The integer layers of a stand-in, saved beside its ONNX file."""
    saved = np.load(STAND_INS / f"{model_id}.npz")
    return [(saved[f"W{i}"], saved[f"B{i}"], int(saved[f"S{i}"])) for i in range(len(saved.files) // 3)]


def _install(monkeypatch, model_id: str, **details):
    """An installation holding only the stand-in ``model_id`` (an integer predictor), for one test."""
    data = (STAND_INS / f"{model_id}.onnx").read_bytes()
    monkeypatch.setattr(runtime.registry, "_registered", {})
    monkeypatch.setattr(runtime.registry, "_packaged", dict)
    runtime.register_model(model_id, "predict", data, arithmetic="integer", **details)
    runtime.clear_sessions()
    yield data
    runtime.clear_sessions()


@pytest.fixture
def registry(monkeypatch):
    yield from _install(monkeypatch, MODEL_ID)


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


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_decoding_on_one_thread_per_core_gives_the_encoders_reconstruction(registry, sample, monkeypatch, threads) -> None:
    """With ``threads`` set, the adapter serves that many concurrent calls (one thread, the serial path) and
    the decoder shares the tiles among them: the pixels are the encoder's whatever the count."""
    from pillow_blockcnn.format.limits import DEFAULT_TILE_BLOCKS

    pixels = np.asarray(sample.crop((0, 0, 8 * DEFAULT_TILE_BLOCKS + 72, 150)))  # two tile columns of Y
    encoded = codec.encode(pixels, "RGB", 30, predictor=runtime.predictor_for(MODEL_ID, 30), reconstruct=True,
                           force_prediction=True)
    parsed = container.read_container(io.BytesIO(container.write_container(encoded.container)))
    monkeypatch.setattr(runtime.settings, "THREADS", threads)
    predictor = runtime.predictor_for(MODEL_ID, 30)
    assert predictor.concurrency == threads
    np.testing.assert_array_equal(codec.decode(parsed, predictor), encoded.reconstruction)


def test_cuda_is_asked_for_exact_float32_for_integer_models_only() -> None:
    """What test_cuda_exactness checks on a GPU, checked here on the request: TF32 off for integer models."""
    from pillow_blockcnn.runtime.sessions import EXACT_CUDA_OPTIONS, provider_entries

    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert provider_entries(wanted, exact=True) == [("CUDAExecutionProvider", EXACT_CUDA_OPTIONS), "CPUExecutionProvider"]
    assert EXACT_CUDA_OPTIONS["use_tf32"] == "0"
    assert provider_entries(wanted, exact=False) == list(wanted)


# Luma-guided integer models (docs/FORMAT.md §5.3): the stand-in tests/runtime/models/test-int-guided.onnx.

GUIDED_ID = "test-int-guided"


@pytest.fixture
def guided_registry(monkeypatch):
    yield from _install(monkeypatch, GUIDED_ID, guide="luma")


def _guides(sample, n: int) -> np.ndarray:
    """Guide windows of real luma: the sample's Y plane reduced 2x2 as FORMAT.md §5.3 says, cut around
    random blocks (some at the plane's edge, where the window holds zeros)."""
    from pillow_blockcnn.codec.guide import guide_plane, guide_windows

    luma = np.asarray(sample.convert("L"))[:256, :384]
    plane = guide_plane(luma, (128, 192), (2, 2))
    rng = np.random.default_rng(9)
    by, bx = rng.integers(0, 16, n), rng.integers(0, 24, n)
    return guide_windows(plane, by, bx)


def test_the_guide_plane_is_the_references(sample) -> None:
    from pillow_blockcnn.codec.guide import guide_plane, guide_windows

    luma = np.asarray(sample.convert("L"))[:61, :83]  # not a multiple of the cells: edge extension
    for fy, fx in ((2, 2), (1, 2), (1, 1)):
        shape = (-(-61 // (8 * fy)) * 8, -(-83 // (8 * fx)) * 8)
        bordered = guide_plane(luma, shape, (fy, fx))
        reference = int_reference.guide_plane(luma, shape, fy, fx)
        np.testing.assert_array_equal(bordered[8:-8, 8:-8], reference)
        for by, bx in ((0, 0), (1, 2), (shape[0] // 8 - 1, shape[1] // 8 - 1)):
            window = guide_windows(bordered, np.array([by]), np.array([bx]))[0]
            np.testing.assert_array_equal(window, int_reference.guide_window(reference, by, bx))


def test_guided_inputs_and_predictions_are_the_references(guided_registry, sample) -> None:
    contexts, available = _contexts(sample)
    guides = _guides(sample, len(contexts))
    layers = _layers(GUIDED_ID)
    for chroma in (True, False):
        x, base = int_predictor.integer_inputs(contexts, available, 35, chroma, guides if chroma else None, True)
        x_ref, base_ref = int_reference.inputs(contexts, available, 35, chroma)
        g_ref = int_reference.guide_inputs(guides, available, chroma)
        np.testing.assert_array_equal(x, np.concatenate([x_ref, g_ref], axis=1))
        np.testing.assert_array_equal(base, base_ref)
    expected = int_reference.predict(contexts, available, 35, True, layers, guides)
    unguided = int_reference.predict(contexts, available, 35, True, layers, None)
    assert (expected != unguided).any(), "the stand-in must depend on its guide for this test to mean anything"
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        for threads in (1, 2):
            so = ort.SessionOptions()
            so.graph_optimization_level, so.intra_op_num_threads = level, threads
            session = ort.InferenceSession(guided_registry, so, providers=["CPUExecutionProvider"])
            x, base = int_predictor.integer_inputs(contexts, available, 35, True, guides, True)
            (delta,) = session.run(None, {"x": x})
            got = np.clip(base[:, None] + delta.astype(np.int64), 0, 255).astype(np.uint8).reshape(-1, 8, 8)
            np.testing.assert_array_equal(got, expected, err_msg=f"{level} threads={threads}")
    predictor = runtime.predictor_for(GUIDED_ID, 35)
    assert predictor.guided
    np.testing.assert_array_equal(predictor.predict(contexts, available, 1, guide=guides), expected)
    plane = np.where(np.arange(len(contexts)) % 3 == 0, 0, 2)  # a mixed call: luma blocks take no guide
    mixed = predictor.predict(contexts, available, plane, guide=guides)
    luma = int_reference.predict(contexts, available, 35, False, layers, None)
    np.testing.assert_array_equal(mixed, np.where((plane > 0)[:, None, None], expected, luma))


@pytest.mark.parametrize("subsampling", [2, 1, 0])
def test_a_luma_guided_file_decodes_to_the_encoders_reconstruction(guided_registry, sample, subsampling) -> None:
    from pillow_blockcnn import pipeline

    pixels = np.asarray(sample.crop((40, 30, 203, 117)))  # 163 x 87: partial blocks and MCUs
    predictor = runtime.predictor_for(GUIDED_ID, 30)
    encoded = codec.encode(
        pixels, "RGB", 30, predictor=predictor, reconstruct=True, force_prediction=True, subsampling=subsampling,
        tile=4,
    )
    parsed = container.read_container(io.BytesIO(container.write_container(encoded.container)))
    np.testing.assert_array_equal(pipeline.decode_pixels(parsed).pixels, encoded.reconstruction)
    # The chroma planes really were predicted from the guide: a decode that withholds it differs.

    class Unguided:
        model_ids = predictor.model_ids

        def predict(self, contexts, available, plane):
            return predictor.predict(contexts, available, plane)

    assert not np.array_equal(codec.decode(parsed, Unguided()), encoded.reconstruction)


def test_excluded_neighbours_do_not_matter_to_the_neighbour_inputs(sample) -> None:
    """``predict_neighbours`` may be shown anything where a neighbour is excluded (the codec reads the plane
    unmasked): the inputs are those of the masked windows."""
    contexts, available = _contexts(sample)
    neighbours = contexts.reshape(len(contexts), -1)[:, int_predictor._PIXELS].copy()
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, neighbours.shape, dtype=np.uint8).reshape(-1, 4, 64)
    shown = neighbours.reshape(-1, 4, 64)
    shown[~available] = noise[~available]
    for quality, chroma in ((5, False), (90, True)):
        x, base = int_predictor.neighbour_inputs(shown.reshape(-1, 256), available, quality, chroma)
        x_ref, base_ref = int_reference.inputs(contexts, available, quality, chroma)
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(base, base_ref)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_neighbour_path_codes_and_decodes_what_the_windows_do(registry, sample, monkeypatch, threads) -> None:
    """The codec reads a predictor's 256 neighbour pixels straight from the plane when it can
    (``predict_neighbours``); a predictor that only takes windows must give the same file and pixels."""
    monkeypatch.setattr(runtime.settings, "THREADS", threads)
    predictor = runtime.predictor_for(MODEL_ID, 30)

    class WindowsOnly:
        model_ids = predictor.model_ids

        def predict(self, contexts, available, plane):
            return predictor.predict(contexts, available, plane)

    pixels = np.asarray(sample.crop((0, 0, 171, 97)))  # partial blocks; tile=4: many tiles, many exclusions
    files = [
        container.write_container(codec.encode(pixels, "RGB", 30, predictor=p, force_prediction=True, tile=4).container)
        for p in (predictor, WindowsOnly())
    ]
    assert files[0] == files[1]
    parsed = container.read_container(io.BytesIO(files[0]))
    np.testing.assert_array_equal(codec.decode(parsed, predictor), codec.decode(parsed, WindowsOnly()))
