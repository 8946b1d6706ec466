"""export.studies.chroma_downsampling: the back-projected chroma is what the study says it is."""

from __future__ import annotations

import numpy as np

from export.studies.chroma_downsampling import back_projected
from pillow_blockcnn.codec import colour


def test_back_projection_brings_the_upsampled_plane_closer_to_the_full_chroma(sample) -> None:
    # chroma with detail at every scale: the sample's colours, shuffled in 2x2 cells
    rgb = np.asarray(sample.convert("RGB"))[:96, :128]
    cb = colour.rgb_to_ycbcr(rgb)[1].copy()
    cells = np.random.default_rng(5).permutation(cb.reshape(48, 2, 64, 2).transpose(0, 2, 1, 3).reshape(-1, 4))
    cb = np.ascontiguousarray(cells.reshape(48, 64, 2, 2).transpose(0, 2, 1, 3).reshape(96, 128))

    def error(plane: np.ndarray) -> float:
        return float(np.mean((colour.upsample(plane, (2, 2)).astype(float) - cb) ** 2))

    box = colour.downsample(cb, (2, 2))
    sharp = back_projected(3)(cb, (2, 2))
    assert sharp.shape == box.shape
    assert sharp.dtype == np.uint8
    assert error(sharp) < 0.9 * error(box)
    assert np.array_equal(back_projected(0)(cb, (2, 2)), np.clip(np.rint(
        (cb[0::2, 0::2].astype(float) + cb[0::2, 1::2] + cb[1::2, 0::2] + cb[1::2, 1::2]) / 4), 0, 255))
    assert np.array_equal(back_projected(3)(cb, (1, 2)), colour.downsample(cb, (1, 2)))  # other factors: the box
