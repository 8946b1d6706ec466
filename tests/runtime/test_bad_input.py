"""Hostile and damaged input: clean Pillow-style errors, never anything else."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, UnidentifiedImageError

from pillow_blockcnn.format import container
from tests.conftest import save_bytes

# What Image.open + load() may raise on a damaged .bcnn file, and nothing else.
CLEAN = (OSError, SyntaxError, Image.DecompressionBombError)


@pytest.fixture(scope="module")
def valid(small) -> bytes:
    rgba = small.convert("RGBA")
    return save_bytes(rgba, quality=50, exif=b"Exif\x00\x00MM\x00*", icc_profile=b"icc" * 20, xmp=b"<xmp/>")


@pytest.fixture(scope="module")
def valid_pixels(valid) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(valid)))


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)


def _header_file(width: int, height: int) -> bytes:
    """A version 2 gray file claiming ``width`` x ``height`` with an empty Huffman-coded plane."""
    head = struct.pack(">BIIBBBBBBBB", 2, width, height, 1, 0, 50, 2, 0, 0, 0, 0)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I4s", len(payload), kind) + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return container.SIGNATURE + chunk(b"HEAD", head) + chunk(b"PLAN", b"\x00\x00\x00\x00\x01\x00\x00\x00") + chunk(b"END ", b"")


@pytest.mark.parametrize("data", [b"", b"hello world" * 10, b"\x89PNG\r\n\x1a\n" + bytes(100), b"\x89BCN"])
def test_not_bcnn_is_unidentified(data) -> None:
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(data))


def test_corrupt_header_says_what_is_wrong(valid) -> None:
    data = bytearray(valid)
    data[20] ^= 0x40  # inside the HEAD payload: its CRC fails
    with pytest.raises(OSError, match="HEAD chunk fails its CRC-32 check"):
        Image.open(io.BytesIO(bytes(data)))


@pytest.mark.parametrize(("width", "height"), [(2**31 - 1, 2**31 - 1), (2**32 - 1, 2**32 - 1), (100_000, 100_000)])
def test_absurd_dimensions_raise_decompression_bomb_error(width, height) -> None:
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(_header_file(width, height)))


def test_large_claim_in_a_tiny_file_is_refused_before_allocating(monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # the user turned Pillow's guard off
    with pytest.raises(OSError, match="exceeds the .bcnn limit"):
        Image.open(io.BytesIO(_header_file(70_000, 70_000)))
    im = Image.open(io.BytesIO(_header_file(65_000, 65_000)))  # 4.2 gigapixels claimed by 60 bytes
    with pytest.raises(OSError, match="cannot hold"):
        im.load()


def test_truncation_at_every_length_is_a_clean_error(valid) -> None:
    for n in range(len(valid)):
        try:
            _decode(valid[:n])
        except CLEAN as exc:
            assert str(exc)  # every error says something
        else:
            pytest.fail(f"a file truncated to {n} of {len(valid)} bytes decoded without error")


def test_trailing_garbage_after_end_is_ignored(valid, valid_pixels) -> None:
    np.testing.assert_array_equal(_decode(valid + b"garbage"), valid_pixels)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_corruption_never_escapes_or_silently_changes_pixels(valid, valid_pixels, data) -> None:
    blob = bytearray(valid)
    action = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate"]))
    pos = data.draw(st.integers(0, len(blob) - 1))
    if action == "flip":
        blob[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif action == "set":
        blob[pos] = data.draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
    elif action == "insert":
        blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    elif action == "delete":
        del blob[pos : pos + data.draw(st.integers(1, 64))]
    else:
        end = min(len(blob), pos + data.draw(st.integers(1, 64)))
        blob[pos:pos] = blob[pos:end]
    try:
        pixels = _decode(bytes(blob))
    except CLEAN:
        return
    # Whatever decodes must be the original image: checksums leave no room for silent change.
    np.testing.assert_array_equal(pixels, valid_pixels)


def test_a_forged_chunk_length_allocates_nothing_large(valid, tmp_path) -> None:
    import tracemalloc

    forged = bytearray(valid)
    forged[8:12] = (2**31 - 1).to_bytes(4, "big")  # the HEAD chunk claims 2 GB
    path = tmp_path / "forged.bcnn"
    path.write_bytes(bytes(forged))
    tracemalloc.start()
    try:
        with pytest.raises(OSError, match="truncated"):
            Image.open(path)  # a real file: its read(n) would allocate n bytes up front
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20
