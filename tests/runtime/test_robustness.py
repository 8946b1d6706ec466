"""Truncated files, determinism and concurrency: a decoder safe to point at uploads."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image, ImageFile

from tests.conftest import save_bytes


@pytest.fixture
def load_truncated(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)


@pytest.mark.parametrize("coding", ["arithmetic", "huffman"])
def test_truncated_gray_file_decodes_what_is_there(load_truncated, sample, coding) -> None:
    src = sample.convert("L").crop((0, 0, 256, 128))
    data = save_bytes(src, quality=60, predict=False, deblock=False, coding=coding)
    full = _decode(data)
    cut = _decode(data[: len(data) // 2])
    assert cut.shape == full.shape
    np.testing.assert_array_equal(cut[:8], full[:8])  # the first block row arrived whole
    if coding == "huffman":
        assert (cut[-8:] == cut[-1, -1]).all()  # libjpeg fills the rest, not garbage


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_every_truncation_after_the_header_decodes_with_the_flag(load_truncated, small, mode) -> None:
    src = small.convert(mode)
    data = save_bytes(src, quality=50, deblock=False)
    header_end = 8 + 12 + int.from_bytes(data[8:12], "big")
    for n in range(header_end, len(data), 7):
        pixels = _decode(data[:n])
        assert pixels.shape == np.asarray(src).shape


def test_truncation_without_the_flag_is_an_oserror(small) -> None:
    data = save_bytes(small, quality=50)
    with pytest.raises(OSError, match="truncated"):
        _decode(data[:-30])


def test_truncated_alpha_is_opaque_where_missing(load_truncated, small) -> None:
    src = small.convert("RGBA")
    src.putalpha(Image.linear_gradient("L").resize(src.size))
    data = save_bytes(src, quality=50, deblock=False)
    end = data.index(b"END ") - 4
    pixels = _decode(data[: end - 40])  # inside the ALPH chunk
    assert pixels[-1, -1, 3] == 255


def test_encoding_is_deterministic(sample) -> None:
    assert save_bytes(sample, quality=33) == save_bytes(sample, quality=33)


def test_eight_threads_encode_and_decode_like_serial_runs(sample) -> None:
    crops = [sample.crop((i * 16, i * 8, i * 16 + 160, i * 8 + 96)) for i in range(8)]
    expected = [(data := save_bytes(c, quality=20 + 5 * i), _decode(data)) for i, c in enumerate(crops)]
    results: dict[int, tuple[bytes, np.ndarray]] = {}
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        for _ in range(3):
            data = save_bytes(crops[i], quality=20 + 5 * i)
            results[i] = (data, _decode(data))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (data, pixels) in enumerate(expected):
        assert results[i][0] == data
        np.testing.assert_array_equal(results[i][1], pixels)


