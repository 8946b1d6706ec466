"""On a machine with onnxruntime's CUDA provider, the shipped integer predictor decodes the same pixels on
the GPU as on the CPU (issue 18: "CPU vs CUDA where a GPU is available"). Skipped without CUDA; CI has none,
so this runs wherever a GPU is lent (``python -m pytest tests/runtime/test_cuda_exactness.py``)."""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

import pillow_blockcnn  # noqa: F401  (registers .bcnn)
from pillow_blockcnn import runtime
from pillow_blockcnn.runtime import sessions, settings
from tests.helpers import block_contexts

CUDA = "CUDAExecutionProvider"
pytestmark = pytest.mark.skipif(CUDA not in ort.get_available_providers(), reason="onnxruntime has no CUDA here")


@pytest.fixture
def on(monkeypatch):
    def use(*providers: str) -> None:
        monkeypatch.setattr(settings, "PROVIDERS", providers)
        runtime.clear_sessions()

    yield use
    runtime.clear_sessions()


def test_integer_predictor_sessions_run_on_cuda_without_tf32(on) -> None:
    on(CUDA, "CPUExecutionProvider")
    session = sessions.session(runtime.default_model("predict").id)
    assert session.get_providers()[0] == CUDA
    assert session.get_provider_options()[CUDA]["use_tf32"] == "0"


def test_cuda_gives_the_cpus_predictions_on_many_contexts(on, sample) -> None:
    model = runtime.default_model("predict").id
    contexts, available = block_contexts(sample, 200_000, seed=11, p_available=0.7)
    results = []
    for providers in ((CUDA, "CPUExecutionProvider"), ("CPUExecutionProvider",)):
        on(*providers)
        predictor = runtime.predictor_for(model, 30)
        results.append(np.concatenate([predictor.predict(contexts[i : i + 4096], available[i : i + 4096], i % 3)
                                       for i in range(0, len(contexts), 4096)]))
    # the CPU's integers are themselves checked against the plain-integer reference (test_int_predictor_adapter)
    np.testing.assert_array_equal(results[0], results[1])


def test_a_file_decodes_to_the_same_pixels_on_cuda_and_cpu(on, sample) -> None:
    buf = io.BytesIO()
    on("CPUExecutionProvider")
    sample.save(buf, "BCNN", quality=25, predict=True, deblock=False)
    decodes = []
    for providers in (("CPUExecutionProvider",), (CUDA, "CPUExecutionProvider")):
        on(*providers)
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            assert im.info["predicted"]
            decodes.append(np.asarray(im.convert("RGB")))
    np.testing.assert_array_equal(decodes[0], decodes[1])
