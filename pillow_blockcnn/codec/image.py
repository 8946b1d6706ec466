"""Pixels to a :class:`~pillow_blockcnn.format.container.Container` and back: numpy in, numpy out.

The pipeline, for an RGB image: pad to the block grid by edge replication,
convert to YCbCr and subsample the chroma (libjpeg's arithmetic, :mod:`.planes`),
then code each plane on its own. Within a plane the 8x8 blocks are visited
front by front (:mod:`.closed_loop`); each block is predicted from already
reconstructed neighbours, and only the residual goes to libjpeg (:mod:`.jpeg`).
With no prediction (flag off) a plane is coded in one libjpeg call and the file
is, pixel for pixel, a JPEG of the same quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..format.container import BcnnFormatError, Container, Header
from ..format.limits import DEFAULT_SUBSAMPLING, DEFAULT_TABLES, check_size
from . import jpeg
from .alpha import decode_alpha, encode_alpha
from .blocks import BlockPredictor, NullPredictor
from .closed_loop import decode_predicted_plane, encode_predicted_plane
from .planes import check_pixels, from_planes, plane_shapes, to_planes

__all__ = ["EncodedImage", "decode", "encode"]


@dataclass
class EncodedImage:
    """The coded file contents and, when asked for, what a decoder will reconstruct."""

    container: Container
    reconstruction: np.ndarray | None = None


def _qtable(header: Header, index: int) -> list[int]:
    return jpeg.quant_table(header.quality, chroma=index > 0, tables=header.tables)


def encode(
    pixels: np.ndarray,
    mode: str,
    quality: int = 75,
    *,
    subsampling: int = DEFAULT_SUBSAMPLING,
    tables: str = DEFAULT_TABLES,
    predictor: BlockPredictor | None = None,
    deblock_model: str | None = None,
    reconstruct: bool = False,
) -> EncodedImage:
    """Code ``pixels`` (uint8, ``(H, W)`` for L, ``(H, W, 3|4)`` for RGB/RGBA).

    ``tables`` picks the quantisation tables: ``"mse"`` (tuned for PSNR) or
    ``"jpeg"`` (libjpeg's, the same pixels as a JPEG of this quality).
    ``predictor=None`` (or a :class:`NullPredictor`) codes without prediction.
    ``deblock_model`` names the model a decoder should run after decoding; it
    is only recorded here. ``reconstruct=True`` also returns the exact pixels
    a decoder will produce before deblocking (one extra decode when the file
    is not predicted).
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
            residual, recon = encode_predicted_plane(plane, qtable, predictor, index)
            container.planes.append(jpeg.encode_plane(residual, qtable))
            recon_planes.append(recon)
    if mode == "RGBA":
        container.alpha = encode_alpha(np.ascontiguousarray(pixels[..., 3]))
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
        msg = f"plane {index} is missing"
        raise BcnnFormatError(msg)
    return np.full((height, width), 128, dtype=np.uint8)


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
        residual = _decode_residual(container, index, h, w)
        if header.predicted and predictor is not None:
            residual = decode_predicted_plane(residual, predictor, index)
        planes.append(residual)
    pixels = from_planes(planes, header)
    if header.mode == "RGBA":
        alpha = decode_alpha(container.alpha, header.height, header.width, container.truncated)
        pixels = np.dstack([pixels, alpha])
    return np.ascontiguousarray(pixels)
