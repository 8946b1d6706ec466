"""Adaptive lambda (SSIM-motivated): does moving bits from busy blocks to flat ones buy MS-SSIM, and what PSNR
does it cost? Training images only (the 24 held-out ones by default).

    python -m export.studies.aq_study --json results/studies/aq_study.json

Each strength codes centre crops with the default save's coder (``pred-2`` where it pays, PSNR tables,
arithmetic coding), without deblocking unless ``--deblock`` names a restorer, and reports BD-rates (PSNR-RGB and
MS-SSIM dB, the same quality grid) against strength 0. ``pillow_blockcnn.codec.quantise.AQ_STRENGTH`` is the
constant under test (:func:`~pillow_blockcnn.codec.quantise.activity_weights`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from export.evaluation.bdrate import bd_rate
from export.evaluation.metrics import ms_ssim_rgb_db
from export.evaluation.report import emit, machine
from pillow_blockcnn import runtime
from pillow_blockcnn.codec import image, quantise
from pillow_blockcnn.format.container import write_container
from pillow_blockcnn.metrics import psnr

#: The PSNR tables, with which the committed results were measured (the default save's until 2026-12-06).
TABLES = "mse"

GRID = (10, 20, 30, 40, 50, 60)


def _crops(folder: Path, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    out = []
    for path in sorted(folder.glob("*.png"))[:count]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = min(size[0], rgb.shape[0]) // 8 * 8, min(size[1], rgb.shape[1]) // 8 * 8
        y0, x0 = (rgb.shape[0] - h) // 2, (rgb.shape[1] - w) // 2
        out.append(np.ascontiguousarray(rgb[y0 : y0 + h, x0 : x0 + w]))
    return out


def curve(images: list[np.ndarray], deblock: str | None) -> dict[str, list[float]]:
    rates, psnrs, msssims = [], [], []
    for q in GRID:
        predictor = runtime.predictor_for(runtime.default_model("predict").id, q)
        bpp, db, ms = [], [], []
        for rgb in images:
            enc = image.encode(rgb, "RGB", q, predictor=predictor, reconstruct=True, tables=TABLES)
            out = enc.reconstruction
            if deblock:
                out = runtime.deblock_array(out, q, deblock)
            bpp.append(8 * len(write_container(enc.container)) / rgb[..., 0].size)
            db.append(psnr(out, rgb))
            ms.append(ms_ssim_rgb_db(out, rgb))
        rates.append(float(np.mean(bpp)))
        psnrs.append(float(np.mean(db)))
        msssims.append(float(np.mean(ms)))
    return {"bpp": rates, "psnr_rgb": psnrs, "ms_ssim_db": msssims}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("runs/heldout"))
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, nargs=2, default=(320, 480))
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.3, 0.6])
    ap.add_argument("--deblock", help="a restorer's id to run after decoding (default: none)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    images = _crops(args.data, args.images, tuple(args.size))
    curves = {}
    for strength in args.strengths:
        quantise.AQ_STRENGTH = strength
        curves[strength] = curve(images, args.deblock)
        print(strength, curves[strength], flush=True)
    quantise.AQ_STRENGTH = 0.0
    base = curves[args.strengths[0]]
    results = []
    for strength, c in curves.items():
        row = {"strength": strength, **c}
        for metric in ("psnr_rgb", "ms_ssim_db"):
            row[f"bd_rate_{metric}_pct"] = bd_rate(base["bpp"], base[metric], c["bpp"], c[metric])
        results.append(row)
    return emit({
        "data": f"{args.data}: {len(images)} centre crops up to {args.size[0]}x{args.size[1]}", "grid": GRID,
        "deblock": args.deblock, "anchor": f"strength {args.strengths[0]}", "results": results,
        "machine": machine(), "date": time.strftime("%Y-%m-%d"),
    }, args.json)


if __name__ == "__main__":
    main()
