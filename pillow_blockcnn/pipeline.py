"""Whole-image encode and decode: the codec plus the models a file names.

The codec (:mod:`.codec`) takes a predictor object and knows nothing of model
files; the registry (:mod:`.runtime`) knows model files and nothing of images.
This module joins them: it picks the packaged models for new files and
resolves the ids stored in a file back to models, refusing a file whose models
this installation lacks rather than decoding different pixels.

Header ``models`` order: the prediction models first, then the deblocking
model when the deblock flag is set (``docs/FORMAT.md``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import codec, runtime
from .container import Container, Header
from .deblocking import deblock_array
from .prediction import OnnxPredictor
from .predictor import BlockPredictor

__all__ = ["decode_pixels", "encode_pixels", "resolve_models"]


def _choose(task: str, wanted: bool | None, option: str, tables: str) -> runtime.ModelInfo | None:
    model = runtime.default_model(task, tables)
    if wanted is None:
        return model
    if not isinstance(wanted, bool):
        raise ValueError(f"{option} must be True, False or None (automatic), got {wanted!r}")  # noqa: TRY004 (Pillow reports bad save options as ValueError)
    if wanted and model is None:
        raise ValueError(
            f"{option}=True needs a {task} model for {tables!r} quantisation tables, and this installation of "
            f"pillow-blockcnn ships none; save with {option}=False"
        )
    return model if wanted else None


def _predictor(models: tuple[str, ...], quality: int) -> BlockPredictor:
    if len(models) != 1:
        raise runtime.ModelError(f"a predicted file names one prediction model, this one names {list(models)}")
    return OnnxPredictor(models[0], quality)  # raises ModelError naming a model this installation lacks


def resolve_models(header: Header) -> tuple[tuple[str, ...], str | None]:
    """Split ``header.models`` into (prediction model ids, deblocking model id)."""
    if header.deblock:
        if not header.models:
            raise runtime.ModelError("file asks for deblocking but names no deblocking model")
        return header.models[:-1], header.models[-1]
    return header.models, None


def encode_pixels(
    pixels: np.ndarray,
    mode: str,
    quality: int,
    *,
    subsampling: int = 2,
    tables: str = "jpeg",
    predict: bool | None = None,
    deblock: bool | None = None,
) -> codec.EncodedImage:
    """Encode with the packaged models; ``None`` means "use one if this installation has it", and for
    deblocking also "if it brings this image closer to the original": the encoder, which alone has the
    original, runs the deblocker once on its reconstruction and keeps the recommendation only when the error
    drops. (The deblocker is trained on 4:2:0 JPEGs and can make 4:4:4 files at high quality worse.)"""
    predict_model = _choose("predict", predict, "predict", tables)
    deblock_model = _choose("deblock", deblock, "deblock", tables)
    predictor = _predictor((predict_model.id,), quality) if predict_model is not None else None
    decide = deblock is None and deblock_model is not None
    encoded = codec.encode(
        pixels,
        mode,
        quality,
        subsampling=subsampling,
        tables=tables,
        predictor=predictor,
        deblock_model=deblock_model.id if deblock_model is not None else None,
        reconstruct=decide,
    )
    if decide and not _deblocking_helps(pixels, encoded.reconstruction, quality, deblock_model.id):
        header = encoded.container.header
        encoded.container.header = dataclasses.replace(header, deblock=False, models=header.models[:-1])
    return encoded


def _deblocking_helps(original: np.ndarray, decoded: np.ndarray, quality: int, model_id: str) -> bool:
    """Whether deblocking ``decoded`` lowers its squared error to ``original``. Alpha, when there is one, is
    lossless and left unchanged by deblocking, so it adds nothing to either side."""
    return _sse(deblock_array(decoded, quality, model_id), original) < _sse(decoded, original)


def _sse(a: np.ndarray, b: np.ndarray, rows: int = 256) -> int:
    """Exact sum of squared differences, a band of rows at a time so memory stays small on huge images."""
    total = 0
    for r in range(0, a.shape[0], rows):
        d = (a[r : r + rows].astype(np.int64) - b[r : r + rows]).ravel()
        total += int(d @ d)
    return total


def decode_pixels(parsed: Container, *, deblock: bool = True) -> np.ndarray:
    """Decode ``parsed``; deblock when the file recommends it and ``deblock`` allows it."""
    header = parsed.header
    predict_ids, deblock_id = resolve_models(header)
    predictor = _predictor(predict_ids, header.quality) if header.predicted else None
    pixels = codec.decode(parsed, predictor)
    if deblock_id is not None and deblock:
        task = runtime.model_info(deblock_id).task
        if task != "deblock":
            raise runtime.ModelError(f"model {deblock_id!r} named for deblocking is a {task} model")
        pixels = deblock_array(pixels, header.quality, deblock_id)
    return pixels
