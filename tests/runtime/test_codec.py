"""The pixel path: colour, planes, blocks, the closed prediction loop."""

from __future__ import annotations

import io
import tempfile

import jpeglib
import numpy as np
import pytest
from PIL import Image

from pillow_blockcnn import codec
from pillow_blockcnn.codec import colour, jpeg
from pillow_blockcnn.codec.block_modes import encode_modes
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


def _bcnn_from_jpeg(data: bytes, mode: str, quality: int, subsampling: int, coding: str) -> container.Container:
    """A .bcnn container holding exactly the DCT levels of a JPEG that Pillow wrote (read by jpeglib)."""
    coefficients = jpeglib.read_dct(_temp_file(data))
    header = container.Header(
        width=coefficients.width, height=coefficients.height, mode=mode, quality=quality,
        subsampling=subsampling, tables="jpeg", coding=coding,
    )  # fmt: skip
    parsed = container.Container(header=header)
    components = [coefficients.Y] if mode == "L" else [coefficients.Y, coefficients.Cb, coefficients.Cr]
    for index, (levels, (h, w)) in enumerate(zip(components, codec.plane_shapes(header), strict=True)):
        levels = levels[: h // 8, : w // 8]
        qtable = jpeg.quant_table(quality, chroma=index > 0, tables="jpeg")
        residual = jpeg.write_levels(levels, qtable, coding, jpeg.frame_size(h, w))
        modes = encode_modes(np.zeros((h // 8, w // 8), bool))
        parsed.planes.append(container.PlanePayload(0, modes, residual).to_bytes())
    return parsed


_TEMP: list[object] = []


def _temp_file(data: bytes) -> str:
    handle = tempfile.NamedTemporaryFile(suffix=".jpg", delete=False)
    handle.write(data)
    handle.close()
    _TEMP.append(handle)
    return handle.name


@pytest.mark.parametrize("coding", ["arithmetic", "huffman"])
@pytest.mark.parametrize("quality", [5, 30, 90])
@pytest.mark.parametrize(("subsampling", "jpeg_name"), [(2, "4:2:0"), (1, "4:2:2"), (0, "4:4:4")])
def test_a_pillow_jpegs_levels_decode_to_its_pixels(small, quality, subsampling, jpeg_name, coding) -> None:
    """Planes, colour and upsampling (FORMAT.md §3) and the entropy path (§4) are libjpeg's: a .bcnn file
    holding a Pillow JPEG's own DCT levels decodes to that JPEG's pixels exactly."""
    out = io.BytesIO()
    small.save(out, "JPEG", quality=quality, subsampling=jpeg_name)
    reference = np.asarray(Image.open(io.BytesIO(out.getvalue())))
    parsed = _bcnn_from_jpeg(out.getvalue(), "RGB", quality, subsampling, coding)
    np.testing.assert_array_equal(codec.decode(parsed), reference)


def test_a_gray_jpegs_levels_decode_to_its_pixels(sample) -> None:
    out = io.BytesIO()
    sample.convert("L").save(out, "JPEG", quality=50)
    reference = np.asarray(Image.open(io.BytesIO(out.getvalue())))
    np.testing.assert_array_equal(codec.decode(_bcnn_from_jpeg(out.getvalue(), "L", 50, 2, "arithmetic")), reference)


@pytest.mark.parametrize("quality", [10, 50, 90])
def test_plain_coding_is_smaller_than_pillow_jpeg_at_the_same_psnr(sample, quality) -> None:
    """JPEG's tables and plain rounding (``rdo=False``): the same quantiser as Pillow's JPEG, so about the same
    PSNR, in fewer bytes (no JFIF headers, arithmetic coding)."""
    size, reference = _jpeg(sample, quality=quality, subsampling="4:2:0")
    pixels = np.asarray(sample)
    data, decoded, _ = _roundtrip(pixels, "RGB", quality=quality, rdo=False)
    assert abs(psnr(decoded, pixels) - psnr(reference, pixels)) < 0.1
    assert len(data) < 0.95 * size


@pytest.mark.parametrize("quality", [15, 40, 80])
def test_rate_distortion_choices_beat_plain_rounding_at_equal_rate(sample, quality) -> None:
    """The encoder's level choices give more PSNR than plain rounding at the same size (interpolated in
    log-size on a sweep of plain-rounding qualities around ``quality``)."""
    pixels = np.asarray(sample)
    rdo, rdo_decoded, _ = _roundtrip(pixels, "RGB", quality=quality, tables="mse")
    curve = []
    for q in range(max(1, quality - 20), min(100, quality + 20) + 1, 4):
        data, decoded, _ = _roundtrip(pixels, "RGB", quality=q, rdo=False, tables="mse")
        curve.append((np.log(len(data)), psnr(decoded, pixels)))
    rates, psnrs = np.array(curve).T
    assert rates.min() < np.log(len(rdo)) < rates.max()
    assert psnr(rdo_decoded, pixels) > np.interp(np.log(len(rdo)), rates, psnrs) + 0.05


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
    data, decoded, encoded = _roundtrip(
        np.ascontiguousarray(pixels), mode, quality=25, predictor=predictor, force_prediction=True
    )
    np.testing.assert_array_equal(decoded, encoded.reconstruction)
    parsed = container.read_container(io.BytesIO(data))
    assert parsed.header.predicted
    assert parsed.header.models == ("test-mean-edge",)
    # One predictor call per front (a batch), not per block.
    assert max(predictor.calls) > 1
    plain, _, _ = _roundtrip(np.ascontiguousarray(pixels), mode, quality=25)
    assert abs(psnr(decoded, pixels) - psnr(codec.decode(container.read_container(io.BytesIO(plain))), pixels)) < 1.0


def test_predicted_file_needs_its_predictor(small) -> None:
    encoded = codec.encode(np.asarray(small), "RGB", 50, predictor=MeanEdgePredictor(), force_prediction=True)
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


@pytest.mark.parametrize("subsampling", [0, 1, 2])
@pytest.mark.parametrize("strip", [2, 16, 256])
def test_strip_wise_colour_conversion_equals_the_whole_image_one(monkeypatch, subsampling, strip) -> None:
    """from_planes converts in strips to bound memory; a strip's chroma filter must see the rows beyond it."""
    from pillow_blockcnn.codec import planes

    rng = np.random.default_rng(subsampling)
    monkeypatch.setattr(planes, "STRIP_ROWS", strip)
    for h, w in ((1, 1), (255, 77), (257, 300), (600, 16)):
        header = container.Header(width=w, height=h, mode="RGB", quality=30, subsampling=subsampling)
        coded = [rng.integers(0, 256, s).astype(np.uint8) for s in planes.plane_shapes(header)]
        fy, fx = planes.SUBSAMPLING_FACTORS[subsampling]
        chroma = [colour.upsample(p[: -(-h // fy), : -(-w // fx)], (fy, fx))[:h, :w] for p in coded[1:]]
        whole = colour.ycbcr_to_rgb(np.stack([coded[0][:h, :w], *chroma]))
        np.testing.assert_array_equal(planes.from_planes(coded, header), whole, err_msg=f"{h}x{w}")
