"""Pillow glue for .bcnn: identify, open lazily, load, save, register.

Only glue lives here, in the shape of Pillow's own ``WebPImagePlugin``: the
byte layout is :mod:`.format`, the pixels and models are the pipeline's
(:mod:`.pipeline`, over :mod:`.codec` and :mod:`.runtime`).
"""

from __future__ import annotations

from io import BytesIO
from typing import IO, Any

import numpy as np
from PIL import Image, ImageFile

from . import options, pipeline
from .format import container, limits

FORMAT = "BCNN"
MIME = "image/x-bcnn"
EXTENSIONS = [".bcnn"]

# Modes stored after a conversion that keeps everything the image means, step by step where Pillow has no
# direct conversion (La, premultiplied, becomes LA first).
_CONVERSIONS: dict[str, tuple[str, ...]] = {
    "1": ("L",),
    "LA": ("RGBA",),
    "La": ("LA", "RGBA"),
    "PA": ("RGBA",),
    "RGBa": ("RGBA",),
    "RGBX": ("RGB",),
    "YCbCr": ("RGB",),
}


def _accept(prefix: bytes) -> bool:
    return prefix.startswith(container.SIGNATURE)


class BcnnImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "BlockCNN learned image"

    _decoded = False
    #: Set by :meth:`draft`: decode reduced by this factor (1, 2, 4, 8), and the Y plane alone for mode L.
    _draft_scale = 1
    _draft_luma = False
    #: Deblock on load (or the restorer's id): None follows ``options.DEBLOCK``; :func:`pillow_blockcnn.open_bcnn`
    #: sets it per image.
    deblock: bool | str | None = None

    def _open(self) -> None:
        assert self.fp is not None
        if not _accept(self.fp.read(len(container.SIGNATURE))):
            msg = "not a .bcnn file"
            raise SyntaxError(msg)
        self.fp.seek(0)
        header, metadata = container.read_header(self.fp, allow_truncated=ImageFile.LOAD_TRUNCATED_IMAGES)
        _refuse_bombs(header.width, header.height)
        limits.check_size(header.width, header.height, container.BcnnFormatError)
        self._size = (header.width, header.height)
        self._mode = header.mode
        self.info.update(metadata)
        self.info["quality"] = header.quality
        self.info["tables"] = header.tables
        self.info["coding"] = header.coding
        self.info["tile"] = header.tile
        self.info["predicted"] = header.predicted
        self.info["deblock"] = header.deblock
        self.info["models"] = header.models
        self.n_frames = 1
        self.is_animated = False
        self.tile = [ImageFile._Tile("raw", (0, 0, *self.size), 0, self.mode)]

    def _getexif(self) -> dict[int, Any] | None:
        if "exif" not in self.info:
            return None
        return self.getexif()._get_merged_dict()

    def _read_container(self, allow_truncated: bool = False) -> container.Container:
        assert self.fp is not None
        self.fp.seek(0)
        return container.read_container(self.fp, allow_truncated)

    def load(self) -> Image.core.PixelAccess | None:
        # A copy made by pickle or deepcopy carries its pixels and no file (Image.__setstate__ skips
        # ImageFile.__init__): there is nothing to decode, only Image's own load.
        if getattr(self, "fp", None) is None and getattr(self, "_im", None) is not None:
            return Image.Image.load(self)
        if not self._decoded and self.fp is not None:
            parsed = self._read_container(ImageFile.LOAD_TRUNCATED_IMAGES)
            deblock = options.DEBLOCK if self.deblock is None else self.deblock
            # A reduced draft skips the post-filter: a 2x-8x reduction averages away what it would restore.
            decoded = pipeline.decode_pixels(
                parsed, deblock=deblock if self._draft_scale == 1 else False, luma_only=self._draft_luma
            )
            if self._draft_scale > 1:
                reduced = Image.fromarray(decoded.pixels).reduce(self._draft_scale)
                decoded = pipeline.Decoded(np.asarray(reduced), decoded.deblocked_with)
            self._decoded = True
            if decoded.deblocked_with is not None:
                self.info["deblocked_with"] = decoded.deblocked_with
            if self._exclusive_fp:
                self.fp.close()
            self.fp = BytesIO(decoded.pixels.tobytes())
            self.tile = [ImageFile._Tile("raw", (0, 0, *self.size), 0, self.mode)]
        return super().load()

    def draft(self, mode: str | None, size: tuple[int, int] | None) -> tuple[str, tuple[int, int, float, float]] | None:
        """Decode smaller or in gray, as Pillow's JPEG plugin does (``Image.thumbnail`` calls this).

        ``size``: decode reduced by the largest of 8, 4, 2 that keeps both sides at least ``size`` (box
        averaging of the decode, without the deblocking post-filter, which a reduction averages away).
        ``mode="L"`` on an RGB file decodes only the luma plane. Returns ``(mode, box)`` like JPEG's draft,
        or None when nothing changed or the image is already loaded."""
        if self._decoded or self._draft_scale != 1 or self._draft_luma:
            return None
        changed = False
        if mode == "L" and self.mode == "RGB":
            self._mode, self._draft_luma, changed = "L", True, True
        scale = 1
        if size:
            ratio = min(self.size[0] // max(size[0], 1), self.size[1] // max(size[1], 1))
            scale = next(s for s in (8, 4, 2, 1) if ratio >= s)
        original = self.size
        if scale > 1:
            self._draft_scale, changed = scale, True
            self._size = (-(-original[0] // scale), -(-original[1] // scale))
        if not changed:
            return None
        self.tile = [ImageFile._Tile("raw", (0, 0, *self.size), 0, self.mode)]
        return self.mode, (0, 0, original[0] / scale, original[1] / scale)

    def load_seek(self, pos: int) -> None:
        # Present so that ImageFile.Parser buffers the whole stream and reopens it.
        pass

    def verify(self) -> None:
        """Check every chunk's CRC and the chunk structure without decoding pixels."""
        if self.fp is None:
            msg = "verify must be called directly after open"
            raise RuntimeError(msg)
        self._read_container()
        if self._exclusive_fp:
            self.fp.close()
        self.fp = None

    def seek(self, frame: int) -> None:
        self._seek_check(frame)

    def tell(self) -> int:
        return 0


def _refuse_bombs(width: int, height: int) -> None:
    """Raise Pillow's ``DecompressionBombError`` before any pixel exists; the warning below that limit is left
    to ``Image.open``, which checks again after ``_open`` (checking fully here too warned twice)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > 2 * limit:
        msg = (
            f"Image size ({width * height} pixels) exceeds limit of {2 * limit} pixels, "
            "could be decompression bomb DOS attack."
        )
        raise Image.DecompressionBombError(msg)


def _metadata_bytes(name: str, value: object) -> bytes | None:
    if value is None or value == b"" or value == "":
        return None
    if isinstance(value, Image.Exif):
        value = value.tobytes()
    if isinstance(value, str) and name == "xmp":
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        msg = f"{name} must be bytes, got {type(value).__name__}"
        raise TypeError(msg)
    return bytes(value)


def _storable(im: Image.Image) -> Image.Image:
    if im.mode in ("L", "RGB", "RGBA"):
        return im
    if im.mode == "P":
        return im.convert("RGBA" if im.has_transparency_data else "RGB")
    if im.mode in _CONVERSIONS:
        for mode in _CONVERSIONS[im.mode]:
            im = im.convert(mode)
        return im
    msg = f"cannot write mode {im.mode} as BCNN (8-bit L, RGB and RGBA are stored; convert the image first)"
    raise OSError(msg)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    info = im.encoderinfo
    quality = limits.quality_setting(info.get("quality", limits.DEFAULT_QUALITY))
    subsampling = limits.subsampling_code(info.get("subsampling", limits.DEFAULT_SUBSAMPLING))
    tables = limits.tune_setting(info.get("tune"), info.get("tables"))
    coding = limits.coding_setting(info.get("coding", limits.DEFAULT_CODING))
    tile = limits.tile_setting(info.get("tile", limits.DEFAULT_TILE_BLOCKS))
    icc = _metadata_bytes("icc_profile", info.get("icc_profile", im.info.get("icc_profile")))
    exif = _metadata_bytes("exif", info.get("exif"))
    xmp = _metadata_bytes("xmp", info.get("xmp"))
    limits.check_size(*im.size)
    frame = _storable(im)
    encoded = pipeline.encode_pixels(
        np.asarray(frame),
        frame.mode,
        quality,
        subsampling=subsampling,
        tables=tables,
        coding=coding,
        tile=tile,
        predict=info.get("predict"),
        deblock=info.get("deblock"),
    )
    encoded.container.exif, encoded.container.icc_profile, encoded.container.xmp = exif, icc, xmp
    # Built whole in memory and written once: a failed encode never leaves half a file.
    fp.write(container.write_container(encoded.container))


def _save_all(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    frames = sum(getattr(frame, "n_frames", 1) for frame in [im, *im.encoderinfo.get("append_images", [])])
    if frames != 1:
        msg = f".bcnn stores a single image; got {frames} frames"
        raise ValueError(msg)
    _save(im, fp, filename)


Image.register_open(FORMAT, BcnnImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_save_all(FORMAT, _save_all)
Image.register_extensions(FORMAT, EXTENSIONS)
Image.register_mime(FORMAT, MIME)
