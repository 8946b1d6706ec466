"""An independent decoder written from docs/FORMAT.md alone, checked against the package.

It shares no code with pillow_blockcnn (only struct, zlib, numpy and Pillow's
JPEG decoder), so a drift between the document and the implementation fails here.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.conftest import save_bytes

LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]  # fmt: skip
CHROMA = [17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4 + [24, 26, 56] + [99] * 5 + [47, 66] + [99] * 38
MSE_LUMA = [[16, 18, 21, 23, 26, 28, 30, 33, 35, 38, 40, 42, 45, 47, 50][u + v] for u in range(8) for v in range(8)]
MSE_CHROMA = [[10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25][u + v] for u in range(8) for v in range(8)]
SSIM_LUMA = [[16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128][u + v] for u in range(8) for v in range(8)]
SSIM_CHROMA = [[10, 14, 17, 20, 23, 26, 29, 32, 35, 38, 42, 45, 48, 51, 54][u + v] for u in range(8) for v in range(8)]
ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63]  # fmt: skip


def spec_decode(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89BCNN\r\n\x1a"
    pos, chunks = 8, []
    while True:
        length, kind = struct.unpack_from(">I4s", data, pos)
        payload = data[pos + 8 : pos + 8 + length]
        assert struct.unpack_from(">I", data, pos + 8 + length)[0] == zlib.crc32(kind + payload)
        chunks.append((kind, payload))
        pos += 12 + length
        if kind == b"END ":
            break
    head = chunks[0][1]
    version, w, h, mode, flags, quality, sub, tables, coding, tile, _ = struct.unpack_from(">BIIBBBBBBBB", head)
    assert version == 2
    assert flags & 1 == 0
    luma, chroma = [(LUMA, CHROMA), (MSE_LUMA, MSE_CHROMA), (SSIM_LUMA, SSIM_CHROMA)][tables]
    s = 5000 // quality if quality < 50 else 200 - 2 * quality
    planes = []
    for i, (_, p) in enumerate(c for c in chunks if c[0] == b"PLAN"):
        base = luma if i == 0 else chroma
        q = [min(max((b * s + 50) // 100, 1), 255) for b in base]
        fy, fx = {0: (1, 1), 1: (1, 2), 2: (2, 2)}[sub] if i else (1, 1)
        hp, wp = 8 * -(-h // (8 * fy)), 8 * -(-w // (8 * fx))
        dc_step, m = struct.unpack_from(">BI", p)
        if dc_step:
            q[0] = dc_step
        assert p[5 : 5 + m] == b"\x00"  # block modes: none predicted
        p = p[5 + m :]
        (n,) = struct.unpack_from(">H", p)
        def seg(m, b):
            return bytes([0xFF, m]) + struct.pack(">H", len(b) + 2) + b
        sof, params = (0xC9, 0xCC) if coding == 1 else (0xC0, 0xC4)
        jpeg = (
            b"\xff\xd8"
            + seg(0xDB, bytes([0] + [q[k] for k in ZIGZAG]))
            + seg(sof, struct.pack(">BHHBBBB", 8, min(hp, 65500), min(wp, 65500), 1, 1, 0x11, 0))
            + (seg(params, p[2 : 2 + n]) if n or coding == 0 else b"")
            + seg(0xDA, bytes([1, 1, 0, 0, 63, 0]))
            + p[2 + n :]
            + b"\xff\xd9"
        )
        decoder = Image.open(io.BytesIO(jpeg))
        decoder.decodermaxblock = len(jpeg)  # libjpeg's arithmetic decoder cannot suspend
        frame = np.asarray(decoder).astype(np.int64)
        frame = np.pad(frame, ((0, hp - frame.shape[0]), (0, wp - frame.shape[1])), mode="edge")  # §4 frame cut
        plane = frame[: -(-h // fy), : -(-w // fx)]
        if fx == 2:
            e = np.pad(plane, ((1, 1), (1, 1)), mode="edge")
            if fy == 2:
                out = np.empty((2 * plane.shape[0], 2 * plane.shape[1]), np.int64)
                for v, other in ((0, e[:-2]), (1, e[2:])):
                    c = 3 * e[1:-1] + other
                    out[v::2, 0::2] = (3 * c[:, 1:-1] + c[:, :-2] + 8) >> 4
                    out[v::2, 1::2] = (3 * c[:, 1:-1] + c[:, 2:] + 7) >> 4
            else:
                r = e[1:-1]
                out = np.empty((plane.shape[0], 2 * plane.shape[1]), np.int64)
                out[:, 0::2] = (3 * r[:, 1:-1] + r[:, :-2] + 1) >> 2
                out[:, 1::2] = (3 * r[:, 1:-1] + r[:, 2:] + 2) >> 2
            plane = out
        planes.append(plane[:h, :w])
    if mode == 1:
        return planes[0].astype(np.uint8)
    y, x, z = planes[0], planes[1] - 128, planes[2] - 128
    rgb = np.stack(
        [y + ((91881 * z + 32768) >> 16), y + ((-22554 * x - 46802 * z + 32768) >> 16), y + ((116130 * x + 32768) >> 16)],
        axis=-1,
    )
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    if mode == 4:
        (alpha_payload,) = [p for k, p in chunks if k == b"ALPH"]
        assert alpha_payload[0] == 0
        diff = np.frombuffer(zlib.decompress(alpha_payload[1:]), np.uint8).reshape(h, w)
        rgb = np.dstack([rgb, np.cumsum(diff, axis=1, dtype=np.uint8)])
    return rgb


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
@pytest.mark.parametrize("size", [(61, 43), (16, 16), (3, 5)])
@pytest.mark.parametrize(
    ("tables", "coding"), [("jpeg", "huffman"), ("mse", "arithmetic"), ("jpeg", "arithmetic"), ("ssim", "arithmetic")]
)
def test_the_document_decodes_what_the_package_writes(small, mode, subsampling, size, tables, coding) -> None:
    src = small.convert(mode).resize(size)
    data = save_bytes(
        src, quality=37, subsampling=subsampling, tables=tables, coding=coding, predict=False, deblock=False
    )
    with Image.open(io.BytesIO(data)) as im:
        np.testing.assert_array_equal(spec_decode(data), np.asarray(im))
