"""How much context a deblocking tile must borrow from its neighbours: tiled restoration against one pass.

    python -m export.studies.deblock_halo --json results/studies/deblock_halo.json

Large images are restored in tiles (``pillow_blockcnn.runtime.deblocker``) so memory stays bounded; each tile
runs with a halo of borrowed context, which is extra work: about (tile + 2 halo)^2 / tile^2 (1.44x at 640-pixel
tiles with the 64-pixel halo of 2026-12-02, 1.10x with today's 16). This measures what a smaller halo costs in
quality. Training images (``../shared/data/train``: the first ``--images`` at least 768x512, centre crops) are
saved at ``--quality`` by the default save, decoded without deblocking, and restored in one pass and in tiles
of at most ``--tile`` pixels, cut as the runtime cuts them (192 by default: 3.3x more tile borders per pixel
than 640, so the effect shows), with each halo. Reported:
PSNR of the tiled result against the one-pass result, its largest pixel difference, the PSNR-RGB change
against the original, and the time.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

import pillow_blockcnn  # noqa: F401  (registers the BCNN format)
from export.data.crops import centre_crops
from export.evaluation.report import emit, machine
from pillow_blockcnn import pipeline, runtime
from pillow_blockcnn.format import container
from pillow_blockcnn.metrics import psnr
from pillow_blockcnn.runtime import deblocker


def restore(pixels: np.ndarray, quality: int, model: str, tile: int, halo: int) -> tuple[np.ndarray, float]:
    """``pixels`` restored in ``tile``-pixel tiles with ``halo`` (tile 0: one pass), and the seconds it took."""
    saved = deblocker.ONE_PASS, deblocker.TILE, deblocker.HALO
    try:
        deblocker.ONE_PASS = 10**9 if tile == 0 else min(saved[0], tile)
        deblocker.TILE, deblocker.HALO = tile or saved[1], halo
        start = time.perf_counter()
        out = deblocker.deblock_array(pixels, quality, model)
        return out, time.perf_counter() - start
    finally:
        deblocker.ONE_PASS, deblocker.TILE, deblocker.HALO = saved


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--quality", type=int, default=30)
    parser.add_argument("--model", default=None, help="deblocking model (default: the default .bcnn restorer)")
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument("--halos", type=int, nargs="+", default=[64, 48, 32, 24, 16])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    model = args.model or runtime.default_model("deblock").id
    crops = centre_crops(sorted(args.data.glob("*.png")), 768, 512, args.images)
    rows: dict[int, list[dict[str, float]]] = {h: [] for h in args.halos}
    one_pass_s = []
    for original in crops:
        buf = io.BytesIO()
        Image.fromarray(original).save(buf, "BCNN", quality=args.quality)
        decoded = pipeline.decode_pixels(container.read_container(io.BytesIO(buf.getvalue())), deblock=False).pixels
        whole, seconds = restore(decoded, args.quality, model, 0, 0)
        one_pass_s.append(seconds)
        for halo in args.halos:
            tiled, seconds = restore(decoded, args.quality, model, args.tile, halo)
            rows[halo].append({
                "psnr_vs_one_pass_db": psnr(tiled, whole),
                "max_abs_diff": int(np.abs(tiled.astype(np.int16) - whole).max()),
                "psnr_change_db": psnr(tiled, original) - psnr(whole, original),
                "seconds": seconds,
            })
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "model": model,
        "quality": args.quality,
        "tile": args.tile,
        "images": f"{args.data}: centre 768x512 crops of the first {len(crops)} images at least that large",
        "one_pass_s": float(np.mean(one_pass_s)),
        "halos": {
            str(h): {
                "psnr_vs_one_pass_db": float(np.mean([r["psnr_vs_one_pass_db"] for r in rs])),
                "max_abs_diff": max(r["max_abs_diff"] for r in rs),
                "psnr_change_db": float(np.mean([r["psnr_change_db"] for r in rs])),
                "worst_psnr_change_db": float(min(r["psnr_change_db"] for r in rs)),
                "seconds": float(np.mean([r["seconds"] for r in rs])),
                "work_at_640": ((640 + 2 * h) / 640) ** 2,
            }
            for h, rs in rows.items()
        },
    }
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
