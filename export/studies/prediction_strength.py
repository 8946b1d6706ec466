"""Is the predictor's texture too strong or too weak? A closed-loop test of scaling it.

    python -m export.studies.prediction_strength --json results/studies/prediction_strength.json

Issue 18 wants a better rate from prediction. A predictor trained on a Huber loss may shrink its textures
toward the block mean (regression to the mean) or, where it is unsure, add texture the residual must then cancel.
Either would show as a gain from scaling each predicted block's deviation from its own mean by a strength
``s``: ``p' = round(m + s (p - m))``, ``m`` the block's mean, clipped to 0..255 (``s = 0`` keeps only the
predicted mean). The encoder runs its real closed loop with the scaled predictor (its reconstruction is what a
decoder with the same predictor produces), so its own predicted/plain choice per block and per plane applies.
If a strength other than 1 saved bits on average, a per-block strength (a format change) or a retrained
predictor would be worth building; if 1 is the optimum, the predictor is calibrated and neither is.

Reported: the BD-rate (PSNR-RGB, before restoration) of each strength against ``s = 1``, per image and the mean,
on centre crops of the held-out training images (split seed 1234), never Kodak, LIVE1 or Classic5, with the
default save's tables for photographs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from export.data.bcnn_pack import split
from export.data.crops import centre_crops
from export.evaluation.bdrate import bd_rates
from export.evaluation.metrics import psnr
from export.evaluation.report import emit, machine
from pillow_blockcnn import codec, runtime
from pillow_blockcnn.codec.blocks import BlockPredictor
from pillow_blockcnn.format import container


class ScaledPredictor:
    """``inner``'s predictions with each block's deviation from its own mean scaled by ``strength``."""

    def __init__(self, inner: BlockPredictor, strength: float) -> None:
        self.inner, self.strength = inner, strength
        self.model_ids = inner.model_ids

    def _scale(self, pred: np.ndarray) -> np.ndarray:
        p = pred.astype(np.float32)
        mean = p.reshape(len(p), -1).mean(axis=1)[:, None, None]
        return np.clip(np.rint(mean + self.strength * (p - mean)), 0, 255).astype(np.uint8)

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray) -> np.ndarray:
        return self._scale(self.inner.predict(contexts, available, plane))

    def predict_neighbours(self, neighbours: np.ndarray, available: np.ndarray, plane: int | np.ndarray) -> np.ndarray:
        return self._scale(self.inner.predict_neighbours(neighbours, available, plane))  # type: ignore[attr-defined]


def rd_points(image: np.ndarray, strength: float, qualities: list[int], model: str, tables: str) -> list[tuple[float, float]]:
    """(bits per pixel, PSNR-RGB before restoration) of ``image`` coded at each quality with ``model``'s
    predictions scaled by ``strength``."""
    points = []
    for q in qualities:
        predictor = ScaledPredictor(runtime.predictor_for(model, q), strength)
        encoded = codec.encode(image, "RGB", q, tables=tables, predictor=predictor, reconstruct=True)
        bits = 8 * len(container.write_container(encoded.container))
        points.append((bits / (image.shape[0] * image.shape[1]), psnr(image, encoded.reconstruction)))
    return points


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8, help="held-out images (those at least --size in either orientation)")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 384), metavar=("H", "W"))
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.5, 0.75, 1.15, 1.3])
    ap.add_argument("--qualities", type=int, nargs="+", default=[10, 20, 30, 40, 60])
    ap.add_argument("--model", default="pred-2")
    ap.add_argument("--tables", default="balanced")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    _, held_out = split()
    images = centre_crops(held_out, *args.size, count=args.images, either_orientation=True)
    start = time.perf_counter()
    strengths = sorted({1.0, *args.strengths})
    curves = {s: [rd_points(im, s, args.qualities, args.model, args.tables) for im in images] for s in strengths}
    result: dict = {
        "machine": machine(),
        "images": len(images),
        "size": list(args.size),
        "qualities": args.qualities,
        "model": args.model,
        "tables": args.tables,
        "strengths": {},
    }
    for s in strengths:
        per_image = bd_rates(curves[1.0], curves[s])
        result["strengths"][str(s)] = {"bd_rate_mean_pct": round(float(np.mean(per_image)), 3),
                                       "bd_rate_per_image_pct": [round(b, 2) for b in per_image]}
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return emit(result, args.json)


if __name__ == "__main__":
    main()
