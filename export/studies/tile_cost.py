"""The rate cost of prediction tiles: bytes with tiles against one tile per plane, at equal quality.

    python -m export.studies.tile_cost --json results/studies/tile_cost.json

Tiles cost bits only at their seams, where blocks lose neighbours, so the cost is set by the fraction of
blocks next to a seam. A 4000 x 3000 photo with 64-block tiles has 2.7% of its luma blocks on a seam; a
768 x 512 crop has that fraction with 48-block tiles (and 1.0% with 64). Both are measured on 768 x 512
centre crops of the training images at least that large (``../shared/data/train``), with the default
predictor, every block predicted (so the cost is the predictor's, not the block-mode choice's), the PSNR
unchanged to within noise (reported).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from export.data.crops import centre_crops
from export.evaluation.report import emit, machine
from pillow_blockcnn import codec, runtime
from pillow_blockcnn.format import container
from pillow_blockcnn.metrics import psnr

#: The PSNR tables, with which the committed results were measured (the default save's until 2026-12-06).
TABLES = "mse"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--qualities", type=int, nargs="+", default=[10, 30, 60])
    parser.add_argument("--tiles", type=int, nargs="+", default=[0, 64, 48])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    model = runtime.default_model("predict")
    assert model is not None
    images = centre_crops(sorted(args.data.glob("*.png")) + sorted(args.data.glob("*.jpg")), 512, 768, args.images)
    totals = {t: {"bytes": 0, "psnr": []} for t in args.tiles}
    for q in args.qualities:
        predictor = runtime.predictor_for(model.id, q)
        for rgb in images:
            for tile in args.tiles:
                enc = codec.encode(rgb, "RGB", q, predictor=predictor, tile=tile, reconstruct=True, force_prediction=True, tables=TABLES)
                totals[tile]["bytes"] += len(container.write_container(enc.container))
                totals[tile]["psnr"].append(psnr(enc.reconstruction, rgb))
    base = totals[args.tiles[0]]
    rows = {
        str(t): {
            "bytes": v["bytes"],
            "rate_cost_pct": 100 * (v["bytes"] / base["bytes"] - 1),
            "psnr_delta_db": float(np.mean(v["psnr"]) - np.mean(base["psnr"])),
        }
        for t, v in totals.items()
    }
    return emit(
        {"machine": machine(), "model": model.id, "images": len(images), "qualities": args.qualities, "tiles": rows,
         "data": f"{args.data}: 768x512 centre crops of the first {len(images)} images at least that large"},
        args.json,
    )


if __name__ == "__main__":
    main()
