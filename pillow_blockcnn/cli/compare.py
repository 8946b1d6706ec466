"""``blockcnn compare``: the original, the JPEG of the nearest size and the .bcnn, side by side."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pillow_blockcnn.format import read_header
from pillow_blockcnn.metrics import psnr

__all__ = ["Comparison", "closest_jpeg", "compare", "comparison_size", "default_crop"]


#: Layout of the comparison image: panels side by side, GAP pixels around and
#: between them, a LABEL band of two text lines above each panel.
GAP = 8
LABEL = 32


def _jpeg_bytes(image: Image.Image, quality: int, subsampling: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, subsampling=subsampling, optimize=True)
    return out.getvalue()


def closest_jpeg(image: Image.Image, target_bytes: int, subsampling: int = 2) -> tuple[int, bytes]:
    """The Pillow JPEG quality (optimize=True) whose file size is closest to ``target_bytes``, and its bytes.

    Sizes grow with quality almost everywhere, so a bisection finds the
    crossing in about seven encodes; the neighbours of the crossing are then
    compared directly because the growth is not strictly monotonic.
    """
    cache: dict[int, bytes] = {}

    def size(q: int) -> int:
        if q not in cache:
            cache[q] = _jpeg_bytes(image, q, subsampling)
        return len(cache[q])

    low, high = 1, 100
    while low < high:
        mid = (low + high) // 2
        if size(mid) < target_bytes:
            low = mid + 1
        else:
            high = mid
    candidates = [q for q in (low - 2, low - 1, low, low + 1) if 1 <= q <= 100]
    best = min(candidates, key=lambda q: (abs(size(q) - target_bytes), -q))
    return best, cache[best]


@dataclass(frozen=True)
class Comparison:
    """The side-by-side image and the numbers behind its labels."""

    image: Image.Image
    jpeg_quality: int
    jpeg_bytes: int
    jpeg_psnr: float
    bcnn_quality: int
    bcnn_bytes: int
    bcnn_psnr: float


def default_crop(size: tuple[int, int], side: int = 128) -> tuple[int, int, int, int]:
    """A centred ``side`` x ``side`` box (smaller for small images), as (x, y, width, height)."""
    w, h = min(side, size[0]), min(side, size[1])
    return (size[0] - w) // 2, (size[1] - h) // 2, w, h


def _panel(image: Image.Image, crop: tuple[int, int, int, int], scale: int, lines: Sequence[str]) -> Image.Image:
    x, y, w, h = crop
    zoomed = image.crop((x, y, x + w, y + h)).resize((w * scale, h * scale), Image.Resampling.NEAREST)
    panel = Image.new("RGB", (zoomed.width, LABEL + zoomed.height), "white")
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default()
    for i, line in enumerate(lines):
        draw.text((2, 2 + 14 * i), line, fill="black", font=font)
    panel.paste(zoomed, (0, LABEL))
    return panel


def compare(
    original: Image.Image,
    bcnn_data: bytes,
    crop: tuple[int, int, int, int] | None = None,
    scale: int = 2,
) -> Comparison:
    """Original, JPEG and .bcnn crops side by side, the JPEG at the quality whose file size matches the .bcnn's.

    Equal file size, not equal quality setting, is the comparison that matters
    to a user choosing a format: what does the same number of bytes buy.
    PSNR in the labels is over the whole image, not just the crop.
    """
    original = original.convert("RGB")
    header, _ = read_header(io.BytesIO(bcnn_data))
    if (header.width, header.height) != original.size:
        msg = (
            f"the .bcnn image is {header.width}x{header.height} but the original is "
            f"{original.width}x{original.height}: compare a .bcnn with the image it was encoded from"
        )
        raise ValueError(
            msg
        )
    crop = crop or default_crop(original.size)
    x, y, w, h = crop
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > original.width or y + h > original.height:
        msg = f"crop {x},{y},{w},{h} is not inside the {original.width}x{original.height} image"
        raise ValueError(msg)
    reference = np.asarray(original)
    with Image.open(io.BytesIO(bcnn_data)) as im:
        bcnn_image = im.convert("RGB")
    jpeg_quality, jpeg_data = closest_jpeg(original, len(bcnn_data), header.subsampling)
    with Image.open(io.BytesIO(jpeg_data)) as im:
        jpeg_image = im.convert("RGB")
    jpeg_psnr = psnr(np.asarray(jpeg_image), reference)
    bcnn_psnr = psnr(np.asarray(bcnn_image), reference)
    panels = [
        _panel(original, crop, scale, ["original", f"crop {w}x{h} at {x},{y}, x{scale}"]),
        _panel(jpeg_image, crop, scale, [f"JPEG q{jpeg_quality}", f"{len(jpeg_data):,} bytes, {jpeg_psnr:.2f} dB"]),
        _panel(bcnn_image, crop, scale, [f".bcnn q{header.quality}", f"{len(bcnn_data):,} bytes, {bcnn_psnr:.2f} dB"]),
    ]
    canvas = Image.new("RGB", comparison_size(crop, scale, len(panels)), "white")
    for i, panel in enumerate(panels):
        canvas.paste(panel, (GAP + i * (panel.width + GAP), GAP))
    return Comparison(canvas, jpeg_quality, len(jpeg_data), jpeg_psnr, header.quality, len(bcnn_data), bcnn_psnr)


def comparison_size(crop: tuple[int, int, int, int], scale: int, panels: int = 3) -> tuple[int, int]:
    """Width and height of the comparison image for a crop, zoom and number of panels."""
    _, _, w, h = crop
    return panels * w * scale + (panels + 1) * GAP, LABEL + h * scale + 2 * GAP
