"""Whole-image encode and decode: the codec plus the models a file names.

The codec (:mod:`.codec`) takes a predictor object and knows nothing of model
files; the runtime (:mod:`.runtime`) knows model files and nothing of images'
coding. This module joins them: it picks the models for new files and resolves
the ids stored in a file back to models. A prediction model is part of the
exact decode, so a file whose predictor this installation lacks is refused by
name; a deblocking model is a recommendation, so a missing one is replaced by
the installation's current deblocker, and :class:`Decoded` says which ran.

Header ``models`` order: the prediction models first, then the deblocking
model when the deblock flag is set (``docs/FORMAT.md`` §2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import codec, runtime
from .codec.blocks import BlockPredictor
from .format.container import Container, Header
from .format.limits import (
    DEFAULT_CODING,
    DEFAULT_SUBSAMPLING,
    DEFAULT_TABLES,
    DEFAULT_TILE_BLOCKS,
    SCREEN_CONTENT_TABLES,
)
from .metrics import sse

__all__ = ["Decoded", "bcnn_restorer", "decode_pixels", "default_tables", "encode_pixels", "resolve_models"]


def _choose(task: str, wanted: bool | str | None, option: str, tables: str) -> runtime.ModelInfo | None:
    if isinstance(wanted, str) and task == "deblock":  # a named model: the speed/quality trade is the user's
        model = bcnn_restorer(wanted, option)
        if tables not in model.tables:
            msg = f"{option}={wanted!r} was not made for {tables!r} tables (it serves {list(model.tables)})"
            raise ValueError(msg)
        return model
    if isinstance(wanted, str) and task == "predict":  # a named predictor: e.g. the unguided one, to compare
        known = [m.id for m in runtime.models("predict")]
        if wanted not in known:
            msg = (
                f"{option}={wanted!r} is not a prediction model here: {option} takes True, False or None "
                f"(automatic), or one of {known}"
            )
            raise ValueError(_with_dropped(msg, wanted))
        model = runtime.require_task(wanted, "predict")
        if tables not in model.tables:
            msg = f"{option}={wanted!r} was not made for {tables!r} tables (it serves {list(model.tables)})"
            raise ValueError(msg)
        return model
    model = runtime.default_model(task, tables)
    if wanted is None:
        return model
    if not isinstance(wanted, bool):
        if task == "deblock":
            kind, ids = "deblocking", _restorers()
        else:
            kind, ids = "prediction", [m.id for m in runtime.models("predict")]
        names = f", or a {kind} model id ({', '.join(ids)})"
        msg = f"{option} must be True, False or None (automatic){names}, got {wanted!r}"
        raise ValueError(msg)
    if wanted and model is None:
        msg = (
            f"{option}=True needs a {task} model for {tables!r} quantisation tables, and this installation of "
            f"pillow-blockcnn ships none; save with {option}=False"
        )
        raise ValueError(msg)
    return model if wanted else None


def _with_dropped(msg: str, model_id: str) -> str:
    """``msg`` about a model id the user named, with why it is gone when an earlier pre-release shipped it."""
    dropped = runtime.dropped_before_release(model_id)
    return msg if dropped is None else f"{msg}; {dropped}"


def _restorers() -> list[str]:
    return [m.id for m in runtime.models("deblock") if "bcnn" in m.restores]


def bcnn_restorer(model_id: str, option: str = "deblock") -> runtime.ModelInfo:
    """The installed deblocking model ``model_id`` that restores .bcnn decodes, for a ``deblock=<model id>``
    option of the encoder or the decoder; a ValueError naming the choices otherwise."""
    if model_id not in _restorers():
        msg = f"{option}={model_id!r} is not a .bcnn restoration model here: use one of {_restorers()}"
        raise ValueError(_with_dropped(msg, model_id))
    return runtime.require_task(model_id, "deblock")


def _predictor(models: tuple[str, ...], quality: int) -> BlockPredictor:
    if len(models) != 1:
        msg = f"a predicted file names one prediction model, this one names {list(models)}"
        raise runtime.ModelError(msg)
    return runtime.predictor_for(models[0], quality)  # raises ModelError naming a model this installation lacks


def resolve_models(header: Header) -> tuple[tuple[str, ...], str | None]:
    """Split ``header.models`` into (prediction model ids, recommended deblocking model id)."""
    if header.deblock:
        if not header.models:
            msg = "file asks for deblocking but names no deblocking model"
            raise runtime.ModelError(msg)
        return header.models[:-1], header.models[-1]
    return header.models, None


def encode_pixels(
    pixels: np.ndarray,
    mode: str,
    quality: int,
    *,
    subsampling: int = DEFAULT_SUBSAMPLING,
    tables: str | None = None,
    coding: str = DEFAULT_CODING,
    tile: int = DEFAULT_TILE_BLOCKS,
    predict: bool | str | None = None,
    deblock: bool | str | None = None,
    reconstruct: bool = False,
) -> codec.EncodedImage:
    """Encode with the installed models; ``None`` means "use one if this installation has it", and for
    deblocking also "if it brings this image closer to the original": the encoder, which alone has the
    original, runs the deblocker once on its reconstruction and keeps the recommendation only when the error
    drops. (The deblocker is trained on 4:2:0 JPEGs and can make 4:4:4 files at high quality worse.)
    ``deblock`` may also name the deblocking model to recommend (another point of the speed/quality trade
    than the default's), with the same "if it brings the image closer" decision; ``predict`` may name the
    prediction model (every installed one decodes; the default is the newest).
    ``reconstruct``: also return the decoded pixels (before deblocking) in ``reconstruction``, which the
    encoder has anyway: a restoration model's training data is exactly this.
    ``tables=None`` chooses the table set by content (:func:`default_tables`)."""
    if tables is None:
        tables = default_tables(pixels)
    predict_model = _choose("predict", predict, "predict", tables)
    deblock_model = _choose("deblock", deblock, "deblock", tables)
    predictor = _predictor((predict_model.id,), quality) if predict_model is not None else None
    decide = (deblock is None or isinstance(deblock, str)) and deblock_model is not None
    encoded = codec.encode(
        pixels,
        mode,
        quality,
        subsampling=subsampling,
        tables=tables,
        coding=coding,
        tile=tile,
        predictor=predictor,
        deblock_model=deblock_model.id if deblock_model is not None else None,
        reconstruct=decide or reconstruct,
    )
    if decide and not _deblocking_pays(pixels, encoded.reconstruction, quality, tables, deblock_model.id):
        header = encoded.container.header
        encoded.container.header = dataclasses.replace(header, deblock=False, models=header.models[:-1])
    return encoded


def default_tables(pixels: np.ndarray) -> str:
    """The table set of a save that names none: the PSNR-tuned one for text, graphics and flat colours, where
    the default's steeper tables ring and drift, else the default (``format.limits``)."""
    return SCREEN_CONTENT_TABLES if codec.is_screen_content(pixels) else DEFAULT_TABLES


#: Above this many pixels the encoder first judges deblocking on samples: restoring the whole reconstruction
#: once was two thirds of a 12-megapixel save's time (23 of 34 s, 2026-12-07, AMD EPYC AVX2).
SAMPLE_ABOVE = 2_000_000
#: One sample window of SAMPLE_SIDE pixels (with the restorer's halo of context) at the centre of every
#: SAMPLE_CELL x SAMPLE_CELL cell of the image: about 6% of a large image, spread over all of it.
SAMPLE_CELL = 1024
SAMPLE_SIDE = 256
#: The samples decide alone only when restoring them lowers their squared error by at least this fraction;
#: an image nearer the break-even (a high quality, 4:4:4) gets the whole-image check.
SAMPLE_MARGIN = 0.02
#: Window corners are multiples of this, so a window keeps the image's 8x8 luma and 16x16 chroma grids.
_GRID = 16


def sample_windows(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """The windows ``(y0, x0, y1, x1)`` the encoder restores to judge deblocking on a large image: one at the
    centre of every :data:`SAMPLE_CELL` cell, at most :data:`SAMPLE_SIDE` a side, on the block grid."""
    windows = []
    for cy in range(0, height, SAMPLE_CELL):
        for cx in range(0, width, SAMPLE_CELL):
            ch, cw = min(SAMPLE_CELL, height - cy), min(SAMPLE_CELL, width - cx)
            sh, sw = min(SAMPLE_SIDE, ch), min(SAMPLE_SIDE, cw)
            y0, x0 = cy + (ch - sh) // 2 // _GRID * _GRID, cx + (cw - sw) // 2 // _GRID * _GRID
            windows.append((y0, x0, y0 + sh, x0 + sw))
    return windows


def sampled_sse(original: np.ndarray, decoded: np.ndarray, quality: int, model_id: str) -> tuple[int, int, int]:
    """Squared error of ``decoded`` and of its restoration over the sample windows, and their area. Each window
    is restored with :data:`runtime.HALO` pixels of context around it (cut at the image border), the context
    a decoder's tile borrows."""
    before = after = area = 0
    h, w = decoded.shape[:2]
    for y0, x0, y1, x1 in sample_windows(h, w):
        ty0, tx0 = max(0, y0 - runtime.HALO), max(0, x0 - runtime.HALO)
        ty1, tx1 = min(h, y1 + runtime.HALO), min(w, x1 + runtime.HALO)
        restored = runtime.deblock_array(decoded[ty0:ty1, tx0:tx1], quality, model_id)
        before += sse(decoded[y0:y1, x0:x1], original[y0:y1, x0:x1])
        after += sse(restored[y0 - ty0 : y1 - ty0, x0 - tx0 : x1 - tx0], original[y0:y1, x0:x1])
        area += (y1 - y0) * (x1 - x0)
    return before, after, area


def deblocking_cost(quality: int, tables: str, model_id: str) -> float:
    """What recommending ``model_id`` costs in squared error: its id's bytes in the header at the encoder's own
    exchange rate of squared error for bits (the luma table's lambda)."""
    return codec.lagrangian(codec.quant_table(quality, chroma=False, tables=tables)) * 8 * (1 + len(model_id))


def samples_decide(before: int, after: int, area: int, pixels: int, cost: float) -> bool:
    """Whether the sample windows alone show that deblocking pays: their error drops by at least
    :data:`SAMPLE_MARGIN`, and their gain, scaled from ``area`` to the image's ``pixels``, exceeds ``cost``."""
    return after <= (1 - SAMPLE_MARGIN) * before and (before - after) * pixels / area > cost


def restoration_gain(original: np.ndarray, decoded: np.ndarray, quality: int, model_id: str) -> int:
    """How much restoring the whole of ``decoded`` with ``model_id`` lowers its squared error to ``original``."""
    return sse(decoded, original) - sse(runtime.deblock_array(decoded, quality, model_id), original)


def _deblocking_pays(original: np.ndarray, decoded: np.ndarray, quality: int, tables: str, model_id: str) -> bool:
    """Whether deblocking ``decoded`` lowers its squared error to ``original`` by more than the model id costs
    (:func:`deblocking_cost`): on a tiny image the 7 bytes can matter more than the gain. Alpha, when there is
    one, is lossless and left unchanged by deblocking, so it adds nothing to either side.

    An image above :data:`SAMPLE_ABOVE` pixels is first judged on :func:`sample_windows`; when they show the
    gain clearly (:func:`samples_decide`), deblocking pays without restoring the rest. Otherwise, as for
    smaller images, the whole reconstruction is restored and measured, so an image near the break-even is
    never judged on samples alone."""
    cost = deblocking_cost(quality, tables, model_id)
    h, w = decoded.shape[:2]
    if h * w > SAMPLE_ABOVE and samples_decide(*sampled_sse(original, decoded, quality, model_id), h * w, cost):
        return True
    return restoration_gain(original, decoded, quality, model_id) > cost


@dataclass(frozen=True)
class Decoded:
    """Decoded pixels and the deblocking model that ran on them (None: not deblocked)."""

    pixels: np.ndarray
    deblocked_with: str | None = None


def decode_pixels(parsed: Container, *, deblock: bool | str = True, luma_only: bool = False) -> Decoded:
    """Decode ``parsed``; deblock when the file recommends it and ``deblock`` allows it, with the recommended
    model or, when this installation lacks it, with its current deblocker (:func:`runtime.deblocker_for`).
    ``deblock`` may instead name the restorer to run where the file recommends one: deblocking is a
    post-filter outside the exact decode (docs/FORMAT.md §7), so the decoder may trade its quality for speed.
    ``luma_only``: the Y plane alone, not deblocked (a grayscale draft)."""
    header = parsed.header
    predict_ids, deblock_id = resolve_models(header)
    predictor = _predictor(predict_ids, header.quality) if header.predicted else None
    pixels = codec.decode(parsed, predictor, luma_only=luma_only)
    if deblock_id is None or not deblock or luma_only:
        return Decoded(pixels)
    model = bcnn_restorer(deblock) if isinstance(deblock, str) else runtime.deblocker_for(deblock_id)
    return Decoded(runtime.deblock_array(pixels, header.quality, model.id), model.id)
