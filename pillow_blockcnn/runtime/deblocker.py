"""JPEG artifact removal on numpy images with a packaged deblocking model.

The model (``export.networks.deblocker.BlockUNet``) takes ``[N, 4, H, W]``: full-range
JFIF Y, Cb, Cr scaled to 0..1 and a constant quality plane (quality / 100),
with H and W multiples of 8 and the JPEG block grid at (0, 0); it returns the
restored Y, Cb, Cr. Large images go through in overlapping tiles whose
positions depend only on the image size, so memory stays bounded and the
result does not depend on anything but the pixels, the quality and the model.
"""

from __future__ import annotations

import numpy as np

from ..format.limits import check_quality
from .jfif import gray_to_ycbcr_float, rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float
from .registry import require_task
from .sessions import run_options
from .sessions import session as model_session

__all__ = ["HALO", "ONE_PASS", "TILE", "deblock_array"]

#: A side up to ONE_PASS pixels runs in one pass; a longer one in n = ceil(side / TILE) equal runs. The
#: network's activations scale with the area of a tile with its halo, so the tile size bounds a large decode's
#: memory: deblocking a 12-megapixel image peaked at about 480 MB of process memory with 640-pixel tiles and a
#: 64-pixel halo, 540-620 MB with 768 and 640 MB with 1024 (2026-12-02, onnxruntime's CPU arena off, as it then
#: was). Images up to 1024 a side (Kodak's 768 x 512) keep their single pass.
ONE_PASS = 1024
TILE = 640
#: Context each tile borrows from its neighbours (a multiple of 8, so tiles keep the block grid). Its extra
#: work is about 2 HALO / TILE per axis: a 12-megapixel restoration takes 0.89x the time with 16 as with 32
#: (``python -m export.studies.deblock_tiling``, its ``halo-32`` mode, results/studies/deblock_tiling.json).
#: With 192-pixel tiles (3.3x the borders per pixel of 640), tiles of one shape and ``dblk-9``, 16 moved PSNR
#: against the original by +0.0002 dB on average at q30 and -0.0006 dB at q10 (worst image -0.0015 dB) against
#: one pass, the largest pixel difference 5 and 7 levels; 32 by +0.00002 and -0.00006 dB, 3 and 4 levels
#: (``python -m export.studies.deblock_halo``, results/studies/deblock_halo_equal_tiles*.json, 8 training
#: images). At the shipped 640 a third as many pixels lie near a border.
HALO = 16
_MULTIPLE = 8


def _to_ycc(pixels: np.ndarray) -> np.ndarray:
    return gray_to_ycbcr_float(pixels) if pixels.ndim == 2 else rgb_to_ycbcr_float(pixels)


def _from_ycc(ycc: np.ndarray, gray: bool) -> np.ndarray:
    return to_uint8(ycc[..., 0] if gray else ycbcr_to_rgb_float(ycc))


def _run(session: object, pixels: np.ndarray, quality: int, release: bool) -> np.ndarray:
    """Restore uint8 ``pixels`` (gray or RGB) whose sides are multiples of 8; returns float32 YCbCr 0..255.

    ``release``: give the arena's free memory back when the run ends (the last tile of an image). Tiles of
    one image all have the same shape, so between them the arena reuses its chunks exactly; shrinking after
    every tile instead made the allocator page in and zero each tile's activations afresh.
    """
    ycc = _to_ycc(pixels)
    x = np.empty((1, 4, ycc.shape[0], ycc.shape[1]), dtype=np.float32)
    x[0, :3] = ycc.transpose(2, 0, 1) / 255.0
    x[0, 3] = quality / 100.0
    name = session.get_inputs()[0].name  # type: ignore[attr-defined]
    options = run_options(session) if release else None
    (y,) = session.run(None, {name: x}, options)  # type: ignore[attr-defined, arg-type]
    return y[0].transpose(1, 2, 0) * 255.0


def _spans(length: int) -> list[tuple[int, int, int, int]]:
    """Along one axis: each tile's kept part ``(start, end)`` and the window ``(start, end)`` it is computed
    from (docs/FORMAT.md §7).

    A long axis is cut into n = ceil(length / TILE) kept parts of equal length s (a multiple of 8; the last
    is shorter) rather than TILE-pixel parts and a remainder, and every window is s + 2 HALO long, moved
    inside the image at its borders: every tile then has one shape (the arena reuses it) and the border tiles
    get their context from inside the image instead of running narrower.
    """
    if length <= ONE_PASS:
        return [(0, length, 0, length)]
    n = -(-length // TILE)
    size = -(-length // (n * _MULTIPLE)) * _MULTIPLE
    window = min(length, size + 2 * HALO)
    spans = []
    for start in range(0, length, size):
        end = min(start + size, length)
        w0 = min(max(0, start - HALO), length - window)
        spans.append((start, end, w0, w0 + window))
    return spans


def deblock_array(pixels: np.ndarray, quality: int, model_id: str) -> np.ndarray:
    """Restore ``pixels`` (uint8 ``[H, W]`` gray, ``[H, W, 3]`` RGB, or either with alpha last) decoded
    from quality ``quality``; alpha is returned unchanged.

    Colour conversion happens per tile, so memory beyond the uint8 image in and
    out is bounded by the tile size, whatever the image size.
    """
    check_quality(quality)
    require_task(model_id, "deblock")
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        colour = pixels[..., :-1] if pixels.shape[2] == 4 else pixels[..., 0]
        restored = deblock_array(np.ascontiguousarray(colour), quality, model_id)
        return np.dstack([restored, pixels[..., -1]])
    gray = pixels.ndim == 2
    h, w = pixels.shape[:2]
    ph, pw = -(-h // _MULTIPLE) * _MULTIPLE, -(-w // _MULTIPLE) * _MULTIPLE
    pad = [(0, ph - h), (0, pw - w)] + ([] if gray else [(0, 0)])
    padded = pixels if (ph, pw) == (h, w) else np.pad(pixels, pad, mode="edge")  # no copy when not needed
    session = model_session(model_id)
    out = np.empty_like(padded)
    rows, cols = _spans(ph), _spans(pw)
    for i, (y0, y1, ty0, ty1) in enumerate(rows):
        for j, (x0, x1, tx0, tx1) in enumerate(cols):
            last = i == len(rows) - 1 and j == len(cols) - 1
            restored = _run(session, padded[ty0:ty1, tx0:tx1], quality, release=last)
            out[y0:y1, x0:x1] = _from_ycc(restored[y0 - ty0 : y1 - ty0, x0 - tx0 : x1 - tx0], gray)
    return out[:h, :w]
