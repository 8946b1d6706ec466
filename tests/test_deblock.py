"""deblock() and deblocking inside .bcnn decoding, through the runtime's model registry.

A tiny random-weight model (exported by the real export path) stands in for the
packaged one, so these tests check the plumbing, not the model's quality (that
is what export/evaluate_deblock.py measures).
"""

from __future__ import annotations

import hashlib
import io
import threading

import numpy as np
import pytest
import torch  # the train extra: builds the stand-in model through the real export path
from PIL import Image

import pillow_blockcnn
from pillow_blockcnn import colour, deblocking, runtime

from .conftest import save_bytes
from .helpers import register_models

MODEL_ID = "test-deblock"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from export.export_onnx import export_model
    from export.models import BlockUNet

    torch.manual_seed(0)
    model = BlockUNet(ch=(8, 8, 8), enc_blocks=(1, 1, 1), dec_blocks=(1, 1)).eval()
    with torch.no_grad():
        model.tail.weight.normal_(0, 0.05)  # not the identity it starts as
    path = export_model(model, tmp_path_factory.mktemp("model") / "tiny.onnx")
    return model, path.read_bytes()


@pytest.fixture
def registry(monkeypatch, tiny_model):
    _, data = tiny_model
    entries = register_models(
        monkeypatch, {"test-damaged": ("deblock", data), MODEL_ID: ("deblock", data)}, {"test-damaged": "0" * 64}
    )
    yield entries
    runtime.clear_sessions()


def _torch_reference(model, rgb: np.ndarray, quality: int) -> np.ndarray:
    ycc = colour.rgb_to_ycbcr_float(rgb)
    x = np.concatenate([ycc.transpose(2, 0, 1) / 255.0, np.full((1, *rgb.shape[:2]), quality / 100.0)])[None]
    with torch.no_grad():
        y = model(torch.from_numpy(x.astype(np.float32))).numpy()[0].transpose(1, 2, 0) * 255.0
    return np.clip(np.rint(colour.ycbcr_to_rgb_float(y)), 0, 255).astype(np.uint8)


def _jpeg(im: Image.Image, quality: int, **params: object) -> Image.Image:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, **params)
    return Image.open(out)


def test_deblock_equals_the_torch_model(registry, tiny_model, sample) -> None:
    model, _ = tiny_model
    jpeg = _jpeg(sample.crop((0, 0, 96, 64)), 20)
    restored = pillow_blockcnn.deblock(jpeg)
    expected = _torch_reference(model, np.asarray(jpeg), 20)
    assert np.abs(np.asarray(restored).astype(np.int16) - expected).max() <= 1
    assert not np.array_equal(np.asarray(restored), np.asarray(jpeg))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA"])
@pytest.mark.parametrize("size", [(1, 1), (13, 9), (70, 41)])
def test_modes_and_sizes_are_kept(registry, sample, mode, size) -> None:
    src = sample.convert(mode).resize(size)
    src.info["icc_profile"] = b"icc"
    out = pillow_blockcnn.deblock(src, quality=30)
    assert (out.mode, out.size) == (mode, size)
    assert out.info["icc_profile"] == b"icc"
    if mode in ("RGBA", "LA"):
        np.testing.assert_array_equal(np.asarray(out)[..., -1], np.asarray(src)[..., -1])


def test_quality_is_estimated_from_jpeg_tables(sample) -> None:
    for quality in (5, 10, 25, 50, 75, 90):
        with _jpeg(sample, quality) as jpeg:
            assert deblocking.estimate_quality(jpeg.quantization[0]) == quality


def test_unknown_quality_and_bad_modes_are_clear_errors(registry, sample) -> None:
    with pytest.raises(ValueError, match="pass quality="):
        pillow_blockcnn.deblock(sample)
    with pytest.raises(ValueError, match="mode CMYK"):
        pillow_blockcnn.deblock(sample.convert("CMYK"), quality=20)
    with pytest.raises(ValueError, match="quality must be"):
        pillow_blockcnn.deblock(sample, quality=0)


def test_images_above_the_models_max_quality_are_returned_unchanged(registry, sample) -> None:
    import dataclasses

    info = registry[MODEL_ID]
    registry[MODEL_ID] = dataclasses.replace(info, details={**info.details, "max_quality": 50})
    src = sample.crop((0, 0, 64, 48))
    for quality in (51, 100):
        with _jpeg(src, quality) as jpeg:
            jpeg.load()
            out = pillow_blockcnn.deblock(jpeg)
            assert out is not jpeg and out.info == jpeg.info
            np.testing.assert_array_equal(np.asarray(out), np.asarray(jpeg))
    with _jpeg(src, 50) as jpeg:
        assert not np.array_equal(np.asarray(pillow_blockcnn.deblock(jpeg)), np.asarray(jpeg))


def test_each_jpeg_kind_gets_the_limit_measured_for_it(registry, sample) -> None:
    import dataclasses

    info = registry[MODEL_ID]
    by_mode = {"colour 4:2:0": 92, "colour 4:4:4": 85, "gray": 88}
    registry[MODEL_ID] = dataclasses.replace(info, details={**info.details, "max_quality": 85,
                                                            "max_quality_by_mode": by_mode})
    src = sample.crop((0, 0, 64, 48))

    def changed(im: Image.Image, **params: object) -> bool:
        with _jpeg(im, 90, **params) as jpeg:
            jpeg.load()
            return not np.array_equal(np.asarray(pillow_blockcnn.deblock(jpeg)), np.asarray(jpeg))

    assert changed(src, subsampling=2)  # 90 <= 92
    assert not changed(src, subsampling=0)  # 90 > 85
    assert not changed(src, subsampling=1)  # 4:2:2 was not measured: the strictest limit, 85
    assert not changed(src.convert("L"))  # 90 > 88
    with _jpeg(src, 90) as jpeg:  # the same pixels, no longer a JPEG file: kind unknown, 85
        plain = jpeg.convert("RGB")
    assert np.array_equal(np.asarray(pillow_blockcnn.deblock(plain, quality=90)), np.asarray(plain))
    assert runtime.model_info(MODEL_ID).max_quality_for("colour 4:2:0") == 92
    assert runtime.model_info(MODEL_ID).max_quality_for(None) == 85


def test_packaged_deblockers_state_the_quality_range_they_were_measured_on() -> None:
    import json
    from pathlib import Path

    from export.quality_range import max_quality, max_quality_by_mode

    results = Path(__file__).resolve().parents[1] / "results"
    for info in runtime.models("deblock"):
        assert isinstance(info.details.get("max_quality"), int) and 1 <= info.max_quality <= 100, info.id
        # the manifest carries what the committed measurement gives, not a hand-picked number
        gain = json.loads((results / f"quality_range_{info.id}.json").read_text())["gain"]
        assert info.max_quality == max_quality(gain), info.id
        assert info.details["max_quality_by_mode"] == max_quality_by_mode(gain), info.id


def test_tiles_cover_large_images_and_stay_deterministic(registry, monkeypatch, sample) -> None:
    monkeypatch.setattr(deblocking, "TILE", 64)
    monkeypatch.setattr(deblocking, "HALO", 16)
    img = sample.crop((0, 0, 150, 99))
    a = pillow_blockcnn.deblock(img, quality=15)
    b = pillow_blockcnn.deblock(img, quality=15)
    assert a.size == img.size
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bcnn_files_are_deblocked_on_decode_unless_switched_off(registry, sample) -> None:
    src = sample.crop((0, 0, 88, 56))
    data = save_bytes(src, quality=20, deblock=True)  # recommended whether or not it helps
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["deblock"] and im.info["models"] == (MODEL_ID,)
        deblocked = np.asarray(im)
    plain = np.asarray(Image.open(io.BytesIO(save_bytes(src, quality=20, deblock=False))))
    np.testing.assert_array_equal(deblocked, deblocking.deblock_array(plain, 20, MODEL_ID))
    try:
        pillow_blockcnn.register_bcnn_opener(deblock=False)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), plain)
    finally:
        pillow_blockcnn.register_bcnn_opener(deblock=True)


def test_automatic_deblocking_is_recommended_only_when_it_helps(registry, sample) -> None:
    # The random stand-in model makes every image worse: the encoder, which has the original, checks and
    # leaves the recommendation out (deblock=True still writes it: test_bcnn_files_are_deblocked_on_decode...).
    src = sample.crop((0, 0, 88, 56))
    with Image.open(io.BytesIO(save_bytes(src, quality=20))) as im:
        assert not im.info["deblock"] and im.info["models"] == ()
        np.testing.assert_array_equal(np.asarray(im), np.asarray(_open_plain(src, 20)))
    for mode in ("L", "RGBA"):
        with Image.open(io.BytesIO(save_bytes(src.convert(mode), quality=20))) as im:
            assert not im.info["deblock"]


def test_the_packaged_deblocker_is_recommended_where_it_helps(sample) -> None:
    # A 4:2:0 photo at low quality is where the packaged deblocker was trained to help.
    src = sample.crop((100, 60, 292, 188))
    with Image.open(io.BytesIO(save_bytes(src, quality=20))) as im:
        assert im.info["deblock"] and im.info["models"][-1] == runtime.default_model("deblock", "mse").id


def _open_plain(src: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(save_bytes(src, quality=quality, deblock=False)))


def test_a_file_needing_a_missing_model_is_refused_by_name(registry, sample, monkeypatch) -> None:
    data = save_bytes(sample.crop((0, 0, 16, 16)), quality=20, deblock=True)
    monkeypatch.setattr(runtime, "_manifest", dict)
    with pytest.raises(runtime.ModelError, match=f"model '{MODEL_ID}' is not part of pillow-blockcnn"):
        Image.open(io.BytesIO(data)).load()


def test_a_model_file_failing_its_sha256_is_never_loaded(registry, sample) -> None:
    with pytest.raises(runtime.ModelError, match="damaged"):
        pillow_blockcnn.deblock(sample, quality=20, model="test-damaged")
    with pytest.raises(runtime.ModelError, match="model file .* is damaged"):
        runtime.model_bytes("test-damaged")


def test_every_packaged_model_file_matches_its_manifest_checksum() -> None:
    for info in runtime.models():
        data = runtime.model_bytes(info.id)
        assert hashlib.sha256(data).hexdigest() == info.sha256, info.id
        assert data[:1] == b"\x08", f"{info.id}: not an ONNX protobuf (ir_version field first)"


def test_concurrent_deblocking_matches_serial(registry, sample) -> None:
    img = sample.crop((0, 0, 120, 80))
    expected = np.asarray(pillow_blockcnn.deblock(img, quality=25))
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(np.asarray(pillow_blockcnn.deblock(img, quality=25)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(np.array_equal(r, expected) for r in results)


def test_deblocking_is_identical_across_thread_counts(registry, sample) -> None:
    img = sample.crop((0, 0, 136, 72))
    outputs = []
    try:
        for threads in (1, 2, 1):
            pillow_blockcnn.register_bcnn_opener(threads=threads)
            outputs.append(np.asarray(pillow_blockcnn.deblock(img, quality=35)))
    finally:
        pillow_blockcnn.register_bcnn_opener(threads=0)
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])


def test_a_retired_model_names_the_release_that_has_it(registry, monkeypatch) -> None:
    monkeypatch.setattr(runtime, "_retired", lambda: {"deblock-old": "0.1.x"})
    with pytest.raises(runtime.ModelError, match=r"pillow-blockcnn 0\.1\.x ships it"):
        runtime.model_info("deblock-old")
