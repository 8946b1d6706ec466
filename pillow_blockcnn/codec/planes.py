"""Planes and their geometry: padding to the block grid, colour conversion, chroma subsampling, and back.

A .bcnn plane is what one JPEG component would be inside a colour JPEG: Y at
full size, Cb and Cr subsampled, every side padded to whole 8x8 blocks
(``docs/FORMAT.md`` §3). The arithmetic is libjpeg's (:mod:`.colour`), so with no
prediction a .bcnn decode equals a Pillow JPEG decode pixel for pixel.
"""

from __future__ import annotations

import numpy as np

from ..format.container import Header
from ..format.limits import check_size
from . import colour
from .blocks import BLOCK

__all__ = ["CHANNELS", "SUBSAMPLING_FACTORS", "check_pixels", "from_planes", "plane_shapes", "to_planes"]

#: Header subsampling code -> chroma (vertical, horizontal) factors.
SUBSAMPLING_FACTORS: dict[int, tuple[int, int]] = {0: (1, 1), 1: (1, 2), 2: (2, 2)}
#: Stored mode -> channels of its pixel array.
CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def plane_shapes(header: Header) -> list[tuple[int, int]]:
    """``(height, width)`` of each coded plane as the decoder sees it, before cropping (multiples of 8)."""
    h, w = header.height, header.width
    luma = (_ceil_div(h, BLOCK) * BLOCK, _ceil_div(w, BLOCK) * BLOCK)
    if header.mode == "L":
        return [luma]
    fy, fx = SUBSAMPLING_FACTORS[header.subsampling]
    chroma = (_ceil_div(h, BLOCK * fy) * BLOCK, _ceil_div(w, BLOCK * fx) * BLOCK)
    return [luma, chroma, chroma]


def _pad_edge(array: np.ndarray, height: int, width: int) -> np.ndarray:
    pad = [(0, height - array.shape[0]), (0, width - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, mode="edge")


def check_pixels(pixels: np.ndarray, mode: str) -> None:
    """Refuse arrays the codec cannot code, saying what shape and type it needs."""
    if mode not in CHANNELS:
        msg = f"mode {mode!r} cannot be coded; use L, RGB or RGBA"
        raise ValueError(msg)
    expected = 2 if mode == "L" else 3
    if pixels.dtype != np.uint8 or pixels.ndim != expected or (mode != "L" and pixels.shape[2] != CHANNELS[mode]):
        shape = "(H, W)" if mode == "L" else f"(H, W, {CHANNELS[mode]})"
        msg = f"mode {mode} needs a uint8 array of shape {shape}"
        raise ValueError(msg)
    check_size(pixels.shape[1], pixels.shape[0])


#: Rows converted at a time by :func:`to_planes` and :func:`from_planes` (a multiple of every vertical
#: subsampling factor): the conversion's integer temporaries are 4 bytes per sample, several alive at once.
STRIP_ROWS = 256


def to_planes(pixels: np.ndarray, header: Header) -> list[np.ndarray]:
    """The padded planes the codec codes: gray, or Y and subsampled Cb, Cr (alpha is separate)."""
    shapes = plane_shapes(header)
    if header.mode == "L":
        return [_pad_edge(pixels, *shapes[0])]
    fy, fx = SUBSAMPLING_FACTORS[header.subsampling]
    ch, cw = shapes[1]
    rgb = _pad_edge(pixels[..., :3], ch * fy, cw * fx)
    ycc = np.empty((3, *rgb.shape[:2]), dtype=np.uint8)
    for y0 in range(0, rgb.shape[0], STRIP_ROWS):  # per pixel, so strips give the whole image's result
        ycc[:, y0 : y0 + STRIP_ROWS] = colour.rgb_to_ycbcr(rgb[y0 : y0 + STRIP_ROWS])
    luma = ycc[0][: shapes[0][0], : shapes[0][1]]
    return [luma] + [colour.downsample(ycc[i], (fy, fx)) for i in (1, 2)]


def from_planes(planes: list[np.ndarray], header: Header) -> np.ndarray:
    """Inverse of :func:`to_planes`: crop, upsample chroma, convert to RGB (without alpha).

    The conversion runs in strips of ``STRIP_ROWS`` rows: its integer temporaries are 4 bytes per sample
    and several are alive at once, which for a whole 12-megapixel image was over 500 MB. A strip's chroma
    is upsampled from its own rows plus one row either side (all that libjpeg's triangle filter reads), so
    the result equals the whole-image conversion bit for bit."""
    h, w = header.height, header.width
    if header.mode == "L":
        return planes[0][:h, :w]
    fy, fx = SUBSAMPLING_FACTORS[header.subsampling]
    chroma_h, chroma_w = _ceil_div(h, fy), _ceil_div(w, fx)
    out = np.empty((h, w, 3), dtype=np.uint8)
    for y0 in range(0, h, STRIP_ROWS):
        y1 = min(h, y0 + STRIP_ROWS)
        first, last = y0 // fy, _ceil_div(y1, fy)  # the chroma rows of this strip
        top, bottom = max(0, first - 1), min(chroma_h, last + 1)  # and the rows the filter reads
        skip = (first - top) * fy
        chroma = [
            colour.upsample(p[top:bottom, :chroma_w], (fy, fx))[skip : skip + y1 - y0, :w] for p in planes[1:]
        ]
        out[y0:y1] = colour.ycbcr_to_rgb(np.stack([planes[0][y0:y1, :w], *chroma]))
    return out
