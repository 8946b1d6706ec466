"""``deblock()``: JPEG artifact removal for Pillow images, on top of the runtime's tiled deblocker
(:func:`pillow_blockcnn.runtime.deblock_array`)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import runtime
from .codec.jpeg import quant_table
from .format.limits import check_quality

__all__ = ["JPEG_KINDS", "deblock", "estimate_quality"]


def estimate_quality(luma_table: list[int] | np.ndarray) -> int:
    """The IJG quality whose luminance table (JPEG's Annex K, scaled) is nearest to ``luma_table`` (natural
    order)."""
    table = np.asarray(luma_table, dtype=np.int64).ravel()
    if table.size != 64:
        msg = f"a quantisation table has 64 entries, got {table.size}"
        raise ValueError(msg)
    errors = [np.abs(np.asarray(quant_table(q, chroma=False, tables="jpeg")) - table).sum() for q in range(1, 101)]
    return int(np.argmin(errors)) + 1


def _quality_of(image: Image.Image) -> int:
    tables = getattr(image, "quantization", None)
    if tables:
        return estimate_quality(list(tables[min(tables)]))
    if isinstance(image.info.get("quality"), int):
        return image.info["quality"]
    msg = "the JPEG quality of this image is unknown (it carries no quantisation tables): pass quality=1..100"
    raise ValueError(msg)


JPEG_KINDS: dict[str, int | None] = {"colour 4:2:0": 2, "colour 4:4:4": 0, "gray": None}
"""The kinds of JPEG a model's ``max_quality_by_mode`` (manifest) is measured for, each with the ``subsampling``
Pillow saves it with (None: a grayscale JPEG); ``export.evaluation.quality_range`` measures exactly these."""


def _jpeg_kind(image: Image.Image) -> str | None:
    """Which of ``JPEG_KINDS`` the image is, or None when it cannot tell: gray, or colour with the chroma
    subsampling read from a JPEG file's frame header."""
    if image.mode in ("L", "LA"):
        return "gray"
    from PIL import JpegImagePlugin

    if isinstance(image, JpegImagePlugin.JpegImageFile):
        sampling = JpegImagePlugin.get_sampling(image)
        return next((k for k, v in JPEG_KINDS.items() if v is not None and v == sampling), None)
    return None


def deblock(image: Image.Image, quality: int | None = None, *, model: str | None = None) -> Image.Image:
    """Remove JPEG blocking and ringing; returns a new image of the same mode and size.

    ``quality`` is the JPEG quality the image was saved with; when omitted it
    is estimated from the image's quantisation tables (``image.quantization``,
    present on images opened from JPEG files). Modes L and RGB are restored;
    RGBA and LA keep their alpha unchanged. ``model`` picks a packaged
    deblocking model by id (default: the newest).

    A model trained mostly on low qualities removes detail rather than
    artifacts from a nearly perfect JPEG, so an image whose quality is above
    the model's limit is returned unchanged, as a copy. The limit was measured
    on held-out images by ``export.evaluation.quality_range`` for 4:2:0, 4:4:4 and
    gray JPEGs (``runtime.model_info(id).max_quality_for(kind)``); a JPEG
    file's own kind is read from its header, and an image whose kind is
    unknown gets the strictest limit (``max_quality``). The packaged models
    learned from 4:2:0 JPEGs (Pillow's and most cameras' default) and from
    grayscale ones; below their limit they improve 4:4:4 JPEGs too, by less.
    """
    if image.mode not in ("L", "RGB", "LA", "RGBA"):
        msg = f"deblock() restores L, RGB, LA and RGBA images, not mode {image.mode}: convert it first"
        raise ValueError(msg)
    if quality is None:
        quality = _quality_of(image)
    quality = check_quality(quality)
    if model is None:
        info = runtime.default_model("deblock", "jpeg", restores="jpeg")
        if info is None:
            msg = "this installation of pillow-blockcnn ships no deblocking model"
            raise runtime.ModelError(msg)
    else:
        info = runtime.require_task(model, "deblock")
    if quality > info.max_quality_for(_jpeg_kind(image)):
        return image.copy()
    restored = runtime.deblock_array(np.asarray(image), int(quality), info.id)
    result = Image.fromarray(restored, image.mode)
    result.info = dict(image.info)
    return result
