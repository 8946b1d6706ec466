"""Search quantisation tables for PSNR or MS-SSIM on training images (never on Kodak, LIVE1 or Classic5).

    python -m export.studies.tune_tables --metric psnr --json results/studies/tables_search_v2_psnr.json
    python -m export.studies.tune_tables --metric ms_ssim --alpha-y 0.3 0.5 0.8 --alpha-c 0.2 0.4 0.8 \
        --rho 0.8 1.0 1.3 --json results/studies/tables_search_v2_ms_ssim.json
    python -m export.studies.tune_tables --metric both --deblock dblk-9 --held-out --crop 256 --workers 2 \
        --json results/studies/tables_search_restored_dblk-9.json

``--deblock ID`` scores what a decoder shows: the decoded image restored by that packaged restorer, which was
tuned for neither table set. Its training images would flatter it, so ``--held-out`` codes the 24 images the
restorers and predictors never trained on (``--crop``: their centre crops, for speed). ``--metric both``
scores PSNR-RGB and MS-SSIM in the same pass and ranks by the mean of the two BD-rates.

JPEG's Annex K tables are psychovisual: coarse at high frequencies, and the
chroma table far coarser than luma. For PSNR, which weighs every coefficient's
error alike, flatter tables spend bits better. The family searched is

    luma(u, v)   = 16 * (1 + alpha_y * (u + v))
    chroma(u, v) = 16 * rho * (1 + alpha_c * (u + v))

scaled by the IJG quality rule (``jpeg.scaled_table``), and each candidate is
scored by its BD-rate on PSNR-RGB or on MS-SSIM (RGB mean, dB; points up to
1 bpp) against Annex K, both through the codec's own version 2 plane path
(4:2:0, rate-distortion quantiser, arithmetic coding, no prediction, no
deblocking).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import time
from pathlib import Path

import numpy as np

from export.data.crops import centre_crop, list_images, load_rgb, split_holdout
from export.evaluation.bdrate import bd_rate
from export.evaluation.metrics import ms_ssim_rgb_db, psnr
from export.evaluation.report import emit, machine
from pillow_blockcnn import codec
from pillow_blockcnn.codec import jpeg
from pillow_blockcnn.codec.closed_loop import code_plain
from pillow_blockcnn.format.container import Header
from pillow_blockcnn.runtime import deblock_array

QUALITIES = (5, 10, 15, 20, 30, 40, 50, 60, 70)
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "train"


def family(alpha_y: float, alpha_c: float, rho: float) -> tuple[np.ndarray, np.ndarray]:
    uv = np.add.outer(np.arange(8), np.arange(8)).ravel()
    return 16.0 * (1 + alpha_y * uv), 16.0 * rho * (1 + alpha_c * uv)


METRICS = {"psnr": psnr, "ms_ssim": ms_ssim_rgb_db}


def curve(
    images: list[np.ndarray], bases: tuple[np.ndarray, np.ndarray] | None, metric: str, deblock: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(bpp, mean PSNR-RGB or MS-SSIM dB) per quality over ``images``; ``bases=None``: JPEG's Annex K.
    ``metric="both"`` gives ``[qualities, 2]`` scores (PSNR-RGB, MS-SSIM); ``deblock``: restore each decoded
    image with that packaged model first."""
    names = list(METRICS) if metric == "both" else [metric]
    rates, scores = [], []
    for q in QUALITIES:
        bits = pixels = 0
        per_image = []
        for img in images:
            header = Header(width=img.shape[1], height=img.shape[0], mode="RGB", quality=q)
            decoded = []
            for i, plane in enumerate(codec.to_planes(img, header)):
                table = jpeg.quant_table(q, i > 0, tables="jpeg") if bases is None else jpeg.scaled_table(bases[i > 0], q)
                coded = code_plain(plane, np.asarray(table).reshape(8, 8))
                bits += 8 * len(jpeg.write_levels(coded.levels, table, "arithmetic", plane.shape))
                decoded.append(coded.recon)
            out = codec.from_planes(decoded, header)
            if deblock is not None:
                out = deblock_array(out, q, deblock)
            per_image.append([METRICS[name](out, img) for name in names])
            pixels += img.shape[0] * img.shape[1]
        rates.append(bits / pixels)
        scores.append(np.mean(per_image, axis=0))
    scores_array = np.array(scores)
    return np.array(rates), scores_array if metric == "both" else scores_array[:, 0]


def _bd(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> float:
    (ra, pa), (rt, pt) = anchor, test
    return bd_rate(ra[ra <= 1.0], pa[ra <= 1.0], rt[rt <= 1.0], pt[rt <= 1.0])


def _scores(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], metric: str) -> dict:
    """BD-rates of ``test`` against ``anchor``: one, or for ``both`` each metric's and their mean."""
    if metric != "both":
        return {f"bd_rate_{metric}": _bd(anchor, test)}
    out = {f"bd_rate_{name}": _bd((anchor[0], anchor[1][:, i]), (test[0], test[1][:, i])) for i, name in
           enumerate(METRICS)}
    return {**out, "bd_rate_both": float(np.mean(list(out.values())))}


def _candidate(job: tuple) -> dict:
    """One row of the search (a process of its own with ``--workers``)."""
    images, params, metric, deblock, anchor = job
    bases = family(params["alpha_y"], params["alpha_c"], params["rho"])
    return {**params, **_scores(anchor, curve(images, bases, metric, deblock), metric)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--images", type=int, default=24, help="how many training images (held-out split excluded)")
    parser.add_argument("--alpha-y", type=float, nargs="+", default=[0.05, 0.1, 0.15])
    parser.add_argument("--alpha-c", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4])
    parser.add_argument("--rho", type=float, nargs="+", default=[0.8, 1.0, 1.3, 1.7])
    parser.add_argument("--metric", choices=["psnr", "ms_ssim", "both"], default="psnr")
    parser.add_argument("--deblock", default=None, help="a packaged restorer's id: score restored decodes")
    parser.add_argument("--held-out", action="store_true", help="the 24 held-out images instead of training ones")
    parser.add_argument("--crop", type=int, default=0, help="centre crops of at most this side (0: whole images)")
    parser.add_argument("--workers", type=int, default=1, help="candidates coded in this many processes")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    train, held_out = split_holdout(list_images(args.data), 24, 1234)  # the deblocker's held-out images
    if args.held_out:
        picked = held_out[: args.images]
    else:
        rng = np.random.default_rng(0)
        picked = [train[i] for i in sorted(rng.choice(len(train), size=args.images, replace=False))]
    images = []
    for path in picked:
        img = load_rgb(path)
        if args.crop:
            img = centre_crop(img, args.crop)
        images.append(np.ascontiguousarray(img[: img.shape[0] // 16 * 16, : img.shape[1] // 16 * 16]))
    start = time.perf_counter()
    anchor = curve(images, None, args.metric, args.deblock)
    key = f"bd_rate_{args.metric}"
    shipped = {name: _scores(anchor, curve(images, (jpeg.base_table(name, False), jpeg.base_table(name, True)),
                                           args.metric, args.deblock), args.metric) for name in ("mse", "ssim")}
    rows = [{"tables": f"{name} (shipped)", **row} for name, row in shipped.items()]
    for row in rows:
        print(row, flush=True)
    jobs = [(images, {"alpha_y": ay, "alpha_c": ac, "rho": rho}, args.metric, args.deblock, anchor)
            for ay, ac, rho in itertools.product(args.alpha_y, args.alpha_c, args.rho)]
    with multiprocessing.get_context("spawn").Pool(args.workers) if args.workers > 1 else contextlib.nullcontext() as pool:
        for row in (pool.imap(_candidate, jobs) if pool else map(_candidate, jobs)):
            rows.append(row)
            print(row, flush=True)
    best = min(rows, key=lambda r: r[key])
    return emit(
        {
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "images": [p.name for p in picked],
            "crop": args.crop or None,
            "deblock": args.deblock,
            "qualities": QUALITIES,
            "anchor": "JPEG Annex K tables (IJG scaling), same codec path (format version 2, plain coding)",
            "metric": args.metric,
            "best": best,
            "rows": sorted(rows, key=lambda r: r[key]),
            "wall_s": round(time.perf_counter() - start, 1),
        },
        args.json,
    )


if __name__ == "__main__":
    main()
