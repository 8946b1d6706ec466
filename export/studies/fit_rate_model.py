"""Fit the rate model of :func:`pillow_blockcnn.codec.quantise.block_bits` to libjpeg's arithmetic coder.

The encoder's rate-distortion decisions need a block's coded size before the
plane is coded. The model is linear in a few features of the levels; its
coefficients are a least-squares fit of whole planes' real arithmetic-coded
sizes on training images (``../shared/data/train``, never the benchmark sets)
over qualities 5..95 and both table sets, with plain rounding and with the
encoder's own decisions. ``python -m export.studies.fit_rate_model --json results/studies/rate_model.json``
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from pillow_blockcnn.codec import jpeg
from pillow_blockcnn.codec.colour import rgb_to_ycbcr
from pillow_blockcnn.codec.quantise import _RANK, lagrangian, quantise_blocks

FEATURES = ["blocks", "ac_nonzero", "ac_log2", "last_rank", "dc_nonzero", "dc_log2"]


def features(levels: np.ndarray) -> np.ndarray:
    """Plane totals of the model's features for raster-ordered ``[N, 8, 8]`` levels."""
    mag = np.abs(levels.astype(np.int64))
    ac = mag.copy()
    ac[:, 0, 0] = 0
    nz = ac > 0
    dc = np.diff(levels[:, 0, 0].astype(np.int64), prepend=0)
    return np.array(
        [
            len(levels),
            nz.sum(),
            np.log2(np.maximum(ac, 1)).sum(),
            np.where(nz, _RANK, 0).max(axis=(1, 2)).sum(),
            (dc != 0).sum(),
            np.log2(np.maximum(np.abs(dc), 1)).sum(),
        ],
        dtype=np.float64,
    )


def coded_planes(paths: list[Path]) -> Iterator[tuple[np.ndarray, int]]:
    """Raster-ordered ``[N, 8, 8]`` levels and arithmetic-coded bits of the planes the model is fitted to: Y and
    Cb of each image at qualities 5..95, JPEG's and the PSNR tables, plain rounding and the encoder's choices."""
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = (rgb.shape[0] // 8) * 8, (rgb.shape[1] // 8) * 8
        ycc = rgb_to_ycbcr(rgb[:h, :w])
        for q in (5, 15, 30, 50, 75, 95):
            for tables in ("jpeg", "mse"):
                for index in (0, 1):
                    qtable = np.array(jpeg.quant_table(q, index > 0, tables)).reshape(8, 8)
                    blocks = ycc[index].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
                    for rdo in (False, True):
                        levels = quantise_blocks(blocks, 128, qtable, lagrangian(qtable), rdo=rdo).levels
                        payload = jpeg.write_levels(levels.reshape(h // 8, w // 8, 8, 8), qtable.ravel().tolist(),
                                                    "arithmetic", (h, w))
                        yield levels, 8 * len(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/train")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    paths = sorted(Path(args.data).glob("*.png"))[:: max(1, len(sorted(Path(args.data).glob("*.png"))) // args.images)]
    rows, sizes = [], []
    for levels, bits in coded_planes(paths[: args.images]):
        rows.append(features(levels))
        sizes.append(bits)
    x, y = np.array(rows), np.array(sizes, dtype=np.float64)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    pred = x @ coef
    err = np.abs(pred - y) / y
    result = {
        "features": FEATURES,
        "coefficients": dict(zip(FEATURES, np.round(coef, 4).tolist(), strict=True)),
        "planes": len(y),
        "median_relative_error": float(np.median(err)),
        "p90_relative_error": float(np.quantile(err, 0.9)),
        "data": f"{args.data}: {len(paths[: args.images])} images, q 5/15/30/50/75/95, tables jpeg+mse, Y and Cb",
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
