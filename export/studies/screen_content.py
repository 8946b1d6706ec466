"""How many images of each data folder ``codec.content`` counts as screen content, and what the test costs.

    python -m export.studies.screen_content --json results/studies/screen_content.json

A save that names no tables gives screen content the PSNR tables and photographs the ``balanced`` ones
(``pipeline.default_tables``), so the rule should pass over photographs: this lists, per folder, the images
over the threshold, the largest share of few-colour blocks, and the time the test takes on 12 megapixels of
noise (every block many-coloured, the most sorting).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from export.evaluation.report import emit, machine
from pillow_blockcnn.codec.content import MIN_SHARE, few_colour_share

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--folders", nargs="+", default=["train", "kodak", "live1", "classic5"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    folders = {}
    for name in args.folders:
        shares = {p.name: few_colour_share(np.asarray(Image.open(p).convert("RGB")))
                  for p in sorted((args.data / name).glob("*.png"))}
        folders[name] = {"images": len(shares), "screen_content": sorted(k for k, v in shares.items() if v > MIN_SHARE),
                         "largest_share": round(max(shares.values()), 4)}
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    started = time.perf_counter()
    few_colour_share(noise)
    return emit({"date": time.strftime("%Y-%m-%d"), "machine": machine(), "threshold": MIN_SHARE,
                 "folders": folders, "seconds_for_12mp_noise": round(time.perf_counter() - started, 3)}, args.json)


if __name__ == "__main__":
    main()
