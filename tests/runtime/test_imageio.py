"""imageio v2 and v3 read and write .bcnn once pillow_blockcnn is imported."""

from __future__ import annotations

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest

from tests.conftest import psnr


@pytest.fixture
def pixels(sample) -> np.ndarray:
    return np.asarray(sample)


def test_v3_path_round_trip_with_options(tmp_path, pixels) -> None:
    path = tmp_path / "a.bcnn"
    iio.imwrite(path, pixels, quality=20)
    small = path.stat().st_size
    iio.imwrite(path, pixels, quality=90)
    assert path.stat().st_size > 2 * small  # the quality keyword reaches the encoder
    out = iio.imread(path)
    assert out.shape == pixels.shape
    assert out.dtype == np.uint8
    assert psnr(out, pixels) > 33
    assert iio.immeta(path)["quality"] == 90


def test_v3_bytes_round_trip(pixels) -> None:
    data = iio.imwrite("<bytes>", pixels, extension=".bcnn", quality=50)
    assert data[:5] == b"\x89BCNN"
    np.testing.assert_array_equal(iio.imread(data), iio.imread(data, extension=".bcnn"))


def test_v2_round_trip_and_format_name(tmp_path, pixels) -> None:
    path = tmp_path / "b.bcnn"
    iio2.imwrite(path, pixels)
    a = iio2.imread(path)
    b = iio2.imread(path, format="BCNN")
    np.testing.assert_array_equal(a, b)
    assert psnr(a, pixels) > 30


def test_gray_and_rgba_arrays(tmp_path, pixels) -> None:
    gray = pixels[..., 0]
    rgba = np.dstack([pixels, np.full(pixels.shape[:2], 77, np.uint8)])
    for array in (gray, rgba):
        path = tmp_path / "c.bcnn"
        iio.imwrite(path, array)
        back = iio.imread(path)
        assert back.shape == array.shape
    np.testing.assert_array_equal(back[..., 3], 77)


def test_a_batch_of_frames_gets_a_clear_error(tmp_path, pixels) -> None:
    with pytest.raises(ValueError, match="single image"):
        iio.imwrite(tmp_path / "d.bcnn", np.stack([pixels, pixels]))
