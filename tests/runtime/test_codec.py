"""The pixel path: colour, planes, blocks, the closed prediction loop."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pillow_blockcnn import codec
from pillow_blockcnn.codec import colour, jpeg
from pillow_blockcnn.codec.blocks import NullPredictor, gather_contexts, wavefronts
from pillow_blockcnn.format import container
from pillow_blockcnn.runtime import jfif
from tests.conftest import psnr
from tests.helpers import MeanEdgePredictor


def _jpeg(im: Image.Image, **params: object) -> tuple[int, np.ndarray]:
    out = io.BytesIO()
    im.save(out, "JPEG", optimize=True, **params)
    size = out.tell()
    with Image.open(out) as decoded:
        return size, np.asarray(decoded)


def _roundtrip(pixels: np.ndarray, mode: str, **params: object) -> tuple[bytes, np.ndarray, codec.EncodedImage]:
    predictor = params.get("predictor")
    params.setdefault("tables", "jpeg")  # libjpeg's tables: the pixels of a Pillow JPEG of this quality
    encoded = codec.encode(pixels, mode, reconstruct=True, **params)  # type: ignore[arg-type]
    data = container.write_container(encoded.container)
    decoded = codec.decode(container.read_container(io.BytesIO(data)), predictor)  # type: ignore[arg-type]
    return data, decoded, encoded


@pytest.mark.parametrize("quality", [5, 30, 90])
@pytest.mark.parametrize(("subsampling", "jpeg_name"), [(2, "4:2:0"), (1, "4:2:2"), (0, "4:4:4")])
def test_unpredicted_rgb_decodes_to_the_same_pixels_as_pillow_jpeg(small, quality, subsampling, jpeg_name) -> None:
    size, reference = _jpeg(small, quality=quality, subsampling=jpeg_name)
    data, decoded, _ = _roundtrip(np.asarray(small), "RGB", quality=quality, subsampling=subsampling)
    np.testing.assert_array_equal(decoded, reference)
    assert len(data) < size  # no JFIF header, no quantisation tables


def test_unpredicted_gray_matches_pillow_jpeg(sample) -> None:
    gray = sample.convert("L")
    size, reference = _jpeg(gray, quality=50)
    data, decoded, _ = _roundtrip(np.asarray(gray), "L", quality=50)
    np.testing.assert_array_equal(decoded, reference)
    assert len(data) < size


def test_quant_tables_equal_libjpeg(sample) -> None:
    for quality in (1, 10, 50, 51, 99, 100):
        out = io.BytesIO()
        sample.save(out, "JPEG", quality=quality)
        with Image.open(out) as im:
            tables = im.quantization
        assert list(tables[0]) == jpeg.quant_table(quality, chroma=False, tables="jpeg")
        assert list(tables[1]) == jpeg.quant_table(quality, chroma=True, tables="jpeg")


def test_colour_transforms_keep_greys_grey_and_invert() -> None:
    grey = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    ycc = colour.rgb_to_ycbcr(grey)
    np.testing.assert_array_equal(ycc[0, 0], np.arange(256))
    assert (ycc[1:] == 128).all()
    np.testing.assert_array_equal(colour.ycbcr_to_rgb(ycc), grey)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 16, 3)).astype(np.float32)
    back = jfif.ycbcr_to_rgb_float(jfif.rgb_to_ycbcr_float(rgb))
    assert np.abs(back - rgb).max() < 1e-3


@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 9), (7, 1), (8, 8), (9, 17), (16, 33), (43, 61)])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_odd_sizes_round_trip(small, h, w, mode) -> None:
    pixels = np.asarray(small.convert(mode))[:h, :w]
    _, decoded, encoded = _roundtrip(np.ascontiguousarray(pixels), mode, quality=85)
    assert decoded.shape == pixels.shape
    np.testing.assert_array_equal(decoded, encoded.reconstruction)
    assert psnr(decoded, pixels) > 25


def test_alpha_is_lossless() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (37, 29, 4), dtype=np.uint8)
    _, decoded, _ = _roundtrip(pixels, "RGBA", quality=20)
    np.testing.assert_array_equal(decoded[..., 3], pixels[..., 3])


@pytest.mark.parametrize(("blocks_y", "blocks_x"), [(5, 7), (3, 1), (1, 4), (1, 1)])
def test_wavefronts_visit_every_block_once_after_its_causal_neighbours(blocks_y, blocks_x) -> None:
    done = np.full((blocks_y, blocks_x), -1)
    for t, (by, bx) in enumerate(wavefronts(blocks_y, blocks_x)):
        assert len(by) > 0
        for y, x in zip(by, bx, strict=True):
            assert done[y, x] == -1
            for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
                if 0 <= y + dy < blocks_y and 0 <= x + dx < blocks_x:
                    assert 0 <= done[y + dy, x + dx] < t
            done[y, x] = t
    assert (done >= 0).all()


def test_contexts_hide_everything_the_decoder_does_not_have_yet() -> None:
    recon = np.arange(40 * 48, dtype=np.int64).reshape(40, 48).astype(np.uint8) | 1  # never 0 inside
    contexts, available = gather_contexts(recon, np.array([0, 1]), np.array([0, 2]))
    assert not contexts[:, 8:, 8:].any()
    assert not contexts[:, 16:].any()
    assert contexts[1, :8].all()
    assert contexts[1, 8:16, :8].all()
    assert available.tolist() == [[False, False, False, False], [True, True, True, True]]


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_closed_loop_decoder_reproduces_encoder_reconstruction_bit_for_bit(sample, mode) -> None:
    pixels = np.asarray(sample.convert(mode))[:120, :200]
    predictor = MeanEdgePredictor()
    data, decoded, encoded = _roundtrip(np.ascontiguousarray(pixels), mode, quality=25, predictor=predictor)
    np.testing.assert_array_equal(decoded, encoded.reconstruction)
    parsed = container.read_container(io.BytesIO(data))
    assert parsed.header.predicted
    assert parsed.header.models == ("test-mean-edge",)
    # One predictor call per front (a batch), not per block.
    assert max(predictor.calls) > 1
    plain, _, _ = _roundtrip(np.ascontiguousarray(pixels), mode, quality=25)
    assert abs(psnr(decoded, pixels) - psnr(codec.decode(container.read_container(io.BytesIO(plain))), pixels)) < 1.0


def test_predicted_file_needs_its_predictor(small) -> None:
    encoded = codec.encode(np.asarray(small), "RGB", 50, predictor=MeanEdgePredictor())
    with pytest.raises(ValueError, match="needs the predictor"):
        codec.decode(encoded.container)


def test_null_predictor_writes_an_unpredicted_file(small) -> None:
    encoded = codec.encode(np.asarray(small), "RGB", 50, predictor=NullPredictor())
    assert not encoded.container.header.predicted
    assert encoded.container.header.models == ()


def test_bad_arrays_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(np.zeros((4, 4), dtype=np.float32), "L")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        codec.encode(np.zeros((4, 4), dtype=np.uint8), "RGB")
    with pytest.raises(ValueError, match="empty"):
        codec.encode(np.zeros((0, 4), dtype=np.uint8), "L")
    with pytest.raises(ValueError, match="CMYK"):
        codec.encode(np.zeros((4, 4, 4), dtype=np.uint8), "CMYK")
