"""Residual coding by JPEG's own routines: quantisation tables, and the entropy-coded scan libjpeg decodes.

Each plane is one single-component sequential JPEG scan of quantised DCT
levels that the encoder chose (:mod:`.quantise`), entropy-coded by libjpeg
itself through jpeglib (``jpeg_write_coefficients``): with JPEG's arithmetic
coder (T.81 Annex D, SOF9) by default, or with Huffman tables optimised for
the plane (SOF0). The file keeps only what a decoder cannot rebuild: the DAC or
DHT payload and the scan. Quantisation tables follow from the quality (the IJG
formula), the frame and scan headers from the plane size, so they are rebuilt
here rather than stored, and Pillow's libjpeg decodes the result.

A single-component sequential JPEG decodes every 8x8 block independently of
its neighbours (no upsampling, no block smoothing outside progressive mode), so
the encoder knows each block's decoded pixels from its levels alone
(:func:`.quantise.reconstruct`).
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import threading

import numpy as np
from PIL import Image, ImageFile

from ..format.limits import CODINGS, MAX_DIMENSION, check_quality
from .dct import ZIGZAG

__all__ = [
    "LIBJPEG_MAX_SIDE",
    "JpegPlaneError",
    "base_table",
    "decode_plane",
    "extend_frame",
    "frame_size",
    "quant_table",
    "scaled_table",
    "write_levels",
]

# ITU T.81 Annex K tables, natural (row-major) order.
_LUMA = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.int64,
)  # fmt: skip
_CHROMA = np.array(
    [
        17, 18, 24, 47, 99, 99, 99, 99,
        18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99,
        47, 66, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
    ],
    dtype=np.int64,
)  # fmt: skip
# Tables tuned for PSNR on training images (export/studies/tune_tables.py, results/studies/): a step that
# grows gently with the frequency u + v, and chroma finer than JPEG's. Indexed by u + v (0..14).
_MSE_LUMA_BY_FREQUENCY = [16, 18, 21, 23, 26, 28, 30, 33, 35, 38, 40, 42, 45, 47, 50]
_MSE_CHROMA_BY_FREQUENCY = [10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]
# Tables tuned for MS-SSIM (RGB mean, dB) on training images with the version 2 coder: luma steeper than the
# PSNR set, chroma as fine at DC but rising faster (round(16 (1 + 0.5 n)), round(10.4 (1 + 0.3 n)); the best of
# python -m export.studies.tune_tables --metric ms_ssim, results/studies/tables_search_v2_ms_ssim*.json).
_SSIM_LUMA_BY_FREQUENCY = [16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128]
_SSIM_CHROMA_BY_FREQUENCY = [10, 14, 17, 20, 23, 26, 29, 32, 35, 38, 42, 45, 48, 51, 54]
# Tables tuned for both metrics of what a decoder shows, the decode restored by the packaged restorer: the best
# mean of the PSNR-RGB and MS-SSIM BD-rates against Annex K (round(16 (1 + 0.25 n)), round(10.4 (1 + 0.2 n));
# python -m export.studies.tune_tables --metric both --deblock dblk-6 --held-out,
# results/studies/tables_search_restored*.json; still the best with dblk-9, which replaced dblk-6:
# tables_search_restored_dblk-9.json).
_BALANCED_LUMA_BY_FREQUENCY = [16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 68, 72]
_BALANCED_CHROMA_BY_FREQUENCY = [10, 12, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 40]
_FREQUENCY = np.add.outer(np.arange(8), np.arange(8)).ravel()
_BASES = {
    ("jpeg", False): _LUMA,
    ("jpeg", True): _CHROMA,
    ("mse", False): np.array(_MSE_LUMA_BY_FREQUENCY, dtype=np.int64)[_FREQUENCY],
    ("mse", True): np.array(_MSE_CHROMA_BY_FREQUENCY, dtype=np.int64)[_FREQUENCY],
    ("ssim", False): np.array(_SSIM_LUMA_BY_FREQUENCY, dtype=np.int64)[_FREQUENCY],
    ("ssim", True): np.array(_SSIM_CHROMA_BY_FREQUENCY, dtype=np.int64)[_FREQUENCY],
    ("balanced", False): np.array(_BALANCED_LUMA_BY_FREQUENCY, dtype=np.int64)[_FREQUENCY],
    ("balanced", True): np.array(_BALANCED_CHROMA_BY_FREQUENCY, dtype=np.int64)[_FREQUENCY],
}



#: libjpeg's ``JPEG_MAX_DIMENSION``: no JPEG frame it writes or reads has a longer side (the format's size limit).
LIBJPEG_MAX_SIDE = MAX_DIMENSION


def frame_size(height: int, width: int) -> tuple[int, int]:
    """The JPEG frame a plane of ``height`` x ``width`` (multiples of 8) is coded in.

    A plane padded to whole blocks can be 65 504 long, 4 more than libjpeg
    allows; its frame is then cut to 65 500 and libjpeg fills the last block
    from the frame's last row or column, as for any partial block. The decoder
    extends the decoded frame the same way (``docs/FORMAT.md`` §4).
    """
    return min(height, LIBJPEG_MAX_SIDE), min(width, LIBJPEG_MAX_SIDE)


def extend_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """A decoded frame (:func:`frame_size`) extended to the plane's ``height`` x ``width``: rows and columns
    past the frame repeat its last row and column (``docs/FORMAT.md`` §4), as libjpeg filled them on coding."""
    fh, fw = frame.shape
    if (fh, fw) == (height, width):
        return frame
    return np.pad(frame, ((0, height - fh), (0, width - fw)), mode="edge")


class JpegPlaneError(OSError):
    """A coded plane is damaged: libjpeg could not decode it, or its layout is wrong."""


def _ijg_scale(quality: int) -> int:
    check_quality(quality)
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def base_table(tables: str, chroma: bool) -> np.ndarray:
    """The unscaled base table of a table set (64 values, natural order): what :func:`quant_table` scales."""
    return _BASES[(tables, chroma)].copy()


def quant_table(quality: int, chroma: bool, tables: str) -> list[int]:
    """The table for ``quality``: a base set scaled as libjpeg's ``jpeg_set_quality`` does (baseline clamping).

    ``tables="jpeg"`` gives exactly libjpeg's tables; ``"mse"`` the PSNR-tuned set, ``"ssim"`` the MS-SSIM-tuned
    set, ``"balanced"`` the set tuned for both on restored decodes. Natural order.
    """
    base = _BASES[(tables, chroma)]
    return np.clip((base * _ijg_scale(quality) + 50) // 100, 1, 255).tolist()


def scaled_table(base: np.ndarray, quality: int) -> list[int]:
    """Any base table (64 values, natural order, may be fractional) scaled by the IJG quality rule."""
    scaled = np.floor((np.asarray(base, dtype=np.float64) * _ijg_scale(quality) + 50) / 100)
    return np.clip(scaled, 1, 255).astype(np.int64).tolist()


_SOF = {"huffman": 0xC0, "arithmetic": 0xC9}
# jpeglib switches its libjpeg build process-wide (``jpeglib.version``): one plane is written at a time.
_JPEGLIB = threading.Lock()
_PARAMS = {"huffman": 0xC4, "arithmetic": 0xCC}


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _split_jpeg(data: bytes, coding: str) -> tuple[bytes, bytes]:
    """Return (DHT or DAC payloads concatenated, entropy-coded scan) of a one-scan JPEG libjpeg wrote."""
    pos, params = 2, []
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        payload = data[pos + 4 : pos + 2 + length]
        if marker == _PARAMS[coding]:
            params.append(payload)
        elif marker == 0xDA:
            scan = data[pos + 2 + length :]
            if not scan.endswith(b"\xff\xd9"):
                msg = "libjpeg output does not end with EOI"
                raise JpegPlaneError(msg)
            return b"".join(params), scan[:-2]
        elif marker not in (0xE0, 0xDB, _SOF[coding]):
            msg = f"unexpected JPEG marker 0x{marker:02x} in libjpeg output"
            raise JpegPlaneError(msg)
        pos += 2 + length
    msg = "libjpeg output has no scan"
    raise JpegPlaneError(msg)


def _rebuild_jpeg(params: bytes, scan: bytes, width: int, height: int, qtable: list[int], coding: str) -> bytes:
    dqt = bytes([0]) + bytes(int(qtable[i]) for i in ZIGZAG)
    sof = struct.pack(">BHHBBBB", 8, height, width, 1, 1, 0x11, 0)
    sos = bytes([1, 1, 0x00, 0, 63, 0])
    segments = [b"\xff\xd8", _segment(0xDB, dqt), _segment(_SOF[coding], sof)]
    if params or coding == "huffman":
        segments.append(_segment(_PARAMS[coding], params))
    segments += [_segment(0xDA, sos), scan, b"\xff\xd9"]
    return b"".join(segments)


def write_levels(levels: np.ndarray, qtable: list[int], coding: str, frame: tuple[int, int]) -> bytes:
    """Entropy-code a plane of quantised levels ``[BY, BX, 8, 8]`` (natural order) with libjpeg.

    ``frame`` is ``(height, width)`` of the JPEG frame (:func:`frame_size`). Returns the plane's residual
    payload ``u16 len(params) + params + scan`` (docs/FORMAT.md §4).
    """
    import jpeglib  # the encoder's dependency only: decoding needs nothing but Pillow

    if coding not in CODINGS:
        msg = f"entropy coding {coding!r} is unknown; use one of {CODINGS}"
        raise ValueError(msg)
    flags = ["+ARITH_CODE"] if coding == "arithmetic" else ["+OPTIMIZE_CODING"]
    qt = np.asarray(qtable, dtype=np.uint16).reshape(1, 8, 8)
    coded = jpeglib.from_dct(np.ascontiguousarray(levels, dtype=np.int16), qt=qt)
    coded.height, coded.width = frame
    handle, path = tempfile.mkstemp(suffix=".jpg")
    os.close(handle)
    try:
        with _JPEGLIB, jpeglib.version("9e"):  # jpeglib's default 6b refuses arithmetic coding
            coded.write_dct(path, flags=flags)
        with open(path, "rb") as f:
            data = f.read()
    finally:
        os.unlink(path)
    params, scan = _split_jpeg(data, coding)
    return struct.pack(">H", len(params)) + params + scan


def decode_plane(payload: bytes, width: int, height: int, qtable: list[int], coding: str) -> np.ndarray:
    """The decoded residual plane (uint8, ``height`` x ``width``) of a payload made by :func:`write_levels`.

    A truncated scan follows Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES``, as
    the user set it: an error, or libjpeg's fill of the missing blocks.
    """
    if len(payload) < 2:
        msg = "coded plane is shorter than its table length field"
        raise JpegPlaneError(msg)
    (n,) = struct.unpack_from(">H", payload)
    if len(payload) < 2 + n:
        msg = "coded plane is shorter than its entropy-coding parameters"
        raise JpegPlaneError(msg)
    scan = payload[2 + n :]
    blocks = (width // 8) * (height // 8)
    # Every Huffman-coded block costs at least two bits (DC difference, end of block), so a Huffman scan shorter
    # than blocks / 4 bytes cannot be whole; checked before libjpeg allocates the plane. An arithmetic-coded
    # block can cost a small fraction of a bit, so those planes are bounded by the header's checks (FORMAT.md §8).
    if coding == "huffman" and 4 * len(scan) < blocks and not ImageFile.LOAD_TRUNCATED_IMAGES:
        msg = f"coded plane is truncated: {len(scan)} bytes cannot hold {blocks} blocks"
        raise JpegPlaneError(msg)
    fh, fw = frame_size(height, width)
    data = _rebuild_jpeg(payload[2 : 2 + n], scan, fw, fh, qtable, coding)
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
            # libjpeg's arithmetic decoder cannot suspend for more input (JERR_CANT_SUSPEND, which Pillow reports
            # as "broken data stream"): hand it the whole stream in one buffer rather than Pillow's 64 kB reads.
            im.decodermaxblock = max(len(data), ImageFile.MAXBLOCK)
            im.load()
            if im.mode != "L" or im.size != (fw, fh):
                msg = f"coded plane decodes to {im.mode} {im.size}, expected L {(fw, fh)}"
                raise JpegPlaneError(msg)
            decoded = np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, JpegPlaneError):
            raise
        if coding == "arithmetic" and "arithmetic" in str(exc).lower():
            msg = (
                "this Pillow's libjpeg cannot decode arithmetic-coded JPEG, which .bcnn version 2 files use by "
                "default; install Pillow's wheel from PyPI (its libjpeg-turbo decodes it) or a Pillow linked to "
                f"a libjpeg built with arithmetic decoding ({exc})"
            )
            raise JpegPlaneError(msg) from None
        msg_0 = f"coded plane is damaged: {exc}"
        raise JpegPlaneError(msg_0) from None
    if (fh, fw) == (height, width):
        return decoded.copy()
    return extend_frame(decoded, height, width)
