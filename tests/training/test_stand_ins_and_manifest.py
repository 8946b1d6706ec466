"""What the runtime tests take on trust: the committed stand-in models compute what their torch networks
compute, and the packaged deblockers' quality limits are the committed measurements' results."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import pillow_blockcnn
from export.conversion.stand_ins import stand_in_deblocker, stand_in_predictor, write_stand_ins
from export.evaluation.quality_range import max_quality, max_quality_by_mode
from pillow_blockcnn import runtime
from pillow_blockcnn.codec.blocks import gather_contexts, wavefronts
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float
from tests.helpers import register_models, stand_in

REPO = Path(__file__).resolve().parents[2]


def _torch_deblock(model: torch.nn.Module, rgb: np.ndarray, quality: int) -> np.ndarray:
    ycc = rgb_to_ycbcr_float(rgb)
    x = np.concatenate([ycc.transpose(2, 0, 1) / 255.0, np.full((1, *rgb.shape[:2]), quality / 100.0)])[None]
    with torch.no_grad():
        y = model(torch.from_numpy(x.astype(np.float32))).numpy()[0].transpose(1, 2, 0) * 255.0
    return to_uint8(ycbcr_to_rgb_float(y))


def test_the_committed_deblocker_stand_in_is_its_torch_network(monkeypatch, sample) -> None:
    register_models(monkeypatch, {"test-deblock": ("deblock", stand_in("test-deblock"))})
    out = io.BytesIO()
    sample.crop((0, 0, 96, 64)).save(out, "JPEG", quality=20)
    jpeg = Image.open(out)
    restored = np.asarray(pillow_blockcnn.deblock(jpeg))
    expected = _torch_deblock(stand_in_deblocker(), np.asarray(jpeg), 20)
    assert np.abs(restored.astype(np.int16) - expected).max() <= 1
    assert not np.array_equal(restored, np.asarray(jpeg))


def test_the_committed_predictor_stand_in_is_its_torch_network(monkeypatch, sample) -> None:
    register_models(monkeypatch, {"test-predict": ("predict", stand_in("test-predict"))})
    plane = np.zeros((48 + 16, 64 + 16), dtype=np.uint8)
    plane[8:-8, 8:-8] = np.asarray(sample.convert("L"))[:48, :64]
    by, bx = wavefronts(6, 8)[7]
    contexts, available = gather_contexts(plane, by, bx)
    onnx_raw = runtime.OnnxPredictor("test-predict", 30).raw(contexts, available, 0)
    info = np.zeros((len(by), 6), dtype=np.float32)
    info[:, :4], info[:, 4] = available, 0.3
    with torch.no_grad():
        torch_raw = stand_in_predictor()(torch.from_numpy(contexts.astype(np.float32) / 255.0), torch.from_numpy(info))
    np.testing.assert_allclose(onnx_raw, torch_raw.numpy(), atol=1e-3)


def test_the_stand_ins_can_be_rebuilt(tmp_path) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    feeds = {
        "test-deblock.onnx": {"x": rng.random((1, 4, 32, 40), dtype=np.float32)},
        "test-predict.onnx": {"context": rng.random((5, 24, 24), dtype=np.float32),
                              "info": rng.random((5, 6), dtype=np.float32)},
        "test-int-predict.onnx": {"x": rng.integers(-255, 256, (5, 262)).astype(np.float32)},
        "test-int-guided.onnx": {"x": rng.integers(-255, 256, (5, 582)).astype(np.float32)},
    }
    for path in write_stand_ins(tmp_path):
        committed = REPO / "tests" / "runtime" / "models" / path.name
        rebuilt, kept = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (path, committed))
        np.testing.assert_allclose(rebuilt.run(None, feeds[path.name])[0], kept.run(None, feeds[path.name])[0],
                                   atol=1e-5, err_msg=path.name)
    for layers in ("test-int-predict.npz", "test-int-guided.npz"):
        committed = np.load(REPO / "tests" / "runtime" / "models" / layers)
        for name, value in np.load(tmp_path / layers).items():
            np.testing.assert_array_equal(value, committed[name], err_msg=f"{layers} {name}")


def test_packaged_deblockers_state_the_quality_range_they_were_measured_on() -> None:
    """Every packaged deblocker that deblock() may use on JPEGs carries the quality limit its committed
    measurement gives (a restorer of .bcnn decodes only needs none: the encoder measures its gain per file)."""
    results = REPO / "results" / "quality_range"
    jpeg_restorers = [info for info in runtime.models("deblock") if "jpeg" in info.restores]
    assert jpeg_restorers, "no packaged deblocker restores JPEGs"
    for info in jpeg_restorers:
        assert isinstance(info.details.get("max_quality"), int), info.id
        assert 1 <= info.max_quality <= 100, info.id
        # the manifest carries what the committed measurement gives, not a hand-picked number
        gain = json.loads((results / f"quality_range_{info.id}.json").read_text())["gain"]
        assert info.max_quality == max_quality(gain), info.id
        assert info.details["max_quality_by_mode"] == max_quality_by_mode(gain), info.id


def test_packaged_defaults_restore_what_they_were_trained_on() -> None:
    """New .bcnn files name the newest restorer trained on .bcnn decodes; deblock() keeps the newest JPEG one."""
    for tables in ("jpeg", "mse", "ssim"):
        bcnn = runtime.default_model("deblock", tables)
        assert bcnn is not None, tables
        assert "bcnn" in bcnn.restores, tables
    jpeg = runtime.default_model("deblock", "jpeg", restores="jpeg")
    assert jpeg is not None
    assert "jpeg" in jpeg.restores
    assert all(m.details.get("restores") for m in runtime.models("deblock")), "say what each packaged deblocker restores"
