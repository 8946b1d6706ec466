"""Where a deblocking model helps: its gain over JPEG at each quality, on the held-out *training* images.

Usage: ``python -m export.evaluation.quality_range --model pillow_blockcnn/models/dblk-3.onnx --out results/quality_range/quality_range_dblk-3.json``

A model trained mostly on low qualities can lower the PSNR of a high-quality JPEG (its error floor lies above
the JPEG's). ``pillow_blockcnn.deblock()`` therefore leaves images above the model's ``max_quality`` (a manifest
field) as they are. This command measures that field: for every quality of the grid it restores the
validation split of ``export/configs/<config>`` (never the benchmarks) as 4:2:0 and 4:4:4 colour JPEGs and as
grayscale JPEGs, and ``max_quality`` is the highest grid quality up to which the mean gain is positive in all
three modes (``max_quality_by_mode``: the same rule for each mode alone). Also writes ``<out>.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from export.data.crops import jpeg_roundtrip, to_gray, validation_crops
from export.evaluation.evaluate_deblock import Restorer, onnx_restorer
from export.evaluation.validate_deblock import add_held_out_options, report, write_report
from pillow_blockcnn.deblocking import JPEG_KINDS
from pillow_blockcnn.runtime.jfif import gray_to_ycbcr_float, rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float

QUALITIES = (10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 88, 90, 92, 94, 95, 96, 98, 100)
MODES = JPEG_KINDS  # the kinds deblock() looks up max_quality_by_mode for


def gains(images: list[np.ndarray], restore: Restorer, quality: int, mode: str) -> list[float]:
    """PSNR gain (RGB for colour, the gray value for gray) of each image at ``quality`` in ``mode``."""
    out = []
    for rgb in images:
        if mode == "gray":
            clean = to_gray(rgb)
            jpg = jpeg_roundtrip(clean, quality)
            res = to_uint8(restore(gray_to_ycbcr_float(jpg), quality)[..., 0])
        else:
            clean = rgb
            jpg = jpeg_roundtrip(rgb, quality, subsampling=MODES[mode])
            res = to_uint8(ycbcr_to_rgb_float(restore(rgb_to_ycbcr_float(jpg), quality)))
        out.append(_gain(clean, jpg, res))
    return out


def _gain(clean: np.ndarray, jpg: np.ndarray, res: np.ndarray) -> float:
    """PSNR(res) - PSNR(jpg) as a ratio of squared errors, finite when either is exact (q100 can be)."""
    def sse(a: np.ndarray) -> float:
        return float(np.sum((a.astype(np.float64) - clean) ** 2))
    return 10.0 * float(np.log10((sse(jpg) + 1.0) / (sse(res) + 1.0)))


def max_quality(table: dict[str, dict[str, dict[str, float]]], modes: tuple[str, ...] = tuple(MODES)) -> int:
    """Highest grid quality q such that the mean gain is positive at every grid quality <= q in every mode of
    ``modes``."""
    best = 0
    for q in QUALITIES:
        if all(table[m][str(q)]["mean"] > 0 for m in modes):
            best = q
        else:
            break
    return best


def max_quality_by_mode(table: dict[str, dict[str, dict[str, float]]]) -> dict[str, int]:
    """:func:`max_quality` of each mode alone (manifest ``max_quality_by_mode``): ``deblock()`` applies the one
    of the JPEG's own mode when it can tell it, and the all-modes ``max_quality`` otherwise."""
    return {m: max_quality(table, (m,)) for m in MODES}


def markdown(res: dict) -> str:
    lines = [f"# Deblocking gain by JPEG quality: `{res['model']}`", "",
             (f"{res['n_images']} held-out training images ({res['split']}), centre crops of at most "
             f"{res['crop']} px; {res['date']}, {res['machine']}. Command: `{res['command']}`."), "",
             ("Mean PSNR gain over the JPEG in dB (RGB for colour, the gray value for gray), and the share of "
             "images it lowers."), "",
             "| quality | " + " | ".join(MODES) + " |", "|---|" + "---|" * len(MODES)]
    for q in QUALITIES:
        cells = [f"{res['gain'][m][str(q)]['mean']:+.2f} ({res['gain'][m][str(q)]['hurt']:.0%})" for m in MODES]
        lines.append(f"| {q} | " + " | ".join(cells) + " |")
    by_mode = ", ".join(f"{m} {q}" for m, q in res["max_quality_by_mode"].items())
    lines += ["", (f"**max_quality = {res['max_quality']}**: the highest quality up to which the mean gain is "
              f"positive in every mode. Per mode (`max_quality_by_mode`): {by_mode}. `deblock()` leaves a JPEG "
              "above the limit of its mode (or above `max_quality` when its mode is unknown) unchanged.")]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    add_held_out_options(ap)
    args = ap.parse_args()

    images = validation_crops(args.config, args.crop)
    restore = onnx_restorer(args.model, args.threads)
    t0 = time.time()
    table: dict[str, dict[str, dict[str, float]]] = {m: {} for m in MODES}
    for mode in MODES:
        for q in QUALITIES:
            g = gains(images, restore, q, mode)
            table[mode][str(q)] = {"mean": float(np.mean(g)), "worst": float(np.min(g)),
                                   "hurt": float(np.mean(np.array(g) < 0))}
    res = report(args, len(images), f"export.evaluation.quality_range --model {args.model}", model=args.model.name,
                 gain=table, max_quality=max_quality(table),
                 max_quality_by_mode=max_quality_by_mode(table), seconds=round(time.time() - t0, 1))
    write_report(args.out, res, markdown(res))


if __name__ == "__main__":
    main()
