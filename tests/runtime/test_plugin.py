"""Pillow behaviour: open, load, save options, modes, metadata, file kinds."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

import pillow_blockcnn
from pillow_blockcnn import runtime
from tests.conftest import psnr, save_bytes


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_registration() -> None:
    assert Image.registered_extensions()[".bcnn"] == "BCNN"
    assert Image.MIME["BCNN"] == "image/x-bcnn"
    assert "BCNN" in Image.SAVE
    assert "BCNN" in Image.SAVE_ALL
    pillow_blockcnn.register_bcnn_opener()  # idempotent
    assert Image.ID.count("BCNN") == 1


def test_unknown_option_is_an_error_not_a_silent_no_op() -> None:
    with pytest.raises(TypeError, match="unknown pillow_blockcnn option"):
        pillow_blockcnn.register_bcnn_opener(deblok=False)


def test_save_and_open_by_path(tmp_path, sample) -> None:
    path = tmp_path / "parrots.bcnn"
    sample.save(path, quality=40)
    with Image.open(path) as im:
        assert (im.format, im.mode, im.size) == ("BCNN", "RGB", sample.size)
        assert im.get_format_mimetype() == "image/x-bcnn"
        assert im.info["quality"] == 40
        assert (im.n_frames, im.is_animated, im.tell()) == (1, False, 0)
        assert psnr(np.asarray(im), np.asarray(sample)) > 30
    with open(path, "rb") as fp, Image.open(fp, formats=["BCNN"]) as im:
        im.load()
        assert not fp.closed  # a caller's file object is the caller's to close


def test_open_reads_the_header_only(sample) -> None:
    data = bytearray(save_bytes(sample, quality=30))
    data[-40] ^= 0xFF  # damage pixel data (a CRC will fail)
    im = _open(bytes(data))
    assert im.size == sample.size  # open succeeded: no pixel data read
    with pytest.raises(OSError, match="CRC"):
        im.load()


def test_quality_changes_size_and_is_validated(sample) -> None:
    sizes = [len(save_bytes(sample, quality=q)) for q in (10, 50, 95)]
    assert sizes == sorted(sizes)
    assert sizes[0] * 3 < sizes[2]
    assert _open(save_bytes(sample)).info["quality"] == 75  # default, as Pillow's JPEG
    for bad in (101, -1, 50.5, "high", True):
        with pytest.raises(ValueError, match="Invalid quality"):
            save_bytes(sample, quality=bad)


def test_subsampling_option(sample) -> None:
    # Without deblocking, so that the comparison is of the coded chroma alone: the packaged deblocker was
    # trained on 4:2:0 JPEGs and restores subsampled chroma, which can lift a 4:2:0 file above a 4:4:4 one.
    full = save_bytes(sample, quality=60, subsampling="4:4:4", deblock=False)
    half = save_bytes(sample, quality=60, deblock=False)
    a, b = _open(full), _open(half)
    assert len(full) > len(half)
    assert psnr(np.asarray(a), np.asarray(sample)) > psnr(np.asarray(b), np.asarray(sample))
    with pytest.raises(ValueError, match="Invalid subsampling"):
        save_bytes(sample, subsampling="4:1:1")


def test_predict_and_deblock_without_models_are_refused_clearly(sample, monkeypatch) -> None:
    # An installation without a model for an option must say so, never silently write something else.
    monkeypatch.setattr(runtime, "default_model", lambda task, tables="jpeg", restores="bcnn": None)
    for option in ("predict", "deblock"):
        with pytest.raises(ValueError, match=f"{option}=True needs"):
            save_bytes(sample, **{option: True})
        im = _open(save_bytes(sample, **{option: False}))
        assert im.info["predicted"] is False
        assert im.info["deblock"] is False
    with pytest.raises(ValueError, match="True, False or None"):
        save_bytes(sample, predict="yes")


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_native_modes(sample, mode) -> None:
    src = sample.convert(mode)
    if mode == "RGBA":
        src.putalpha(Image.linear_gradient("L").resize(src.size))
    im = _open(save_bytes(src, quality=90))
    assert im.mode == mode
    assert psnr(np.asarray(im.convert("RGB")), np.asarray(src.convert("RGB"))) > 30
    if mode == "RGBA":
        assert np.array_equal(np.asarray(im)[..., 3], np.asarray(src)[..., 3])


@pytest.mark.parametrize(
    ("mode", "stored"),
    [("1", "L"), ("P", "RGB"), ("LA", "RGBA"), ("PA", "RGBA"), ("RGBX", "RGB"), ("YCbCr", "RGB"), ("RGBa", "RGBA")],
)
def test_converted_modes(small, mode, stored) -> None:
    src = small.convert(mode) if mode != "PA" else small.convert("P").convert("PA")
    assert _open(save_bytes(src)).mode == stored


def test_palette_transparency_becomes_alpha(small) -> None:
    src = small.convert("P")
    src.info["transparency"] = src.getpixel((0, 0))
    im = _open(save_bytes(src))
    assert im.mode == "RGBA"
    assert np.array_equal(np.asarray(im)[..., 3], np.asarray(src.convert("RGBA"))[..., 3])


@pytest.mark.parametrize("mode", ["CMYK", "I", "I;16", "F", "HSV", "LAB"])
def test_unstorable_modes_are_refused_naming_the_mode(small, mode) -> None:
    src = small.convert(mode) if mode not in ("I;16",) else small.convert("L").convert("I;16")
    with pytest.raises(OSError, match=f"cannot write mode {mode} as BCNN"):
        save_bytes(src)


@pytest.mark.parametrize("size", [(1, 1), (1, 17), (17, 1), (8, 8), (9, 9), (16, 15), (129, 67)])
def test_any_size(sample, size) -> None:
    src = sample.resize(size)
    im = _open(save_bytes(src, quality=95))
    assert im.size == size
    im.load()


def test_failed_save_leaves_no_file(tmp_path, small) -> None:
    path = tmp_path / "bad.bcnn"
    with pytest.raises(ValueError):
        small.save(path, quality=101)
    assert not path.exists()


def test_multi_frame_save_is_refused_single_frame_save_all_works(small) -> None:
    out = io.BytesIO()
    small.save(out, "BCNN", save_all=True)
    assert _open(out.getvalue()).size == small.size
    with pytest.raises(ValueError, match="single image; got 2 frames"):
        small.save(io.BytesIO(), "BCNN", save_all=True, append_images=[small])


def test_seek_past_first_frame() -> None:
    im = _open(save_bytes(Image.new("L", (8, 8))))
    im.seek(0)
    with pytest.raises(EOFError):
        im.seek(1)


def test_verify_checks_checksums_without_decoding(sample) -> None:
    data = save_bytes(sample, quality=30)
    _open(data).verify()
    damaged = bytearray(data)
    damaged[-40] ^= 0xFF
    with pytest.raises(OSError, match="CRC"):
        _open(bytes(damaged)).verify()


def test_thumbnail(sample) -> None:
    im = _open(save_bytes(sample))
    im.thumbnail((64, 64))
    assert max(im.size) == 64


def test_parser_feeding(sample) -> None:
    data = save_bytes(sample, quality=30)
    parser = ImageFile.Parser()
    for i in range(0, len(data), 999):
        parser.feed(data[i : i + 999])
    im = parser.close()
    assert im.format == "BCNN"
    np.testing.assert_array_equal(np.asarray(im), np.asarray(_open(data)))


def test_icc_exif_xmp_round_trip_byte_exact(sample) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    exif[0x010F] = "pillow-blockcnn"
    exif_bytes = exif.tobytes()
    icc = bytes(range(256)) * 10
    xmp = '<x:xmpmeta xmlns:x="adobe:ns:meta/">ü</x:xmpmeta>'
    im = _open(save_bytes(sample, exif=exif, icc_profile=icc, xmp=xmp))
    assert im.info["exif"] == exif_bytes
    assert im.info["icc_profile"] == icc
    assert im.info["xmp"] == xmp.encode("utf-8")
    assert im.getexif()[0x010F] == "pillow-blockcnn"
    # Pixels are stored unrotated; exif_transpose applies the orientation once.
    rotated = ImageOps.exif_transpose(im)
    assert rotated.size == (sample.height, sample.width)
    # Exif given as raw bytes (with or without Pillow's "Exif\0\0" prefix) is kept as given.
    for raw in (exif_bytes, exif_bytes[6:]):
        again = _open(save_bytes(sample, exif=raw))
        assert again.info["exif"] == raw
        assert again.getexif()[0x0112] == 6


def test_metadata_policy(sample) -> None:
    src = sample.copy()
    src.info["icc_profile"] = b"icc-from-source"
    src.info["exif"] = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"
    im = _open(save_bytes(src))
    assert im.info["icc_profile"] == b"icc-from-source"  # colour meaning is carried over by default
    assert "exif" not in im.info  # EXIF (GPS, serials) only when passed, as Pillow's own writers do
    assert "icc_profile" not in _open(save_bytes(src, icc_profile=None)).info
    with pytest.raises(TypeError, match="exif must be bytes"):
        save_bytes(sample, exif=12)


def test_reopened_metadata_survives_a_resave(sample) -> None:
    first = _open(save_bytes(sample, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00", xmp=b"<xmp/>"))
    second = _open(save_bytes(first, exif=first.info["exif"], xmp=first.info["xmp"]))
    assert second.info["exif"] == first.info["exif"]
    assert second.info["xmp"] == b"<xmp/>"


def test_no_resource_warning_and_fp_closed_after_load(tmp_path, small) -> None:
    path = tmp_path / "x.bcnn"
    small.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        im = Image.open(path)
        im.load()
        im.close()


def test_tables_option_and_default(sample) -> None:
    jpeg_tables = _open(save_bytes(sample, quality=30, tables="jpeg"))
    default_tables = _open(save_bytes(sample, quality=30))
    mse_tables = _open(save_bytes(sample, quality=30, tables="mse"))
    assert [im.info["tables"] for im in (jpeg_tables, default_tables, mse_tables)] == ["jpeg", "balanced", "mse"]
    assert not np.array_equal(np.asarray(jpeg_tables), np.asarray(default_tables))
    assert not np.array_equal(np.asarray(mse_tables), np.asarray(default_tables))
    assert psnr(np.asarray(default_tables), np.asarray(sample)) > 30
    with pytest.raises(ValueError, match="Invalid tables"):
        save_bytes(sample, tables="psychovisual")
