"""Residual coding by JPEG's own routines: libjpeg, reached through Pillow.

Each plane is coded as a one-component baseline JPEG with Huffman tables
optimised for it. The file keeps only what a decoder cannot rebuild: the
Huffman tables (DHT payload) and the entropy-coded scan. Quantisation tables
follow from the quality (the IJG formula), the frame and scan headers from the
plane size, so they are rebuilt here rather than stored.

Grayscale JPEG decodes every 8x8 block independently of its neighbours (no
chroma upsampling, no block smoothing in baseline mode). That is what lets the
encoder code a handful of blocks now and know, bit for bit, what the decoder
will reconstruct from the whole plane later.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageFile

from ..format.limits import MAX_DIMENSION, check_quality

__all__ = [
    "LIBJPEG_MAX_SIDE",
    "JpegPlaneError",
    "decode_plane",
    "encode_plane",
    "frame_size",
    "quant_table",
    "roundtrip_blocks",
    "roundtrip_plane",
    "scaled_table",
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
# Tables tuned for PSNR on training images (export/tune_tables.py, results/tables_search*.json): a step that
# grows gently with the frequency u + v, and chroma finer than JPEG's. Indexed by u + v (0..14).
_MSE_LUMA_BY_FREQUENCY = [16, 18, 21, 23, 26, 28, 30, 33, 35, 38, 40, 42, 45, 47, 50]
_MSE_CHROMA_BY_FREQUENCY = [10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]
_FREQUENCY = np.add.outer(np.arange(8), np.arange(8)).ravel()
_MSE_LUMA = np.array(_MSE_LUMA_BY_FREQUENCY, dtype=np.int64)[_FREQUENCY]
_MSE_CHROMA = np.array(_MSE_CHROMA_BY_FREQUENCY, dtype=np.int64)[_FREQUENCY]
_BASES = {("jpeg", False): _LUMA, ("jpeg", True): _CHROMA, ("mse", False): _MSE_LUMA, ("mse", True): _MSE_CHROMA}

# Position in natural order of the k-th coefficient in zig-zag order (T.81 Figure A.6).
_ZIGZAG = np.array(
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ]
)  # fmt: skip


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


class JpegPlaneError(OSError):
    """A coded plane is damaged: libjpeg could not decode it, or its layout is wrong."""


def _ijg_scale(quality: int) -> int:
    check_quality(quality)
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def quant_table(quality: int, chroma: bool, tables: str) -> list[int]:
    """The table for ``quality``: a base set scaled as libjpeg's ``jpeg_set_quality`` does (baseline clamping).

    ``tables="jpeg"`` gives exactly libjpeg's tables; ``"mse"`` the PSNR-tuned set. Natural order.
    """
    base = _BASES[(tables, chroma)]
    return np.clip((base * _ijg_scale(quality) + 50) // 100, 1, 255).tolist()


def scaled_table(base: np.ndarray, quality: int) -> list[int]:
    """Any base table (64 values, natural order, may be fractional) scaled by the IJG quality rule."""
    scaled = np.floor((np.asarray(base, dtype=np.float64) * _ijg_scale(quality) + 50) / 100)
    return np.clip(scaled, 1, 255).astype(np.int64).tolist()


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _split_jpeg(data: bytes) -> tuple[bytes, bytes]:
    """Return (all DHT payloads concatenated, entropy-coded scan) of a one-scan baseline JPEG."""
    pos, tables = 2, []
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        payload = data[pos + 4 : pos + 2 + length]
        if marker == 0xC4:
            tables.append(payload)
        elif marker == 0xDA:
            scan = data[pos + 2 + length :]
            if not scan.endswith(b"\xff\xd9"):
                msg = "libjpeg output does not end with EOI"
                raise JpegPlaneError(msg)
            return b"".join(tables), scan[:-2]
        elif marker not in (0xE0, 0xDB, 0xC0):
            msg = f"unexpected JPEG marker 0x{marker:02x} in libjpeg output"
            raise JpegPlaneError(msg)
        pos += 2 + length
    msg = "libjpeg output has no scan"
    raise JpegPlaneError(msg)


def _rebuild_jpeg(tables: bytes, scan: bytes, width: int, height: int, qtable: list[int]) -> bytes:
    dqt = bytes([0]) + bytes(int(qtable[i]) for i in _ZIGZAG)
    sof = struct.pack(">BHHBBBB", 8, height, width, 1, 1, 0x11, 0)
    sos = bytes([1, 1, 0x00, 0, 63, 0])
    return b"".join(
        [
            b"\xff\xd8",
            _segment(0xDB, dqt),
            _segment(0xC0, sof),
            _segment(0xC4, tables),
            _segment(0xDA, sos),
            scan,
            b"\xff\xd9",
        ]
    )


def _libjpeg_encode(plane: np.ndarray, qtable: list[int], optimize: bool) -> bytes:
    out = io.BytesIO()
    Image.fromarray(plane, "L").save(out, "JPEG", qtables=[qtable], optimize=optimize)
    return out.getvalue()


def encode_plane(plane: np.ndarray, qtable: list[int]) -> bytes:
    """Code a uint8 plane whose sides are multiples of 8; returns ``u16 len(DHT) + DHT + scan``."""
    fh, fw = frame_size(*plane.shape)
    tables, scan = _split_jpeg(_libjpeg_encode(np.ascontiguousarray(plane[:fh, :fw]), qtable, optimize=True))
    return struct.pack(">H", len(tables)) + tables + scan


def decode_plane(payload: bytes, width: int, height: int, qtable: list[int]) -> np.ndarray:
    """Inverse of :func:`encode_plane` for a plane of ``width`` x ``height`` pixels.

    A truncated scan follows Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES``, as
    the user set it: an error, or libjpeg's fill of the missing blocks.
    """
    if len(payload) < 2:
        msg = "coded plane is shorter than its table length field"
        raise JpegPlaneError(msg)
    (n,) = struct.unpack_from(">H", payload)
    if len(payload) < 2 + n:
        msg = "coded plane is shorter than its Huffman tables"
        raise JpegPlaneError(msg)
    scan = payload[2 + n :]
    blocks = (width // 8) * (height // 8)
    # Every block costs at least two Huffman bits (DC difference, end of block),
    # so a scan shorter than blocks / 4 bytes cannot be whole. Checked before
    # libjpeg allocates the plane: a tiny file cannot claim a huge image.
    if 4 * len(scan) < blocks and not ImageFile.LOAD_TRUNCATED_IMAGES:
        msg = f"coded plane is truncated: {len(scan)} bytes cannot hold {blocks} blocks"
        raise JpegPlaneError(msg)
    fh, fw = frame_size(height, width)
    data = _rebuild_jpeg(payload[2 : 2 + n], scan, fw, fh, qtable)
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
            im.load()
            if im.mode != "L" or im.size != (fw, fh):
                msg = f"coded plane decodes to {im.mode} {im.size}, expected L {(fw, fh)}"
                raise JpegPlaneError(msg)
            decoded = np.asarray(im, dtype=np.uint8)
            if (fh, fw) == (height, width):
                return decoded.copy()
            return np.pad(decoded, ((0, height - fh), (0, width - fw)), mode="edge")
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, JpegPlaneError):
            raise
        msg_0 = f"coded plane is damaged: {exc}"
        raise JpegPlaneError(msg_0) from None


def roundtrip_blocks(blocks: np.ndarray, qtable: list[int]) -> np.ndarray:
    """What the decoder will see for these 8x8 blocks once they are coded inside a whole plane.

    ``blocks`` is ``[N, 8, 8]`` uint8. They are laid side by side in one
    8 x 8N strip, coded and decoded by libjpeg; block independence makes the
    result equal to the same blocks' decode from any plane they end up in.
    """
    n = blocks.shape[0]
    strip = np.ascontiguousarray(blocks.transpose(1, 0, 2).reshape(8, 8 * n))
    coded = _libjpeg_encode(strip, qtable, optimize=False)
    with Image.open(io.BytesIO(coded)) as im:
        decoded = np.asarray(im, dtype=np.uint8)
    return decoded.reshape(8, n, 8).transpose(1, 0, 2)


def roundtrip_plane(plane: np.ndarray, qtable: list[int]) -> np.ndarray:
    """What the decoder sees for a whole unpredicted plane (sides multiples of 8): code and decode it."""
    coded = _libjpeg_encode(np.ascontiguousarray(plane), qtable, optimize=False)
    with Image.open(io.BytesIO(coded)) as im:
        return np.asarray(im, dtype=np.uint8).copy()
