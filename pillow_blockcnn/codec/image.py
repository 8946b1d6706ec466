"""Pixels to a :class:`~pillow_blockcnn.format.container.Container` and back: numpy in, numpy out.

The pipeline, for an RGB image: pad to the block grid by edge replication,
convert to YCbCr and subsample the chroma (libjpeg's arithmetic, :mod:`.planes`),
then code each plane on its own. Within a plane the 8x8 blocks are visited
front by front (:mod:`.closed_loop`); each block is predicted from already
reconstructed neighbours or coded plain, whichever costs less, and the
quantised residual levels go to libjpeg's entropy coder (:mod:`.jpeg`).

Every plane of a predicted file is coded both ways, predicted and plain, and
keeps the one with the lower rate-distortion cost measured on the real coded
bytes: a plane that prediction does not help is stored plain (its block-mode
map is one byte), so no image is coded worse than with ``predict=False``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..format.container import BcnnFormatError, Container, Header, pack_plane, unpack_plane
from ..format.limits import DEFAULT_CODING, DEFAULT_SUBSAMPLING, DEFAULT_TABLES, DEFAULT_TILE_BLOCKS, check_size
from . import jpeg
from .alpha import decode_alpha, encode_alpha
from .block_modes import BlockModeError, decode_modes, encode_modes
from .blocks import BLOCK, BlockPredictor, NullPredictor
from .closed_loop import CodedPlane, code_plain, code_predicted, decode_predicted
from .planes import check_pixels, from_planes, plane_shapes, to_planes
from .quantise import lagrangian

__all__ = ["EncodedImage", "decode", "encode"]


@dataclass
class EncodedImage:
    """The coded file contents and, when asked for, what a decoder will reconstruct."""

    container: Container
    reconstruction: np.ndarray | None = None


def _qtable(header: Header, index: int) -> list[int]:
    return jpeg.quant_table(header.quality, chroma=index > 0, tables=header.tables)


def _payload(coded: CodedPlane, qtable: list[int], coding: str) -> bytes:
    residual = jpeg.write_levels(coded.levels, qtable, coding, jpeg.frame_size(*coded.recon.shape))
    return pack_plane(encode_modes(coded.modes), residual)


def _code_plane(
    plane: np.ndarray,
    qtable: list[int],
    header: Header,
    predictor: BlockPredictor | None,
    index: int,
    rdo: bool,
    force: bool,
) -> tuple[bytes, np.ndarray, bool]:
    """(PLAN payload, reconstruction, predicted?) of one plane: predicted when that costs less, else plain."""
    table = np.asarray(qtable, dtype=np.int64).reshape(BLOCK, BLOCK)
    plain = code_plain(plane, table, rdo=rdo)
    plain_payload = _payload(plain, qtable, header.coding)
    if predictor is None:
        return plain_payload, plain.recon, False
    predicted = code_predicted(plane, table, predictor, index, header.tile, rdo=rdo, force=force)
    if force:
        return _payload(predicted, qtable, header.coding), predicted.recon, True
    if not predicted.modes.any():
        return plain_payload, plain.recon, False
    payload = _payload(predicted, qtable, header.coding)
    lam = lagrangian(table)
    if predicted.sse + lam * 8 * len(payload) < plain.sse + lam * 8 * len(plain_payload):
        return payload, predicted.recon, True
    return plain_payload, plain.recon, False


def encode(
    pixels: np.ndarray,
    mode: str,
    quality: int = 75,
    *,
    subsampling: int = DEFAULT_SUBSAMPLING,
    tables: str = DEFAULT_TABLES,
    coding: str = DEFAULT_CODING,
    tile: int = DEFAULT_TILE_BLOCKS,
    predictor: BlockPredictor | None = None,
    deblock_model: str | None = None,
    reconstruct: bool = False,
    rdo: bool = True,
    force_prediction: bool = False,
) -> EncodedImage:
    """Code ``pixels`` (uint8, ``(H, W)`` for L, ``(H, W, 3|4)`` for RGB/RGBA).

    ``tables`` picks the quantisation tables: ``"mse"`` (tuned for PSNR) or
    ``"jpeg"`` (libjpeg's, the same pixels as a JPEG of this quality).
    ``predictor=None`` (or a :class:`NullPredictor`) codes without prediction.
    ``coding`` is the entropy coder (``"arithmetic"`` or ``"huffman"``), ``tile`` the prediction tile side
    in blocks (0: untiled). ``deblock_model`` names the model a decoder should run after decoding; it is
    only recorded here. ``reconstruct=True`` also returns the exact pixels a decoder will produce before
    deblocking (the encoder knows them without decoding). ``rdo=False`` quantises by plain rounding, as
    libjpeg does (faster, larger files). ``force_prediction=True`` predicts every block even where plain
    coding would cost less (for tests and ablations: it is how version 0.1 coded).
    """
    check_pixels(pixels, mode)
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
        subsampling=subsampling if mode != "L" else DEFAULT_SUBSAMPLING,
        tables=tables,
        coding=coding,
        tile=tile if predictor is not None else 0,
        predicted=predictor is not None,
        deblock=deblock_model is not None,
        models=models,
    )
    container = Container(header=header)
    recon_planes, used = [], []
    for index, plane in enumerate(to_planes(pixels, header)):
        payload, recon, predicted = _code_plane(
            plane, _qtable(header, index), header, predictor, index, rdo, force_prediction
        )
        container.planes.append(payload)
        recon_planes.append(recon)
        used.append(predicted)
    if predictor is not None and not any(used):  # prediction lost everywhere: a plain file needs no model
        container.header = dataclasses.replace(
            header, predicted=False, tile=0, models=(deblock_model,) if deblock_model is not None else ()
        )
    if mode == "RGBA":
        container.alpha = encode_alpha(np.ascontiguousarray(pixels[..., 3]))
    reconstruction = None
    if reconstruct:
        reconstruction = from_planes(recon_planes, header)
        if mode == "RGBA":
            reconstruction = np.dstack([reconstruction, pixels[..., 3]])
    return EncodedImage(container, reconstruction)


def _decode_residual(container: Container, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(residual plane as libjpeg decodes it, block modes) of plane ``index``; in a truncated file, what never
    arrived is mid-grey and plain."""
    header = container.header
    qtable = _qtable(header, index)
    blocks = (height // BLOCK, width // BLOCK)
    if index < len(container.planes):
        try:
            modes_data, residual = unpack_plane(container.planes[index])
            modes = decode_modes(modes_data, *blocks)
            if modes.any() and not header.predicted:
                msg = f"plane {index} has predicted blocks but the header's predicted flag is clear"
                raise BcnnFormatError(msg)
            return jpeg.decode_plane(residual, width, height, qtable, header.coding), modes
        except (jpeg.JpegPlaneError, BlockModeError, BcnnFormatError) as exc:
            if not (container.truncated and index == len(container.planes) - 1):
                if isinstance(exc, BlockModeError):
                    msg = f"plane {index}: {exc}"
                    raise BcnnFormatError(msg) from None
                raise
    elif not container.truncated:
        msg = f"plane {index} is missing"
        raise BcnnFormatError(msg)
    return np.full((height, width), 128, dtype=np.uint8), np.zeros(blocks, dtype=bool)


def decode(container: Container, predictor: BlockPredictor | None = None) -> np.ndarray:
    """Pixels of ``container`` before any deblocking, shaped as :func:`encode` takes them.

    A predicted file needs the ``predictor`` it was coded with; the caller
    (the pipeline, through the runtime's model registry) resolves it from ``header.models``.
    """
    header = container.header
    check_size(header.width, header.height, BcnnFormatError)
    if header.predicted and predictor is None:
        msg = "this file is predicted: decode() needs the predictor named in its header"
        raise ValueError(msg)
    planes = []
    for index, (h, w) in enumerate(plane_shapes(header)):
        residual, modes = _decode_residual(container, index, h, w)
        if modes.any() and predictor is not None:
            residual = decode_predicted(residual, modes, predictor, index, header.tile)
        planes.append(residual)
    pixels = from_planes(planes, header)
    if header.mode == "RGBA":
        alpha = decode_alpha(container.alpha, header.height, header.width, container.truncated)
        pixels = np.dstack([pixels, alpha])
    return np.ascontiguousarray(pixels)
