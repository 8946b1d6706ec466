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
BALANCED_LUMA = [[16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 68, 72][u + v] for u in range(8) for v in range(8)]
BALANCED_CHROMA = [[10, 12, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 40][u + v] for u in range(8) for v in range(8)]
ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63]  # fmt: skip


def spec_modes(coded: bytes, by: int, bx: int) -> np.ndarray:
    """§5.1: the block-mode map, LZMA's binary range decoder with four contexts."""
    kind, coded = coded[0], coded[1:]
    if kind in (0, 1):
        assert coded == b""
        return np.full((by, bx), bool(kind))
    assert kind == 2
    p, code, nxt, rng = [1024] * 4, int.from_bytes(coded[1:5], "big"), 5, 0xFFFFFFFF
    modes = np.zeros((by, bx), dtype=bool)
    for y in range(by):
        for x in range(bx):
            ctx = int(x > 0 and modes[y, x - 1]) + 2 * int(y > 0 and modes[y - 1, x])
            bound = (rng >> 11) * p[ctx]
            if code < bound:
                rng, p[ctx], bit = bound, p[ctx] + ((2048 - p[ctx]) >> 5), 0
            else:
                code, rng, p[ctx], bit = code - bound, rng - bound, p[ctx] - (p[ctx] >> 5), 1
            while rng < 1 << 24:
                byte = coded[nxt] if nxt < len(coded) else None
                assert byte is not None, "the map ran out of bytes"
                rng, code, nxt = (rng << 8) & 0xFFFFFFFF, ((code << 8) | byte) & 0xFFFFFFFF, nxt + 1
            modes[y, x] = bit
    return modes


def spec_rebuild(residual: np.ndarray, modes: np.ndarray, tile: int, predict, plane: int) -> np.ndarray:
    """§5: fronts t = lx + 2 ly within tiles; plain blocks are their residual, predicted ones
    clamp(prediction + R - 128), each predicted from the causal 24x24 window of what is rebuilt so far."""
    by_n, bx_n = modes.shape
    th, tw = (by_n, bx_n) if tile == 0 else (tile, tile)
    rebuilt = residual.astype(np.int64).copy()
    done = np.zeros(modes.shape, dtype=bool)
    order = sorted(((by % th) * 2 + bx % tw, by, bx) for by in range(by_n) for bx in range(bx_n))
    for t in sorted({o[0] for o in order}):
        blocks = [(by, bx) for tt, by, bx in order if tt == t]
        contexts, available, where = [], [], []
        for by, bx in blocks:
            if modes[by, bx]:
                ly, lx = by % th, bx % tw
                width = min(tw, bx_n - (bx - lx))
                avail = [ly > 0 and lx > 0, ly > 0, ly > 0 and lx < width - 1, lx > 0]
                window = np.zeros((24, 24), dtype=np.int64)
                for (r, c), ok, (dy, dx) in zip(((0, 0), (0, 8), (0, 16), (8, 0)), avail, ((-1, -1), (-1, 0), (-1, 1), (0, -1))):
                    if ok:
                        assert done[by + dy, bx + dx]  # the window reads only blocks rebuilt already
                        window[r : r + 8, c : c + 8] = rebuilt[8 * (by + dy) : 8 * (by + dy) + 8, 8 * (bx + dx) : 8 * (bx + dx) + 8]
                contexts.append(window.astype(np.uint8))
                available.append(avail)
                where.append((by, bx))
        if where:
            predictions = predict(np.stack(contexts), np.array(available, dtype=bool), plane > 0)
            for (by, bx), pred in zip(where, predictions):
                block = rebuilt[8 * by : 8 * by + 8, 8 * bx : 8 * bx + 8]
                block[:] = np.clip(pred.astype(np.int64) + block - 128, 0, 255)
        for by, bx in blocks:
            done[by, bx] = True
    return rebuilt


def spec_decode(data: bytes, predictors: dict | None = None) -> np.ndarray:
    """Pixels of a .bcnn file; ``predictors`` maps a prediction model id to ``f(contexts, available, chroma,
    quality)`` (§5.2) for predicted files."""
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
    version, w, h, mode, flags, quality, sub, tables, coding, tile, n_models = struct.unpack_from(">BIIBBBBBBBB", head)
    assert version == 2
    ids, at = [], 17
    for _ in range(n_models):
        ids.append(head[at + 1 : at + 1 + head[at]].decode("ascii"))
        at += 1 + head[at]
    assert at == len(head)
    predict = None
    if flags & 1:
        model = predictors[ids[0]]

        def predict(contexts, available, chroma):
            return model(contexts, available, chroma, quality)
    luma, chroma = [(LUMA, CHROMA), (MSE_LUMA, MSE_CHROMA), (SSIM_LUMA, SSIM_CHROMA), (BALANCED_LUMA, BALANCED_CHROMA)][tables]
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
        modes = spec_modes(p[5 : 5 + m], hp // 8, wp // 8)
        assert predict is not None or not modes.any()
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
        if modes.any():
            frame = spec_rebuild(frame, modes, tile, predict, i)
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
    ("tables", "coding"), [("jpeg", "huffman"), ("mse", "arithmetic"), ("jpeg", "arithmetic"), ("ssim", "arithmetic"),
                            ("balanced", "arithmetic")]
)
def test_the_document_decodes_what_the_package_writes(small, mode, subsampling, size, tables, coding) -> None:
    src = small.convert(mode).resize(size)
    data = save_bytes(
        src, quality=37, subsampling=subsampling, tables=tables, coding=coding, predict=False, deblock=False
    )
    with Image.open(io.BytesIO(data)) as im:
        np.testing.assert_array_equal(spec_decode(data), np.asarray(im))


@pytest.fixture
def int_model(monkeypatch):
    """The committed stand-in integer predictor as the default prediction model, and its §5.2 arithmetic
    from its integer layers (tests/int_reference.py), which knows nothing of onnxruntime or the package."""
    from pillow_blockcnn import runtime
    from tests import int_reference
    from tests.helpers import STAND_INS

    monkeypatch.setattr(runtime.registry, "_registered", {})
    monkeypatch.setattr(runtime.registry, "_packaged", dict)
    runtime.register_model("test-int-predict", "predict", (STAND_INS / "test-int-predict.onnx").read_bytes(),
                           tables=("jpeg", "mse", "ssim", "balanced"), arithmetic="integer")
    runtime.clear_sessions()
    saved = np.load(STAND_INS / "test-int-predict.npz")
    layers = [(saved[f"W{i}"], saved[f"B{i}"], int(saved[f"S{i}"])) for i in range(len(saved.files) // 3)]
    yield {"test-int-predict": lambda c, a, chroma, q: int_reference.predict(c, a, q, chroma, layers)}
    runtime.clear_sessions()


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize(("subsampling", "size", "tile"), [("4:2:0", (61, 43), 64), ("4:4:4", (40, 72), 2), ("4:2:2", (3, 5), 0)])
@pytest.mark.parametrize("force", [True, False])
def test_the_document_decodes_predicted_files(small, int_model, mode, subsampling, size, tile, force) -> None:
    """§5 (fronts, tiles, windows), §5.1 (the block-mode map) and §5.2 (the integer arithmetic), read from the
    document: the package's decode of a predicted file equals the independent one."""
    from pillow_blockcnn import codec, pipeline
    from pillow_blockcnn.format.container import read_container, write_container

    pixels = np.asarray(small.convert(mode).resize(size))
    encoded = codec.encode(pixels, mode, 30, subsampling={"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}[subsampling],
                           tables="mse", tile=tile, predictor=pipeline._predictor(("test-int-predict",), 30),
                           force_prediction=force)
    data = write_container(encoded.container)
    assert encoded.container.header.predicted or not force
    decoded = pipeline.decode_pixels(read_container(io.BytesIO(data)), deblock=False).pixels
    np.testing.assert_array_equal(spec_decode(data, int_model), decoded)


class CopyLeftPredictor:
    """Predicts each block as a copy of its left neighbour (mid-grey without one): exact on a texture that
    repeats every 8 pixels, useless on noise, so a file gets a mixed block-mode map."""

    model_ids = ("test-copy-left",)

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane) -> np.ndarray:
        out = np.full((len(contexts), 8, 8), 128, dtype=np.uint8)
        out[available[:, 3]] = contexts[available[:, 3], 8:16, 0:8]
        return out


@pytest.mark.parametrize("tile", [0, 3])
def test_the_document_decodes_a_mixed_block_mode_map(tile) -> None:
    """A range-coded map (§5.1 kind 2) and the tile rule of §5: stripes repeating every 8 pixels, which a
    copy of the left block predicts exactly, with a patch of noise where plain blocks win."""
    from pillow_blockcnn import codec
    from pillow_blockcnn.format.container import PlanePayload, read_container, write_container

    rng = np.random.default_rng(1)
    stripes = np.tile(rng.integers(0, 256, (64, 8), dtype=np.uint8), (1, 12))
    stripes[16:40, 24:56] = rng.integers(0, 256, (24, 32), dtype=np.uint8)
    predictor = CopyLeftPredictor()
    data = write_container(codec.encode(stripes, "L", 60, tile=tile, predictor=predictor).container)
    parsed = read_container(io.BytesIO(data))
    assert [PlanePayload.from_bytes(p).modes[0] for p in parsed.planes] == [2]

    def model(contexts, available, chroma, quality):
        return predictor.predict(contexts, available, int(chroma))

    np.testing.assert_array_equal(spec_decode(data, {"test-copy-left": model}), codec.decode(parsed, predictor))
