"""What a one-ulp change of every prediction does to decoded pixels (the CPU-vs-GPU case).

    python -m export.studies.ulp_study --model pred-1 --data ../shared/data/kodak --quality 20 --json results/studies/ulp_study.json

A decoder on another machine (another CPU kernel, a GPU) may compute each
raw prediction one float32 ulp away from the encoder's. Predictions are rounded
to integers, so only values within an ulp of a .5 boundary can change, by
exactly 1, and the closed loop then carries that block's different
reconstruction into the predictions of later blocks. This script encodes each
image with the packaged predictor, decodes it once exactly and once with every
raw prediction moved one ulp up (then down), and reports how many predictions
flipped and how far the pixels moved.

It measured format version 1's float predictor ``pred-1`` (results/studies/ulp_study.json), the case for the
integer-exact ``pred-2`` (docs/FORMAT.md §10). ``pred-1`` was dropped before release with version 1, so the
study now runs only on a float prediction model registered under an id (``runtime.register_model``): an
integer model has no ulp to move.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from export.evaluation.report import emit, machine
from pillow_blockcnn import codec
from pillow_blockcnn.format import container
from pillow_blockcnn.runtime.predictor import OnnxPredictor


class _Perturbed(OnnxPredictor):
    def __init__(self, model_id: str, quality: int, direction: float) -> None:
        super().__init__(model_id, quality)
        self.direction, self.flips, self.predictions = direction, 0, 0

    def predict(self, contexts: np.ndarray, available: np.ndarray, plane: int | np.ndarray) -> np.ndarray:
        raw = self.raw(contexts, available, plane)
        moved = np.nextafter(raw, np.float32(self.direction))
        self.flips += int((np.rint(moved) != np.rint(raw)).sum())
        self.predictions += raw.size
        return np.clip(np.rint(moved), 0, 255).astype(np.uint8)


def study(paths: list[Path], model_id: str, quality: int) -> dict:
    rows = []
    for path in paths:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
        data = container.write_container(codec.encode(pixels, "RGB", quality, tables="jpeg", predictor=OnnxPredictor(model_id, quality)).container)
        parsed = container.read_container(io.BytesIO(data))
        exact = codec.decode(parsed, OnnxPredictor(model_id, quality)).astype(np.int16)
        for direction in (np.inf, -np.inf):
            predictor = _Perturbed(model_id, quality, direction)
            diff = np.abs(codec.decode(parsed, predictor).astype(np.int16) - exact)
            mse = float(np.mean(diff.astype(np.float64) ** 2))
            rows.append(
                {
                    "image": path.name,
                    "direction": "+1 ulp" if direction > 0 else "-1 ulp",
                    "predicted_samples": predictor.predictions,
                    "rounding_flips": predictor.flips,
                    "pixels_changed_fraction": float((diff > 0).mean()),
                    "max_abs_diff": int(diff.max()),
                    "psnr_vs_exact_db": float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse),
                }
            )
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "model": model_id,
        "quality": quality,
        "images": len(paths),
        "worst_pixels_changed_fraction": max(r["pixels_changed_fraction"] for r in rows),
        "worst_max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "total_rounding_flips": sum(r["rounding_flips"] for r in rows),
        "total_predicted_samples": sum(r["predicted_samples"] for r in rows),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="packaged prediction model id")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--quality", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    paths = sorted([*args.data.glob("*.png"), *args.data.glob("*.jpg")])[: args.limit]
    result = study(paths, args.model, args.quality)
    return emit(result, args.json)


if __name__ == "__main__":
    main()
