"""deblock() and deblocking inside .bcnn decoding, through the runtime's model registry.

A tiny random-weight model (``tests/runtime/models/test-deblock.onnx``, made by
``python -m export.conversion.stand_ins``) stands in for the packaged one, so these
tests check the plumbing, not the model's quality (that is what
``export.evaluation.evaluate_deblock`` measures); ``tests/training`` checks the
stand-in against the torch network it was exported from.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pillow_blockcnn
from pillow_blockcnn import deblocking, runtime
from pillow_blockcnn.runtime import deblocker
from tests.conftest import save_bytes
from tests.helpers import register_models, stand_in

MODEL_ID = "test-deblock"


@pytest.fixture
def registry(monkeypatch):
    data = stand_in("test-deblock")
    entries = register_models(
        monkeypatch, {"test-damaged": ("deblock", data), MODEL_ID: ("deblock", data)}, {"test-damaged": "0" * 64}
    )
    yield entries
    runtime.clear_sessions()


def _limit(**details: object) -> None:
    """Register the stand-in again with manifest details (quality limits) of a test's choosing."""
    runtime.register_model(MODEL_ID, "deblock", stand_in("test-deblock"), **details)


def _jpeg(im: Image.Image, quality: int, **params: object) -> Image.Image:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, **params)
    return Image.open(out)


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
    _limit(max_quality=50)
    src = sample.crop((0, 0, 64, 48))
    for quality in (51, 100):
        with _jpeg(src, quality) as jpeg:
            jpeg.load()
            out = pillow_blockcnn.deblock(jpeg)
            assert out is not jpeg
            assert out.info == jpeg.info
            np.testing.assert_array_equal(np.asarray(out), np.asarray(jpeg))
    with _jpeg(src, 50) as jpeg:
        assert not np.array_equal(np.asarray(pillow_blockcnn.deblock(jpeg)), np.asarray(jpeg))


def test_each_jpeg_kind_gets_the_limit_measured_for_it(registry, sample) -> None:
    _limit(max_quality=85, max_quality_by_mode={"colour 4:2:0": 92, "colour 4:4:4": 85, "gray": 88})
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


def test_tiles_cover_large_images_and_stay_deterministic(registry, monkeypatch, sample) -> None:
    monkeypatch.setattr(deblocker, "TILE", 64)
    monkeypatch.setattr(deblocker, "ONE_PASS", 64)
    monkeypatch.setattr(deblocker, "HALO", 16)
    img = sample.crop((0, 0, 150, 99))
    a = pillow_blockcnn.deblock(img, quality=15)
    b = pillow_blockcnn.deblock(img, quality=15)
    assert a.size == img.size
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("length", [8, 1024, 1032, 1288, 2824, 3000, 4000, 4240, 65000])
def test_tile_spans_cover_an_axis_with_windows_of_one_shape(length: int) -> None:
    spans = deblocker._spans(length)
    kept = [(a, b) for a, b, _, _ in spans]
    assert kept[0][0] == 0
    assert kept[-1][1] == length
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(kept, kept[1:]))  # no gap, no overlap
    if length <= deblocker.ONE_PASS:
        assert spans == [(0, length, 0, length)]
        return
    assert len(spans) == -(-length // deblocker.TILE)
    assert {w1 - w0 for _, _, w0, w1 in spans} == {spans[0][1] + 2 * deblocker.HALO}  # one shape
    for a, b, w0, w1 in spans:
        assert b - a <= deblocker.TILE
        assert w0 % 8 == 0  # the block grid
        assert a % 8 == 0
        assert 0 <= w0 <= a
        assert b <= w1 <= length
        assert a - w0 >= min(a, deblocker.HALO)  # a halo of context, except at the border
        assert w1 - b >= min(length - b, deblocker.HALO)


def test_bcnn_files_are_deblocked_on_decode_unless_switched_off(registry, sample) -> None:
    src = sample.crop((0, 0, 88, 56))
    data = save_bytes(src, quality=20, deblock=True)  # recommended whether or not it helps
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["deblock"]
        assert im.info["models"] == (MODEL_ID,)
        deblocked = np.asarray(im)
        assert im.info["deblocked_with"] == MODEL_ID
    plain = np.asarray(Image.open(io.BytesIO(save_bytes(src, quality=20, deblock=False))))
    np.testing.assert_array_equal(deblocked, runtime.deblock_array(plain, 20, MODEL_ID))
    with pillow_blockcnn.open_bcnn(io.BytesIO(data), deblock=False) as im:
        np.testing.assert_array_equal(np.asarray(im), plain)
        assert "deblocked_with" not in im.info
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
        assert not im.info["deblock"]
        assert im.info["models"] == ()
        np.testing.assert_array_equal(np.asarray(im), np.asarray(_open_plain(src, 20)))
    for mode in ("L", "RGBA"):
        with Image.open(io.BytesIO(save_bytes(src.convert(mode), quality=20))) as im:
            assert not im.info["deblock"]


def test_the_packaged_deblocker_is_recommended_where_it_helps(sample) -> None:
    # A 4:2:0 photo at low quality is where the packaged deblocker was trained to help.
    src = sample.crop((100, 60, 292, 188))
    with Image.open(io.BytesIO(save_bytes(src, quality=20))) as im:
        assert im.info["deblock"]
        assert im.info["models"][-1] == runtime.default_model("deblock", "mse").id


@pytest.mark.parametrize("model_id", [m.id for m in runtime.models("deblock") if "bcnn" in m.restores])
def test_every_packaged_bcnn_restorer_brings_a_decode_closer_to_the_original(sample, model_id) -> None:
    """The speed/quality choices a decoder may make (README: dblk-7 fastest, dblk-8 between) are real
    restorers of this codec's decodes, not just loadable files, and none is clearly better than the one new
    files recommend."""
    src = sample.crop((100, 60, 292, 188))
    original = np.asarray(src, dtype=np.float64)
    data = save_bytes(src, quality=20, deblock=True)

    def error(deblock: bool | str) -> float:
        with pillow_blockcnn.open_bcnn(io.BytesIO(data), deblock=deblock) as im:
            im.load()
            if deblock:
                assert im.info["deblocked_with"] == deblock
            return float(np.mean((np.asarray(im, dtype=np.float64) - original) ** 2))

    plain, restored = error(False), error(model_id)
    assert restored < 0.9 * plain
    assert restored >= 0.97 * error(runtime.default_model("deblock", "balanced").id)


def _open_plain(src: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(save_bytes(src, quality=quality, deblock=False)))


def test_a_file_recommending_a_missing_deblocker_is_deblocked_with_the_current_one(monkeypatch, sample) -> None:
    # Deblocking is a post-filter, not part of the exact decode (docs/FORMAT.md §7): a decoder without the
    # recommended model runs its own current deblocker and says which.
    data = stand_in("test-deblock")
    register_models(monkeypatch, {"test-old": ("deblock", data)})
    saved = save_bytes(sample.crop((0, 0, 32, 24)), quality=20, deblock=True)
    register_models(monkeypatch, {"test-new": ("deblock", data)})
    with Image.open(io.BytesIO(saved)) as im:
        assert im.info["models"] == ("test-old",)
        im.load()
        assert im.info["deblocked_with"] == "test-new"
    register_models(monkeypatch, {})
    with pytest.raises(runtime.ModelError, match="no deblocking model"), Image.open(io.BytesIO(saved)) as im:
        im.load()
    with pillow_blockcnn.open_bcnn(io.BytesIO(saved), deblock=False) as im:
        im.load()  # the exact decode needs no deblocker


def test_a_prediction_model_named_for_deblocking_is_an_error(monkeypatch, sample) -> None:
    register_models(monkeypatch, {"test-predict": ("predict", stand_in("test-predict"))})
    with pytest.raises(runtime.ModelError, match="is a predict model, not a deblock model"):
        pillow_blockcnn.deblock(sample, quality=20, model="test-predict")
    with pytest.raises(runtime.ModelError, match="is a predict model, not a deblock model"):
        runtime.deblocker_for("test-predict")


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
    assert len(results) == 8
    assert all(np.array_equal(r, expected) for r in results)


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


def test_a_dropped_model_says_why() -> None:
    # dblk-1..dblk-4 were superseded before any release and are no longer shipped (CHANGELOG).
    with pytest.raises(runtime.ModelError, match=r"model 'dblk-1' is not part of .* dropped before release"):
        runtime.model_info("dblk-1")
    with pytest.raises(runtime.ModelError, match="newer or modified pillow-blockcnn"):
        runtime.model_info("never-existed")


def test_a_deblocker_for_bcnn_decodes_is_not_used_on_jpegs(registry, sample) -> None:
    """A model trained on the codec's own decodes (manifest ``restores: ["bcnn"]``) becomes the default of
    new .bcnn files; deblock() on ordinary JPEGs keeps the newest model that restores JPEGs."""
    runtime.register_model("test-bcnn-deblock", "deblock", stand_in("test-deblock"), restores=["bcnn"])
    assert runtime.default_model("deblock", "mse").id == "test-bcnn-deblock"
    assert runtime.default_model("deblock", "jpeg", restores="jpeg").id == MODEL_ID
    data = save_bytes(sample.crop((0, 0, 64, 48)), quality=20, deblock=True)
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["models"][-1] == "test-bcnn-deblock"
    jpeg = _jpeg(sample.crop((0, 0, 64, 48)), 20)
    expected = runtime.deblock_array(np.asarray(jpeg.convert("RGB")), 20, MODEL_ID)
    np.testing.assert_array_equal(np.asarray(pillow_blockcnn.deblock(jpeg.convert("RGB"), quality=20)), expected)


def test_a_save_can_name_the_restorer_it_recommends(registry, sample, monkeypatch) -> None:
    """``deblock=<model id>`` picks another point of the speed/quality trade than the default's: the file
    recommends that model (when it helps, as the automatic choice), and its decode runs it."""
    runtime.register_model("test-fast", "deblock", stand_in("test-deblock"), restores=["bcnn"])
    runtime.register_model("test-jpeg-only", "deblock", stand_in("test-deblock"), restores=["jpeg"])
    src = sample.crop((0, 0, 64, 48))
    with monkeypatch.context() as m:  # the random stand-in never helps: let the encoder's check say it does
        m.setattr(pillow_blockcnn.pipeline, "_deblocking_pays", lambda *a: True)
        with Image.open(io.BytesIO(save_bytes(src, quality=20, deblock=MODEL_ID))) as im:
            assert im.info["models"][-1] == MODEL_ID
            im.load()
            assert im.info["deblocked_with"] == MODEL_ID
    with Image.open(io.BytesIO(save_bytes(src, quality=20, deblock=MODEL_ID))) as im:
        assert not im.info["deblock"]  # and without the override: the encoder's check leaves it out
    for bad, match in (("test-jpeg-only", "not a .bcnn restoration model"), ("pred-2", "not a .bcnn restoration"),
                       ("never-existed", "use one of .*test-fast")):
        with pytest.raises(ValueError, match=match):
            save_bytes(src, quality=20, deblock=bad)
    with pytest.raises(ValueError, match="or a deblocking model id"):
        save_bytes(src, quality=20, deblock=3)


def test_a_decoder_can_run_a_faster_restorer_than_the_file_recommends(registry, sample) -> None:
    """Deblocking is a post-filter outside the exact decode: ``deblock=<model id>`` (per image through
    ``open_bcnn``, or for every decode through ``options``) runs that restorer where the file recommends one,
    and nothing where it does not."""
    runtime.register_model("test-fast", "deblock", stand_in("test-deblock"), restores=["bcnn"])
    src = sample.crop((0, 0, 64, 48))
    data = save_bytes(src, quality=20, deblock=True)
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["models"][-1] == "test-fast"  # the newest restorer is the default
    runtime.register_model("test-other", "deblock", stand_in("test-deblock"), restores=["bcnn"])
    with pillow_blockcnn.open_bcnn(io.BytesIO(data), deblock="test-other") as im:
        im.load()
        assert im.info["deblocked_with"] == "test-other"
    before = pillow_blockcnn.options.current()
    try:
        pillow_blockcnn.options.update(deblock="test-other")
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert im.info["deblocked_with"] == "test-other"
        plain = save_bytes(src, quality=20, deblock=False)
        with Image.open(io.BytesIO(plain)) as im:
            im.load()
            assert "deblocked_with" not in im.info  # the file recommends none: nothing runs
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (16, 12))  # a reduced draft skips the post-filter, whichever it is
            im.load()
            assert "deblocked_with" not in im.info
    finally:
        pillow_blockcnn.options.update(**before)
    with pytest.raises(ValueError, match="not a .bcnn restoration model"):
        pillow_blockcnn.options.update(deblock="pred-2")
    with pytest.raises(ValueError, match="not a .bcnn restoration model") as nope:
        pillow_blockcnn.open_bcnn(io.BytesIO(data), deblock="nope")
    assert "dropped" not in str(nope.value)
    # an id an earlier pre-release shipped: the error says it was dropped and why, not just "unknown"
    with pytest.raises(ValueError, match=r"deblock='dblk-6' is not a .bcnn restoration model here: .*; it was "
                       r"dropped before release \(superseded by dblk-9"):
        pillow_blockcnn.open_bcnn(io.BytesIO(data), deblock="dblk-6")


#: Deblocks a 1100x700 picture (two tiles) with the packaged restorer in a fresh interpreter and prints by
#: how many MB its resident memory grew. ``keep`` runs it with run options that do not shrink the arena.
_GROWTH = r"""
import sys
import numpy as np
from pillow_blockcnn.runtime import deblocker, sessions

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

if sys.argv[1] == "keep":
    import onnxruntime
    deblocker.run_options = lambda session: onnxruntime.RunOptions()
img = np.random.default_rng(0).integers(0, 256, (1100, 700, 3), dtype=np.uint8)
sessions.session("dblk-9")
before = rss_mb()
deblocker.deblock_array(img, 30, "dblk-9")
print(round(rss_mb() - before))
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux's /proc")
def test_restoration_gives_its_tiles_memory_back() -> None:
    """A large decode's peak is about one tile's activations only if each run returns them: without the
    arena's shrinkage the session keeps the largest tile's for its lifetime (export/NOTES.md)."""

    def growth(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", _GROWTH, mode], capture_output=True, text=True, check=True)
        return int(run.stdout.split()[-1])

    kept, shipped = growth("keep"), growth("shipped")
    assert kept > 100  # the probe is large enough to show a kept arena
    assert shipped < 60


def test_sample_windows_lie_on_the_block_grid_one_per_cell() -> None:
    from pillow_blockcnn import pipeline

    for h, w in ((3000, 4000), (1, 1), (17, 2100), (1030, 1030)):
        windows = pipeline.sample_windows(h, w)
        assert len(windows) == -(-h // pipeline.SAMPLE_CELL) * -(-w // pipeline.SAMPLE_CELL)
        for y0, x0, y1, x1 in windows:
            assert y0 % 16 == 0
            assert x0 % 16 == 0
            assert 0 <= y0 < y1 <= h
            assert 0 <= x0 < x1 <= w
            assert y1 - y0 <= pipeline.SAMPLE_SIDE
            assert x1 - x0 <= pipeline.SAMPLE_SIDE
            assert y0 // pipeline.SAMPLE_CELL == (y1 - 1) // pipeline.SAMPLE_CELL  # inside its own cell


def _blur_restorer(calls: list[int]):
    """A stand-in restorer that removes noise by a 3x3 box mean, counting the pixels it restores."""

    def restore(pixels: np.ndarray, quality: int, model_id: str) -> np.ndarray:
        calls.append(pixels.shape[0] * pixels.shape[1])
        p = np.pad(pixels.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
        h, w = pixels.shape[:2]
        mean = sum(p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9
        return np.clip(np.round(mean), 0, 255).astype(np.uint8)

    return restore


def test_a_large_image_is_judged_on_samples_when_they_clearly_gain(monkeypatch) -> None:
    """Above SAMPLE_ABOVE pixels, restoring the sample windows decides when they gain clearly; otherwise the
    whole image is restored and measured, as for a small image."""
    from pillow_blockcnn import pipeline

    monkeypatch.setattr(pipeline, "SAMPLE_ABOVE", 10_000)
    monkeypatch.setattr(pipeline, "SAMPLE_CELL", 128)
    monkeypatch.setattr(pipeline, "SAMPLE_SIDE", 32)
    rng = np.random.default_rng(11)
    original = np.full((384, 512, 3), 120, dtype=np.uint8)
    noisy = np.clip(original + rng.normal(0, 12, original.shape).round(), 0, 255).astype(np.uint8)
    calls: list[int] = []
    monkeypatch.setattr(pipeline.runtime, "deblock_array", _blur_restorer(calls))
    assert pipeline._deblocking_pays(original, noisy, 30, "balanced", "dblk-9")
    assert max(calls) < 384 * 512
    assert sum(calls) < 384 * 512
    calls.clear()  # a restoration that gains nothing on the samples: the whole image decides
    monkeypatch.setattr(pipeline.runtime, "deblock_array", lambda p, q, m: calls.append(p.size // 3) or p.copy())
    assert not pipeline._deblocking_pays(original, noisy, 30, "balanced", "dblk-9")
    assert calls[-1] == 384 * 512
    calls.clear()  # below SAMPLE_ABOVE the whole image is restored once, as before
    monkeypatch.setattr(pipeline, "SAMPLE_ABOVE", 384 * 512)
    monkeypatch.setattr(pipeline.runtime, "deblock_array", _blur_restorer(calls))
    assert pipeline._deblocking_pays(original, noisy, 30, "balanced", "dblk-9")
    assert calls == [384 * 512]
