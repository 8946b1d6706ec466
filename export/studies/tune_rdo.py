"""Tune the encoder's rate-distortion constants (dead zone, lambda) on training images, against Pillow's JPEG.

For each setting, codes centre crops of training images (``../shared/data/train`` only) with the codec API
over a quality grid, without prediction or deblocking, and reports the BD-rate (PSNR-RGB, <= 1 bpp) against
Pillow JPEG ``optimize=True`` 4:2:0 on the same crops. The constants live in
:mod:`pillow_blockcnn.codec.quantise`. ::

    python -m export.studies.tune_rdo --json results/studies/tune_rdo.json
    python -m export.studies.tune_rdo --trellis 0 1 --deadzones 0.33 --lambdas 0.086 --no-plain \
        --json results/studies/tune_rdo_trellis.json

``--trellis 0 1`` measures each setting without and with the trellis candidate (``quantise.TRELLIS``).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from export.evaluation.bdrate import bd_rate, select_up_to
from export.evaluation.report import machine
from pillow_blockcnn.codec import image, quantise
from pillow_blockcnn.format.container import write_container
from pillow_blockcnn.metrics import psnr

GRID = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80)


def crops(root: Path, count: int, size: tuple[int, int] = (256, 384)) -> list[np.ndarray]:
    paths = sorted(root.glob("*.png"))
    step = max(1, len(paths) // count)
    out = []
    for path in paths[::step][:count]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        y0, x0 = (rgb.shape[0] - size[0]) // 2, (rgb.shape[1] - size[1]) // 2
        out.append(np.ascontiguousarray(rgb[y0 : y0 + size[0], x0 : x0 + size[1]]))
    return out


def jpeg_curve(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    rates, quals = [], []
    for q in GRID:
        bpp, db = [], []
        for rgb in images:
            out = io.BytesIO()
            Image.fromarray(rgb).save(out, "JPEG", quality=q, optimize=True, subsampling="4:2:0")
            dec = np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB"))
            bpp.append(8 * out.tell() / rgb[..., 0].size)
            db.append(psnr(dec, rgb))
        rates.append(np.mean(bpp))
        quals.append(np.mean(db))
    return np.array(rates), np.array(quals)


def bcnn_curve(images: list[np.ndarray], **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
    """(bpp, PSNR-RGB) per quality of the codec with the PSNR tables (the constants were tuned with them)."""
    kwargs.setdefault("tables", "mse")
    rates, quals = [], []
    for q in GRID:
        bpp, db = [], []
        for rgb in images:
            enc = image.encode(rgb, "RGB", q, reconstruct=True, **kwargs)
            bpp.append(8 * len(write_container(enc.container)) / rgb[..., 0].size)
            db.append(psnr(enc.reconstruction, rgb))
        rates.append(np.mean(bpp))
        quals.append(np.mean(db))
    return np.array(rates), np.array(quals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--deadzones", type=float, nargs="+", default=[0.5, 0.42, 0.38, 0.33, 0.28])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.05, 0.11, 0.2])
    parser.add_argument("--trellis", type=int, nargs="+", choices=(0, 1), default=[int(quantise.TRELLIS)],
                        help="quantise.TRELLIS settings to measure (0 off, 1 on)")
    parser.add_argument("--no-plain", action="store_true", help="skip the two rows without rate-distortion choices")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    images = crops(args.data, args.images)
    ref = select_up_to(*jpeg_curve(images), 1.0)
    results = []
    for coding in () if args.no_plain else ("huffman", "arithmetic"):
        rate, qual = select_up_to(*bcnn_curve(images, coding=coding, rdo=False), 1.0)
        results.append({"coding": coding, "rdo": False, "bd_rate_pct": bd_rate(*ref, rate, qual)})
        print(results[-1], flush=True)
    for trellis, deadzone, lam in itertools.product(args.trellis, args.deadzones, args.lambdas):
        quantise.TRELLIS, quantise.DEADZONE, quantise.RD_LAMBDA = bool(trellis), deadzone, lam
        rate, qual = select_up_to(*bcnn_curve(images), 1.0)
        results.append({"coding": "arithmetic", "rdo": True, "trellis": bool(trellis), "deadzone": deadzone,
                        "lambda": lam, "bd_rate_pct": bd_rate(*ref, rate, qual)})
        print(results[-1], flush=True)
    out = {"date": time.strftime("%Y-%m-%d"), "machine": machine(),
           "data": f"{args.data}: {len(images)} centre crops 384x256", "grid": GRID,
           "anchor": "Pillow JPEG optimize=True 4:2:0", "tables": "mse", "results": results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
