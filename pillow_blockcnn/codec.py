"""Pixels to a :class:`~pillow_blockcnn.container.Container` and back: numpy in, numpy out.

The pipeline, for an RGB image: pad to the block grid by edge replication,
convert to YCbCr and subsample the chroma (libjpeg's arithmetic, see
:mod:`.colour`), then code each plane on its own. Within a plane the 8x8
blocks are visited front by front (:mod:`.predictor`); each block is predicted
from already reconstructed neighbours, and only the residual
``clip(x - prediction + 128)`` goes to libjpeg (:mod:`.jpeg`). The encoder
reconstructs exactly what the decoder will, so both sides feed the predictor
the same pixels. With no prediction (flag off) a plane is coded in one libjpeg
call and the file is, pixel for pixel, a JPEG of the same quality.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import colour, jpeg
from .container import MAX_DIMENSION, BcnnFormatError, Container, Header
from .predictor import BLOCK, BlockPredictor, NullPredictor, gather_contexts, wavefronts

__all__ = ["SUBSAMPLING_FACTORS", "EncodedImage", "decode", "encode", "from_planes", "plane_shapes", "to_planes"]

#: Header subsampling code -> chroma (vertical, horizontal) factors.
SUBSAMPLING_FACTORS: dict[int, tuple[int, int]] = {0: (1, 1), 1: (1, 2), 2: (2, 2)}
_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}


@dataclass
class EncodedImage:
    """The coded file contents and, when asked for, what a decoder will reconstruct."""

    container: Container
    reconstruction: np.ndarray | None = None


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def plane_shapes(header: Header) -> list[tuple[int, int]]:
    """``(height, width)`` of each coded plane as the decoder sees it, before cropping (multiples of 8)."""
    h, w = header.height, header.width
    luma = (_ceil_div(h, BLOCK) * BLOCK, _ceil_div(w, BLOCK) * BLOCK)
    if header.mode == "L":
        return [luma]
    fy, fx = SUBSAMPLING_FACTORS[header.subsampling]
    chroma = (_ceil_div(h, BLOCK * fy) * BLOCK, _ceil_div(w, BLOCK * fx) * BLOCK)
    return [luma, chroma, chroma]


def _pad_edge(array: np.ndarray, height: int, width: int) -> np.ndarray:
    pad = [(0, height - array.shape[0]), (0, width - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, mode="edge")


def _check_pixels(pixels: np.ndarray, mode: str) -> None:
    if mode not in _CHANNELS:
        raise ValueError(f"mode {mode!r} cannot be coded; use L, RGB or RGBA")
    expected = 2 if mode == "L" else 3
    if pixels.dtype != np.uint8 or pixels.ndim != expected or (mode != "L" and pixels.shape[2] != _CHANNELS[mode]):
        raise ValueError(f"mode {mode} needs a uint8 array of shape {'(H, W)' if mode == 'L' else f'(H, W, {_CHANNELS[mode]})'}")
    h, w = pixels.shape[:2]
    if not (1 <= h <= MAX_DIMENSION and 1 <= w <= MAX_DIMENSION):
        raise ValueError(f"image size {w}x{h} is outside 1..{MAX_DIMENSION} per side, the limit of one JPEG plane")


def to_planes(pixels: np.ndarray, header: Header) -> list[np.ndarray]:
    """The padded planes the codec codes: gray, or Y and subsampled Cb, Cr (alpha is separate)."""
    shapes = plane_shapes(header)
    if header.mode == "L":
        return [_pad_edge(pixels, *shapes[0])]
    fy, fx = SUBSAMPLING_FACTORS[header.subsampling]
    ch, cw = shapes[1]
    rgb = _pad_edge(pixels[..., :3], ch * fy, cw * fx)
    ycc = colour.rgb_to_ycbcr(rgb)
    luma = ycc[0][: shapes[0][0], : shapes[0][1]]
    return [luma] + [colour.downsample(ycc[i], (fy, fx)) for i in (1, 2)]


def from_planes(planes: list[np.ndarray], header: Header) -> np.ndarray:
    """Inverse of :func:`to_planes`: crop, upsample chroma, convert to RGB (without alpha)."""
    h, w = header.height, header.width
    if header.mode == "L":
        return planes[0][:h, :w]
    fy, fx = SUBSAMPLING_FACTORS[header.subsampling]
    chroma_h, chroma_w = _ceil_div(h, fy), _ceil_div(w, fx)
    chroma = [colour.upsample(p[:chroma_h, :chroma_w], (fy, fx))[:h, :w] for p in planes[1:]]
    return colour.ycbcr_to_rgb(np.stack([planes[0][:h, :w], *chroma]))


def _qtable(header: Header, index: int) -> list[int]:
    return jpeg.quant_table(header.quality, chroma=index > 0, tables=header.tables)


def _predict_loop(
    shape: tuple[int, int],
    predictor: BlockPredictor,
    plane_index: int,
    code_front: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Walk the fronts; ``code_front(by, bx, prediction)`` returns the reconstructed blocks."""
    h, w = shape
    recon = np.zeros((h + 2 * BLOCK, w + 2 * BLOCK), dtype=np.uint8)
    for by, bx in wavefronts(h // BLOCK, w // BLOCK):
        contexts, available = gather_contexts(recon, by, bx)
        prediction = np.asarray(predictor.predict(contexts, available, plane_index))
        if prediction.dtype != np.uint8 or prediction.shape != (len(by), BLOCK, BLOCK):
            raise TypeError(f"predictor returned {prediction.dtype} {prediction.shape}, expected uint8 {(len(by), 8, 8)}")
        blocks = code_front(by, bx, prediction)
        for i in range(len(by)):
            y, x = BLOCK * (by[i] + 1), BLOCK * (bx[i] + 1)
            recon[y : y + BLOCK, x : x + BLOCK] = blocks[i]
    return recon[BLOCK:-BLOCK, BLOCK:-BLOCK]


def _blocks_at(plane: np.ndarray, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    rows = (BLOCK * by)[:, None] + np.arange(BLOCK)
    cols = (BLOCK * bx)[:, None] + np.arange(BLOCK)
    return plane[rows[:, :, None], cols[:, None, :]]


def _add_residual(prediction: np.ndarray, residual: np.ndarray) -> np.ndarray:
    return np.clip(prediction.astype(np.int16) + residual.astype(np.int16) - 128, 0, 255).astype(np.uint8)


def _encode_predicted_plane(
    plane: np.ndarray, qtable: list[int], predictor: BlockPredictor, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Closed loop: returns (residual plane to code, reconstruction the decoder will produce)."""
    residual = np.empty_like(plane)

    def code_front(by: np.ndarray, bx: np.ndarray, prediction: np.ndarray) -> np.ndarray:
        target = _blocks_at(plane, by, bx).astype(np.int16)
        r = np.clip(target - prediction.astype(np.int16) + 128, 0, 255).astype(np.uint8)
        for i in range(len(by)):
            residual[BLOCK * by[i] : BLOCK * (by[i] + 1), BLOCK * bx[i] : BLOCK * (bx[i] + 1)] = r[i]
        return _add_residual(prediction, jpeg.roundtrip_blocks(r, qtable))

    recon = _predict_loop(plane.shape, predictor, index, code_front)
    return residual, recon


def _decode_predicted_plane(residual: np.ndarray, predictor: BlockPredictor, index: int) -> np.ndarray:
    def code_front(by: np.ndarray, bx: np.ndarray, prediction: np.ndarray) -> np.ndarray:
        return _add_residual(prediction, _blocks_at(residual, by, bx))

    return _predict_loop(residual.shape, predictor, index, code_front)


def _encode_alpha(alpha: np.ndarray) -> bytes:
    """Lossless: each row as differences to its left neighbour (mod 256), then zlib."""
    filtered = np.diff(alpha, axis=1, prepend=np.uint8(0)).astype(np.uint8)
    return b"\x00" + zlib.compress(filtered.tobytes(), 9)


def _decode_alpha(payload: bytes | None, height: int, width: int, truncated: bool) -> np.ndarray:
    """Inverse of :func:`_encode_alpha`; a truncated file gets opaque pixels where alpha is missing."""
    size = height * width
    raw = b""
    if payload is None and not truncated:
        raise BcnnFormatError("RGBA file has no alpha plane")
    if payload:
        if payload[:1] != b"\x00":
            raise BcnnFormatError(f"alpha method {payload[:1]!r} is unknown (expected 0: zlib of row differences)")
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(payload[1:], size)
        except zlib.error as exc:
            if not truncated:
                raise BcnnFormatError(f"alpha plane is corrupt: {exc}") from None
        if not truncated and (len(raw) != size or inflater.unconsumed_tail or not inflater.eof):
            raise BcnnFormatError(f"alpha plane holds the wrong number of bytes for {width}x{height}")
    filtered = np.zeros(size, dtype=np.uint8)
    filtered[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    alpha = np.cumsum(filtered.reshape(height, width), axis=1, dtype=np.uint8)
    alpha.reshape(-1)[len(raw) :] = 255  # truncated: what never arrived is opaque
    return alpha


def encode(
    pixels: np.ndarray,
    mode: str,
    quality: int = 75,
    *,
    subsampling: int = 2,
    tables: str = "jpeg",
    predictor: BlockPredictor | None = None,
    deblock_model: str | None = None,
    reconstruct: bool = False,
) -> EncodedImage:
    """Code ``pixels`` (uint8, ``(H, W)`` for L, ``(H, W, 3|4)`` for RGB/RGBA).

    ``tables`` picks the quantisation tables: ``"jpeg"`` (libjpeg's, the same
    pixels as a JPEG of this quality) or ``"mse"`` (tuned for PSNR).
    ``predictor=None`` (or a :class:`NullPredictor`) codes without prediction.
    ``deblock_model`` names the model a decoder should run after decoding; it
    is only recorded here. ``reconstruct=True`` also returns the exact pixels
    a decoder will produce before deblocking (one extra decode when the file
    is not predicted).
    """
    _check_pixels(pixels, mode)
    if isinstance(predictor, NullPredictor):
        predictor = None
    models = tuple(predictor.model_ids) if predictor is not None else ()
    if deblock_model is not None:
        models += (deblock_model,)
    header = Header(
        width=pixels.shape[1],
        height=pixels.shape[0],
        mode=mode,
        quality=quality,
        subsampling=subsampling if mode != "L" else 2,
        tables=tables,
        predicted=predictor is not None,
        deblock=deblock_model is not None,
        models=models,
    )
    container = Container(header=header)
    recon_planes = []
    for index, plane in enumerate(to_planes(pixels, header)):
        qtable = _qtable(header, index)
        if predictor is None:
            container.planes.append(jpeg.encode_plane(plane, qtable))
            if reconstruct:
                recon_planes.append(jpeg.decode_plane(container.planes[-1], plane.shape[1], plane.shape[0], qtable))
        else:
            residual, recon = _encode_predicted_plane(plane, qtable, predictor, index)
            container.planes.append(jpeg.encode_plane(residual, qtable))
            recon_planes.append(recon)
    if mode == "RGBA":
        container.alpha = _encode_alpha(np.ascontiguousarray(pixels[..., 3]))
    reconstruction = None
    if reconstruct:
        reconstruction = from_planes(recon_planes, header)
        if mode == "RGBA":
            reconstruction = np.dstack([reconstruction, pixels[..., 3]])
    return EncodedImage(container, reconstruction)


def _decode_residual(container: Container, index: int, height: int, width: int) -> np.ndarray:
    """Plane ``index`` as coded; in a truncated file, what never arrived is mid-grey (a zero residual)."""
    qtable = _qtable(container.header, index)
    if index < len(container.planes):
        try:
            return jpeg.decode_plane(container.planes[index], width, height, qtable)
        except jpeg.JpegPlaneError:
            if not (container.truncated and index == len(container.planes) - 1):
                raise
    elif not container.truncated:
        raise BcnnFormatError(f"plane {index} is missing")
    return np.full((height, width), 128, dtype=np.uint8)


def decode(container: Container, predictor: BlockPredictor | None = None) -> np.ndarray:
    """Pixels of ``container`` before any deblocking, shaped as :func:`encode` takes them.

    A predicted file needs the ``predictor`` it was coded with; the caller
    (the runtime's model registry) resolves it from ``header.models``.
    """
    header = container.header
    if header.width > MAX_DIMENSION or header.height > MAX_DIMENSION:
        raise BcnnFormatError(f"image size {header.width}x{header.height} exceeds {MAX_DIMENSION} per side")
    if header.predicted and predictor is None:
        raise ValueError("this file is predicted: decode() needs the predictor named in its header")
    planes = []
    for index, (h, w) in enumerate(plane_shapes(header)):
        residual = _decode_residual(container, index, h, w)
        planes.append(residual if not header.predicted else _decode_predicted_plane(residual, predictor, index))
    pixels = from_planes(planes, header)
    if header.mode == "RGBA":
        alpha = _decode_alpha(container.alpha, header.height, header.width, container.truncated)
        pixels = np.dstack([pixels, alpha])
    return np.ascontiguousarray(pixels)
