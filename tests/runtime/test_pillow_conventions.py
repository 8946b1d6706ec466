"""Behaviour Pillow's own plugins' test suites expect of a format plugin, each from a defect found by holding
the .bcnn plugin to them: copies, pickling, quality 0, premultiplied modes, size limits, one bomb warning."""

from __future__ import annotations

import copy
import io
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image

import pillow_blockcnn
from pillow_blockcnn import codec
from pillow_blockcnn.format import container
from pillow_blockcnn.format.limits import MAX_DIMENSION
from tests.conftest import save_bytes
from tests.helpers import MeanEdgePredictor


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("load_first", [True, False])
def test_an_opened_image_pickles_and_deep_copies(small, load_first) -> None:
    with _open(save_bytes(small, quality=50, deblock=False)) as im:
        if load_first:
            im.load()
        expected = np.asarray(_open(save_bytes(small, quality=50, deblock=False)))
        for clone in (pickle.loads(pickle.dumps(im)), copy.deepcopy(im), copy.copy(im)):
            clone.load()  # used to raise AttributeError: no attribute 'fp'
            assert (clone.mode, clone.size) == (im.mode, im.size)
            np.testing.assert_array_equal(np.asarray(clone), expected)
            assert clone.info["quality"] == 50


def test_quality_0_is_accepted_as_pillows_jpeg_webp_and_avif_accept_it(small) -> None:
    with _open(save_bytes(small, quality=0, deblock=False, predict=False)) as im:
        assert im.info["quality"] == 1  # what libjpeg's scaling makes of 0
        np.testing.assert_array_equal(
            np.asarray(im), np.asarray(_open(save_bytes(small, quality=1, deblock=False, predict=False)))
        )
    out = io.BytesIO()
    small.save(out, "JPEG", quality=0)  # the behaviour matched


@pytest.mark.parametrize("mode", ["La", "LA", "RGBa", "PA", "1", "RGBX", "YCbCr"])
def test_every_mode_the_readme_promises_is_converted(small, mode) -> None:
    src = small.convert("RGBA").convert(mode) if mode != "PA" else small.convert("P").convert("PA")
    with _open(save_bytes(src, quality=90, deblock=False)) as im:
        assert im.mode in ("L", "RGB", "RGBA")
        if mode in ("La", "LA", "RGBa", "PA"):
            assert im.mode == "RGBA"


@pytest.mark.parametrize(("width", "height"), [(MAX_DIMENSION, 8), (65497, 3), (9, MAX_DIMENSION), (16, 65499)])
def test_images_up_to_the_promised_65500_pixels_per_side_round_trip(width, height) -> None:
    rng = np.random.default_rng(width + height)
    pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
    pixels[:, : width // 2] = 200  # a flat part and a noisy part
    im = Image.fromarray(pixels, "L")
    data = save_bytes(im, quality=80, deblock=False, predict=False, tables="jpeg")
    encoded = codec.encode(pixels, "L", 80, tables="jpeg", reconstruct=True)
    assert container.write_container(encoded.container) == data
    with _open(data) as back:
        assert back.size == (width, height)
        np.testing.assert_array_equal(np.asarray(back), encoded.reconstruction)


@pytest.mark.parametrize("shape", [(8, 65500), (65499, 8)])
def test_predicted_planes_at_the_libjpeg_limit_decode_to_the_encoders_reconstruction(shape) -> None:
    # The plane is padded to 65 504 but its JPEG frame is cut to 65 500: encoder and decoder must see the
    # same last block (docs/FORMAT.md §4).
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    predictor = MeanEdgePredictor()
    encoded = codec.encode(pixels, "RGB", 70, subsampling=0, tables="mse", predictor=predictor, reconstruct=True)
    parsed = container.read_container(io.BytesIO(container.write_container(encoded.container)))
    np.testing.assert_array_equal(codec.decode(parsed, predictor), encoded.reconstruction)


def test_a_size_above_the_limit_is_refused_with_the_limit_named() -> None:
    im = Image.new("L", (MAX_DIMENSION + 1, 1))
    with pytest.raises(ValueError, match="65500"):
        save_bytes(im)


def test_a_large_image_warns_once_as_pillow_does(monkeypatch, small) -> None:
    data = save_bytes(small, quality=50, deblock=False)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", small.width * small.height - 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Image.open(io.BytesIO(data)).close()
    assert [w.category for w in caught] == [Image.DecompressionBombWarning]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", small.width * small.height // 2 - 1)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))


def test_open_bcnn_refuses_other_formats(small) -> None:
    out = io.BytesIO()
    small.save(out, "PNG")
    with pytest.raises(Image.UnidentifiedImageError):
        pillow_blockcnn.open_bcnn(io.BytesIO(out.getvalue()))


def test_tune_picks_the_table_set_for_its_metric(small) -> None:
    with _open(save_bytes(small, quality=40, tune="ssim", deblock=False)) as im:
        assert im.info["tables"] == "ssim"
    with _open(save_bytes(small, quality=40, tune="psnr", deblock=False)) as im:
        assert im.info["tables"] == "mse"
    with _open(save_bytes(small, quality=40, tune="ssim", tables="ssim", deblock=False)) as im:
        assert im.info["tables"] == "ssim"
    with _open(save_bytes(small, quality=40, tune="balanced", deblock=False)) as im:
        assert im.info["tables"] == "balanced"
    with pytest.raises(ValueError, match="pass one of them"):
        save_bytes(small, tune="ssim", tables="jpeg")
    with pytest.raises(ValueError, match="Invalid tune"):
        save_bytes(small, tune="looks")


@pytest.mark.parametrize("coding", ["arithmetic", "huffman"])
def test_coding_is_a_save_option_and_both_decode(small, coding) -> None:
    with _open(save_bytes(small, quality=40, coding=coding, deblock=False)) as im:
        assert im.info["coding"] == coding
        assert im.size == small.size
    with pytest.raises(ValueError, match="Invalid coding"):
        save_bytes(small, coding="zip")


def test_draft_reduces_like_pillows_jpeg_and_thumbnail_uses_it(sample) -> None:
    data = save_bytes(sample, quality=40)
    full = np.asarray(_open(data).convert("RGB")).astype(np.float64)
    with _open(data) as im:
        assert im.draft(None, (100, 80)) == ("RGB", (0, 0, sample.width / 4, sample.height / 4))
        assert im.size == (-(-sample.width // 4), -(-sample.height // 4))
        assert im.draft(None, (50, 40)) is None  # a second call changes nothing, as for JPEG
        small = np.asarray(im).astype(np.float64)
    reference = np.asarray(Image.fromarray(full.astype(np.uint8)).reduce(4)).astype(np.float64)
    assert 10 * np.log10(255**2 / np.mean((small - reference) ** 2)) > 35  # the same picture, undeblocked
    with _open(data) as im:
        im.thumbnail((128, 128))
        assert max(im.size) == 128
    with _open(data) as im:
        assert im.draft(None, (sample.width, sample.height)) is None  # no reduction possible
        im.load()
        assert im.draft(None, (10, 10)) is None  # already loaded


def test_draft_to_gray_decodes_the_luma_plane_only(sample) -> None:
    data = save_bytes(sample, quality=40, deblock=False)
    with _open(data) as im:
        assert im.draft("L", None) == ("L", (0, 0, sample.width, sample.height))
        gray = np.asarray(im)
        assert im.mode == "L"
    rgb = np.asarray(_open(data)).astype(np.int64)
    y = (19595 * rgb[..., 0] + 38470 * rgb[..., 1] + 7471 * rgb[..., 2] + 32768) >> 16
    diff = np.abs(gray.astype(np.int64) - y)  # the decoded Y plane vs Y of the decoded RGB (which clamps)
    assert diff.mean() < 0.5
    assert np.quantile(diff, 0.99) <= 2
