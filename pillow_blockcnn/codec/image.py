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

from ..format.container import BcnnFormatError, Container, Header, PlanePayload
from ..format.limits import DEFAULT_CODING, DEFAULT_SUBSAMPLING, DEFAULT_TABLES, DEFAULT_TILE_BLOCKS, check_size
from . import jpeg, quantise
from .alpha import decode_alpha, encode_alpha
from .block_modes import BlockModeError, decode_modes, encode_modes
from .blocks import BLOCK, BlockPredictor, NullPredictor
from .closed_loop import CodedPlane, code_plain, code_predicted, decode_predicted_planes
from .distortion import sse
from .guide import guide_plane
from .planes import SUBSAMPLING_FACTORS, check_pixels, from_planes, plane_shapes, to_planes
from .quantise import activity_weights, lagrangian

__all__ = ["EncodedImage", "decode", "encode"]


@dataclass
class EncodedImage:
    """The coded file contents and, when asked for, what a decoder will reconstruct."""

    container: Container
    reconstruction: np.ndarray | None = None


def _qtable(header: Header, index: int) -> list[int]:
    return jpeg.quant_table(header.quality, chroma=index > 0, tables=header.tables)


#: The finer DC step a plane may use instead of its table's (docs/FORMAT.md §4.1): 8 keeps a flat area's
#: mean within half a level, where a coarse step (80 at quality 10) would shift it by up to 5 levels.
FINE_DC_STEP = 8
#: Planes with at least this fraction of exactly flat 8x8 blocks (backgrounds, fills: screenshots, charts)
#: use the fine DC step when their table's is coarser: a flat area is where a shifted level shows. Photos
#: have almost no exactly flat blocks and keep their table's step.
FLAT_FRACTION = 0.05
#: Factor on ``lambda`` for the plane- and file-level choices between predicted and plain coding.
CHOICE_LAMBDA = 2.0


def _payload(coded: CodedPlane, qtable: list[int], dc_step: int, coding: str) -> bytes:
    residual = jpeg.write_levels(coded.levels, qtable, coding, jpeg.frame_size(*coded.recon.shape))
    return PlanePayload(dc_step, encode_modes(coded.modes), residual).to_bytes()


def _flat_fraction(plane: np.ndarray) -> float:
    h, w = plane.shape
    blocks = plane.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK)
    return float((blocks.min(axis=(1, 3)) == blocks.max(axis=(1, 3))).mean())


@dataclass
class _Choice:
    """One way of coding a plane: its PLAN payload, reconstruction, whether it predicts, and its error."""

    payload: bytes
    recon: np.ndarray
    predicted: bool
    sse: int


def _rgb_weights(header: Header) -> list[float]:
    """How much one unit of squared error in each plane adds to the decoded image's squared error (RGB, or
    gray): 3 for Y (all three channels move), 0.344^2 + 1.772^2 for Cb and 1.402^2 + 0.714^2 for Cr (the
    ycc_rgb_convert coefficients, FORMAT.md §3), times the pixels each subsampled chroma sample covers."""
    if header.mode == "L":
        return [1.0]
    fy, fx = SUBSAMPLING_FACTORS[header.subsampling]
    return [3.0, 3.26 * fy * fx, 2.48 * fy * fx]


def _code_plane(
    plane: np.ndarray,
    qtable: list[int],
    header: Header,
    predictor: BlockPredictor | None,
    index: int,
    rdo: bool,
    force: bool,
    guide: np.ndarray | None = None,
) -> tuple[_Choice | None, _Choice | None]:
    """(plain choice, predicted choice or ``None``) for one plane, with the table's DC step or, where flat
    areas make it worth it, the fine one. ``guide``: a chroma plane's luma guide (luma-guided predictors)."""
    lam = lagrangian(np.asarray(qtable, dtype=np.float64)) * activity_weights(plane, quantise.AQ_STRENGTH)
    dc_step = FINE_DC_STEP if qtable[0] > FINE_DC_STEP and _flat_fraction(plane) >= FLAT_FRACTION else 0
    used = [dc_step, *qtable[1:]] if dc_step else list(qtable)
    table = np.asarray(used, dtype=np.int64).reshape(BLOCK, BLOCK)

    def choice(coded: CodedPlane) -> _Choice:
        return _Choice(_payload(coded, used, dc_step, header.coding), coded.recon, bool(coded.modes.any()), coded.sse)

    plain_coded = code_plain(plane, table, rdo=rdo, lam=lam)
    plain = None if force and predictor is not None else choice(plain_coded)
    predicted = None
    if predictor is not None:
        coded = code_predicted(
            plane, table, predictor, index, header.tile, rdo=rdo, force=force, lam=lam, plain=plain_coded, guide=guide
        )
        if coded.modes.any():
            predicted = choice(coded)
    return plain, predicted


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

    ``tables`` picks the quantisation tables: ``"balanced"`` (tuned for PSNR and MS-SSIM of the restored decode,
    the default here; a save that names none chooses by content, ``pipeline.default_tables``), ``"mse"`` (tuned
    for PSNR), ``"ssim"`` (tuned for MS-SSIM) or ``"jpeg"`` (libjpeg's Annex K tables).
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
    # Each plane takes the cheaper of its choices, and the file predicts only if that beats all-plain coding
    # with the prediction model's id in the header counted too. Costs are squared error in the decoded image
    # (each plane's error weighted by what it does to RGB) plus CHOICE_LAMBDA x the luma lambda per bit: a
    # plane is predicted only when that clearly pays, because the quantiser's lambda (a high-rate estimate)
    # undervalues bits on content such as noise, where a small error gain is not worth its bytes.
    weights = _rgb_weights(header)
    lam = CHOICE_LAMBDA * weights[0] * lagrangian(np.asarray(_qtable(header, 0), dtype=np.float64))

    def cost(c: _Choice, index: int) -> float:
        return weights[index] * c.sse + lam * 8 * len(c.payload)

    def cheaper(pair: tuple[_Choice | None, _Choice | None], index: int) -> _Choice:
        return min((c for c in pair if c is not None), key=lambda c: cost(c, index))

    choices: list[tuple[_Choice | None, _Choice | None]] = []
    guide = None
    for index, plane in enumerate(to_planes(pixels, header)):
        choices.append(
            _code_plane(plane, _qtable(header, index), header, predictor, index, rdo, force_prediction, guide)
        )
        if index == 0 and mode != "L" and getattr(predictor, "guided", False):
            # Y's choice is final here (a plane's choice depends on that plane alone; the file-level fallback
            # below makes every plane plain, chroma included), so chroma is guided by what the decoder rebuilds.
            guide = _guide(cheaper(choices[0], 0).recon, header)
    mixed = [cheaper(pair, i) for i, pair in enumerate(choices)]
    if predictor is not None and not force_prediction and any(c.predicted for c in mixed):
        # The final word is the decoded image's own error (clamping in the colour conversion and chroma
        # upsampling make plane errors only an estimate of it).
        id_bits = 8 * sum(1 + len(m) for m in predictor.model_ids)
        plain = [pair[0] for pair in choices]

        def image_cost(planes: list[_Choice]) -> float:
            decoded = from_planes([c.recon for c in planes], header)
            error = sse(decoded, pixels if mode == "L" else pixels[..., :3])
            return float(error) + lam * 8 * sum(len(c.payload) for c in planes)

        if image_cost(plain) <= image_cost(mixed) + lam * id_bits:  # type: ignore[arg-type]
            mixed = plain  # type: ignore[assignment]
    if not any(c.predicted for c in mixed):  # a plain file needs no prediction model
        container.header = dataclasses.replace(
            header, predicted=False, tile=0, models=(deblock_model,) if deblock_model is not None else ()
        )
    container.planes = [c.payload for c in mixed]
    recon_planes = [c.recon for c in mixed]
    if mode == "RGBA":
        container.alpha = encode_alpha(np.ascontiguousarray(pixels[..., 3]))
    reconstruction = None
    if reconstruct:
        reconstruction = from_planes(recon_planes, header)
        if mode == "RGBA":
            reconstruction = np.dstack([reconstruction, pixels[..., 3]])
    return EncodedImage(container, reconstruction)


def _guide(luma: np.ndarray, header: Header) -> np.ndarray:
    """The chroma planes' luma guide (docs/FORMAT.md §5.3) from the rebuilt Y plane."""
    return guide_plane(luma, plane_shapes(header)[1], SUBSAMPLING_FACTORS[header.subsampling])


def _decode_residual(container: Container, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(residual plane as libjpeg decodes it, block modes) of plane ``index``; in a truncated file, what never
    arrived is mid-grey and plain."""
    header = container.header
    qtable = _qtable(header, index)
    blocks = (height // BLOCK, width // BLOCK)
    if index < len(container.planes):
        try:
            parts = PlanePayload.from_bytes(container.planes[index])
            if parts.dc_step:
                qtable = [parts.dc_step, *qtable[1:]]
            residual = parts.residual
            modes = decode_modes(parts.modes, *blocks)
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


def decode(container: Container, predictor: BlockPredictor | None = None, *, luma_only: bool = False) -> np.ndarray:
    """Pixels of ``container`` before any deblocking, shaped as :func:`encode` takes them.

    A predicted file needs the ``predictor`` it was coded with; the caller
    (the pipeline, through the runtime's model registry) resolves it from ``header.models``.
    ``luma_only=True`` decodes the Y (or gray) plane alone and returns it ``(H, W)``: a grayscale draft
    costs a third of a colour decode, as JPEG's ``draft("L", ...)`` does.
    """
    header = container.header
    check_size(header.width, header.height, BcnnFormatError)
    if header.predicted and predictor is None:
        msg = "this file is predicted: decode() needs the predictor named in its header"
        raise ValueError(msg)
    coded = [
        _decode_residual(container, index, h, w)
        for index, (h, w) in enumerate(plane_shapes(header)[:1] if luma_only else plane_shapes(header))
    ]
    planes = [residual for residual, _ in coded]
    predicted = [index for index, (_, modes) in enumerate(coded) if modes.any()]
    if predicted and predictor is not None:
        # All predicted planes advance together, one call per front; a luma-guided predictor's chroma planes
        # wait for Y, whose rebuilt plane is their guide.
        passes = [predicted]
        # Tiles shared among threads where the predictor serves concurrent calls (each on one core: two
        # half-size products at once keep two cores busier than one on two; a few percent on large images,
        # export/NOTES.md). Not the encoder: its per-front numpy work holds the GIL, and threads made it slower.
        workers = getattr(predictor, "concurrency", 1)
        worker = predictor.concurrent() if workers > 1 else predictor
        guided = getattr(predictor, "guided", False) and len(planes) > 1
        if guided:
            passes = [[i for i in predicted if i == 0], [i for i in predicted if i > 0]]
        for group in passes:
            if not group:
                continue
            guides = None
            if guided and group[0] > 0:
                guide = _guide(planes[0], header)
                guides = [guide] * len(group)
            rebuilt = decode_predicted_planes(
                [planes[i] for i in group], [coded[i][1] for i in group], worker, group, header.tile, guides, workers
            )
            for i, plane in zip(group, rebuilt):
                planes[i] = plane
    if luma_only:
        return np.ascontiguousarray(planes[0][: header.height, : header.width])
    pixels = from_planes(planes, header)
    if header.mode == "RGBA":
        alpha = decode_alpha(container.alpha, header.height, header.width, container.truncated)
        pixels = np.dstack([pixels, alpha])
    return np.ascontiguousarray(pixels)
