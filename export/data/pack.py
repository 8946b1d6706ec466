"""A data pack: pre-cut training crops in one ``.npz`` small enough to carry to a GPU machine.

    python -m export.data.pack --out runs/predict_pack.npz --crops 600

A device call takes 64 MiB with the working tree (40.6 MB on 2026-12-07), so a pack must stay under about
25 MB: 600 crops of 128 pixels are 23.3 MB, 1 000 were 38.7 MB.

The GPU machines lent to a session see the repository but not ``../shared``; a pack holds what a predictor
run needs: ``crops`` (``[N, S, S, 3]`` uint8, random ``S``-pixel crops of the training split, the same held-out
split as every run) and ``val`` (the validation crops as an object array). ``train_predictor --data-pack``
draws its batches from it, with the same rotations, flips, qualities and table sets as from the images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from export.data.crops import list_images, load_rgb, predictor_validation_images, split_holdout

REPO = Path(__file__).resolve().parents[2]


def build(config: dict, crops: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    files = list_images((REPO / config["data"]["root"]).resolve())
    train_files, val_files = split_holdout(files, config["data"]["n_val"], config["data"]["split_seed"])
    images = [im for im in (load_rgb(p) for p in train_files) if min(im.shape[:2]) >= size]
    rng = np.random.default_rng(seed)
    out = np.empty((crops, size, size, 3), dtype=np.uint8)
    for i in range(crops):
        img = images[int(rng.integers(len(images)))]
        y, x = int(rng.integers(0, img.shape[0] - size + 1)), int(rng.integers(0, img.shape[1] - size + 1))
        out[i] = img[y : y + size, x : x + size]
    val = predictor_validation_images(val_files[: config["data"]["n_val_used"]], config["data"]["val_crop"])
    val_array = np.empty(len(val), dtype=object)
    val_array[:] = val
    return {"crops": out, "val": val_array}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "export/configs/predict/predict_v2.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--crops", type=int, default=600)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    pack = build(json.loads(args.config.read_text()), args.crops, args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **pack)
    print(f"wrote {args.out}: {len(pack['crops'])} crops, {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
