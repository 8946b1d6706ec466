"""What one job does to the bytes: encode to .bcnn, decode from it, deblock a JPEG.

Each is a small picklable options object, so it travels to worker processes
and Ray actors; each uses only the public API (``Image.open``/``save``,
:func:`pillow_blockcnn.open_bcnn`, :func:`pillow_blockcnn.deblock`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

import pillow_blockcnn
from pillow_blockcnn.format import SIGNATURE
from pillow_blockcnn.format.limits import (
    DEFAULT_CODING,
    DEFAULT_QUALITY,
    DEFAULT_SUBSAMPLING,
    SUBSAMPLING_NAMES,
)

from .inputs import BCNN_EXTENSIONS, JPEG_EXTENSIONS, output_format, readable_extensions, target_format

__all__ = ["ConvertOptions", "DeblockOptions", "DecodeOptions", "EncodeOptions"]



def _open_image(data: bytes) -> Image.Image:
    """``Image.open`` on bytes, with an error that does not name a BytesIO object."""
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        msg = "not an image file Pillow can read (unknown format or damaged)"
        raise UnidentifiedImageError(msg) from None


def _save_bytes(image: Image.Image, fmt: str, metadata: dict[str, Any], **params: Any) -> bytes:
    """Save to bytes, carrying ICC/EXIF/XMP over; Pillow's writers ignore the keys they cannot store."""
    out = io.BytesIO()
    kept = {key: value for key, value in metadata.items() if key in ("icc_profile", "exif", "xmp") and value}
    image.save(out, fmt, **kept, **params)
    return out.getvalue()


class ConvertOptions(Protocol):
    """What a subcommand does to one file; picklable, so it travels to worker processes and Ray actors."""

    kind: ClassVar[str]
    tag: ClassVar[str]

    @property
    def suffix(self) -> str: ...

    def input_extensions(self) -> frozenset[str]: ...

    def for_target(self, target: Path, explicit: bool) -> ConvertOptions: ...

    def convert(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class EncodeOptions:
    """``blockcnn encode``: any image Pillow reads -> .bcnn.

    Without ``keep_metadata`` the EXIF orientation is applied to the pixels and
    EXIF/XMP are dropped (they can hold GPS positions; a stored orientation
    without its EXIF would show the picture sideways). The ICC profile is always
    kept: without it the colours lose their meaning.
    """

    quality: int = DEFAULT_QUALITY
    subsampling: str = SUBSAMPLING_NAMES[DEFAULT_SUBSAMPLING]
    tables: str | None = None  # None: chosen by content, as Image.save does
    coding: str = DEFAULT_CODING
    predict: bool | None = None
    deblock: bool | None = None
    keep_metadata: bool = False

    kind: ClassVar[str] = "encode"
    tag: ClassVar[str] = "encoded"

    @property
    def suffix(self) -> str:
        return ".bcnn"

    def input_extensions(self) -> frozenset[str]:
        return readable_extensions() - BCNN_EXTENSIONS

    def for_target(self, target: Path, explicit: bool) -> EncodeOptions:
        return self

    def convert(self, data: bytes) -> bytes:
        with _open_image(data) as im:
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                msg = f"this {im.format} file holds {frames} frames and .bcnn stores one: extract the frame first"
                raise ValueError(
                    msg
                )
            icc = im.info.get("icc_profile")
            if self.keep_metadata:
                frame, exif, xmp = im, im.info.get("exif"), im.info.get("xmp")
            else:
                frame, exif, xmp = ImageOps.exif_transpose(im), None, None
            out = io.BytesIO()
            frame.save(
                out,
                "BCNN",
                quality=self.quality,
                subsampling=self.subsampling,
                tables=self.tables,
                coding=self.coding,
                predict=self.predict,
                deblock=self.deblock,
                icc_profile=icc,
                exif=exif,
                xmp=xmp,
            )
            return out.getvalue()


@dataclass(frozen=True)
class DecodeOptions:
    """``blockcnn decode``: .bcnn -> PNG (or any format Pillow writes), with the file's metadata."""

    format: str | None = None  # None: from the output file's extension, PNG for generated names
    deblock: bool = True

    kind: ClassVar[str] = "decode"
    tag: ClassVar[str] = "decoded"

    @property
    def suffix(self) -> str:
        return output_format(self.format or "PNG")[1]

    def input_extensions(self) -> frozenset[str]:
        return BCNN_EXTENSIONS

    def for_target(self, target: Path, explicit: bool) -> DecodeOptions:
        return replace(self, format=target_format(self.format, target, explicit))

    def convert(self, data: bytes) -> bytes:
        if not data.startswith(SIGNATURE):
            msg = "not a .bcnn file (the BCNN signature is missing)"
            raise ValueError(msg)
        # Opening checks the header against the size limits before anything is allocated.
        with pillow_blockcnn.open_bcnn(io.BytesIO(data), deblock=self.deblock) as image:
            image.load()
            return _save_bytes(image, self.format or "PNG", dict(image.info))


@dataclass(frozen=True)
class DeblockOptions:
    """``blockcnn deblock``: JPEG -> artifact-free PNG, or a high-quality JPEG.

    ``quality`` overrides the JPEG quality read from the file's quantisation
    tables; it is required for inputs that are not JPEG files (a screenshot of
    a JPEG, say).
    """

    quality: int | None = None
    format: str | None = None
    jpeg_quality: int = 95
    model: str | None = None

    kind: ClassVar[str] = "deblock"
    tag: ClassVar[str] = "deblocked"

    @property
    def suffix(self) -> str:
        return output_format(self.format or "PNG")[1]

    def input_extensions(self) -> frozenset[str]:
        return JPEG_EXTENSIONS

    def for_target(self, target: Path, explicit: bool) -> DeblockOptions:
        return replace(self, format=target_format(self.format, target, explicit))

    def convert(self, data: bytes) -> bytes:
        with _open_image(data) as im:
            if self.quality is None and not getattr(im, "quantization", None):
                msg = f"this is a {im.format} file, not a JPEG, so its JPEG quality is unknown: pass --quality 1..100"
                raise ValueError(
                    msg
                )
            restored = pillow_blockcnn.deblock(im, self.quality, model=self.model)
            fmt = self.format or "PNG"
            params: dict[str, Any] = {}
            if fmt == "JPEG":
                # 4:4:4 keeps the restored colour edges that 4:2:0 would blur again.
                params = {"quality": self.jpeg_quality, "subsampling": 0, "optimize": True}
            return _save_bytes(restored, fmt, dict(im.info), **params)
