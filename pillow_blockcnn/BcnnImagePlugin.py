"""Pillow glue for .bcnn: identify, open lazily, load, save, register.

Only glue lives here, in the shape of Pillow's own ``WebPImagePlugin``: the
byte layout is :mod:`.container`, the pixels are :mod:`.codec`, the models are
:mod:`.runtime` (chosen by :mod:`.pipeline`).
"""

from __future__ import annotations

from io import BytesIO
from typing import IO, Any

import numpy as np
from PIL import Image, ImageFile

from . import container, options, pipeline

FORMAT = "BCNN"
MIME = "image/x-bcnn"
EXTENSIONS = [".bcnn"]

_SUBSAMPLING_NAMES = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2, 0: 0, 1: 1, 2: 2, -1: 2}
# Modes stored after a conversion that keeps everything the image means.
_CONVERSIONS = {"1": "L", "LA": "RGBA", "La": "RGBA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB", "YCbCr": "RGB"}


def _accept(prefix: bytes) -> bool:
    return prefix.startswith(container.SIGNATURE)


class BcnnImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "BlockCNN learned image"

    _decoded = False

    def _open(self) -> None:
        assert self.fp is not None
        if not _accept(self.fp.read(len(container.SIGNATURE))):
            msg = "not a .bcnn file"
            raise SyntaxError(msg)
        self.fp.seek(0)
        header, metadata = container.read_header(self.fp, allow_truncated=ImageFile.LOAD_TRUNCATED_IMAGES)
        # Image.open repeats this check after _open; running it first gives absurd sizes
        # Pillow's own DecompressionBombError rather than the format's size-limit error below.
        Image._decompression_bomb_check((header.width, header.height))
        if header.width > container.MAX_DIMENSION or header.height > container.MAX_DIMENSION:
            msg = f"image size {header.width}x{header.height} exceeds the .bcnn limit of {container.MAX_DIMENSION} per side"
            raise container.BcnnFormatError(msg)
        self._size = (header.width, header.height)
        self._mode = header.mode
        self.info.update(metadata)
        self.info["quality"] = header.quality
        self.info["tables"] = header.tables
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
        if not self._decoded and self.fp is not None:
            parsed = self._read_container(ImageFile.LOAD_TRUNCATED_IMAGES)
            pixels = pipeline.decode_pixels(parsed, deblock=options.DEBLOCK)
            self._decoded = True
            if self._exclusive_fp:
                self.fp.close()
            self.fp = BytesIO(pixels.tobytes())
            self.tile = [ImageFile._Tile("raw", (0, 0, *self.size), 0, self.mode)]
        return super().load()

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


def _quality(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= 100:
        msg = f"Invalid quality setting: {value!r} (an integer 1..100)"
        raise ValueError(msg)
    return int(value)


def _subsampling(value: object) -> int:
    try:
        return _SUBSAMPLING_NAMES[value]  # type: ignore[index]
    except (KeyError, TypeError):
        msg = f"Invalid subsampling {value!r}: use '4:4:4', '4:2:2' or '4:2:0' (or 0, 1, 2)"
        raise ValueError(msg) from None


def _tables(value: object) -> str:
    if value not in container.TABLE_SETS:
        msg = f"Invalid tables {value!r}: use 'mse' (tuned for PSNR, the default) or 'jpeg' (libjpeg's)"
        raise ValueError(msg)
    return str(value)


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
        return im.convert(_CONVERSIONS[im.mode])
    msg = f"cannot write mode {im.mode} as BCNN (8-bit L, RGB and RGBA are stored; convert the image first)"
    raise OSError(msg)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    info = im.encoderinfo
    quality = _quality(info.get("quality", 75))
    subsampling = _subsampling(info.get("subsampling", 2))
    tables = _tables(info.get("tables", "mse"))
    icc = _metadata_bytes("icc_profile", info.get("icc_profile", im.info.get("icc_profile")))
    exif = _metadata_bytes("exif", info.get("exif"))
    xmp = _metadata_bytes("xmp", info.get("xmp"))
    frame = _storable(im)
    if frame.width < 1 or frame.height < 1:
        msg = f"cannot write an empty {frame.width}x{frame.height} image as BCNN"
        raise ValueError(msg)
    if max(frame.size) > container.MAX_DIMENSION:
        msg = f"image size {frame.width}x{frame.height} exceeds the .bcnn limit of {container.MAX_DIMENSION} per side"
        raise ValueError(msg)
    encoded = pipeline.encode_pixels(
        np.asarray(frame),
        frame.mode,
        quality,
        subsampling=subsampling,
        tables=tables,
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
