"""The encoder's deblocking check on samples: does it decide as the whole-image check does, and what does it save?

    python -m export.studies.deblock_check_sampling --json results/studies/deblock_check_sampling.json

A save with ``deblock=None`` (the default) recommends the restorer only when restoring the reconstruction
brings it closer to the original (``pipeline._deblocking_pays``). Above ``pipeline.SAMPLE_ABOVE`` pixels the
encoder first restores only ``pipeline.sample_windows`` and decides on them when they gain clearly; otherwise
it restores the whole image as before. Two measurements:

* **agreement**: on centre crops of the held-out training images, at qualities up to the break-even (high
  qualities, 4:4:4), the sampled rule is forced (``SAMPLE_ABOVE`` = 0, cells and windows scaled down to the
  crop by ``--cell``/``--side``) and compared with the whole-image check. A "wrong yes" (samples say it pays,
  the whole image says it does not) is the failure that matters; "fallback" counts the cases the samples
  leave to the whole-image check.
* **screen content**: a 2400x1800 page of black text on white with a flat red panel, alone and with a
  768x512 photograph pasted in a corner, at the shipped sampling (it is above ``SAMPLE_ABOVE``): text is where
  the restorer can hurt, and a page with a photograph is where samples could misjudge the whole.
* **time**: a 12-megapixel save (a training crop mirror-tiled to 4000x3000, quality 30), the whole-image check
  against the sampled one, alternating, with the files compared byte for byte.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from export.data.bcnn_pack import split
from export.data.crops import centre_crops
from export.evaluation.report import emit, machine
from pillow_blockcnn import pipeline
from pillow_blockcnn.format.limits import SUBSAMPLING_CODES
from pillow_blockcnn.metrics import sse

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "train"


def agreement(crops: list[np.ndarray], qualities: list[int], cell: int, side: int) -> dict:
    """Sampled against whole-image decisions on every crop, quality and subsampling (4:2:0, 4:4:4)."""
    saved = pipeline.SAMPLE_CELL, pipeline.SAMPLE_SIDE
    pipeline.SAMPLE_CELL, pipeline.SAMPLE_SIDE = cell, side
    cases = []
    try:
        for i, rgb in enumerate(crops):
            for q in qualities:
                for name in ("4:2:0", "4:4:4"):
                    enc = pipeline.encode_pixels(
                        rgb, "RGB", q, subsampling=SUBSAMPLING_CODES[name], deblock=True, reconstruct=True
                    )
                    decoded, header = enc.reconstruction, enc.container.header
                    model = header.models[-1]
                    cost = pipeline.deblocking_cost(q, header.tables, model)
                    whole = pipeline.restoration_gain(rgb, decoded, q, model) > cost
                    before, after, area = pipeline.sampled_sse(rgb, decoded, q, model)
                    sampled = pipeline.samples_decide(before, after, area, rgb.shape[0] * rgb.shape[1], cost)
                    cases.append(
                        {
                            "image": i,
                            "quality": q,
                            "subsampling": name,
                            "whole": bool(whole),
                            "samples_decide": bool(sampled),
                            "sample_gain": round(1 - after / before, 4),
                        }
                    )
    finally:
        pipeline.SAMPLE_CELL, pipeline.SAMPLE_SIDE = saved
    return {
        "cases": len(cases),
        "whole_pays": sum(c["whole"] for c in cases),
        "samples_decide": sum(c["samples_decide"] for c in cases),
        "wrong_yes": sum(c["samples_decide"] and not c["whole"] for c in cases),
        "fallback_where_it_pays": sum(c["whole"] and not c["samples_decide"] for c in cases),
        "detail": cases,
    }


def _page(photo: np.ndarray | None) -> np.ndarray:
    im = Image.new("RGB", (2400, 1800), "white")
    draw = ImageDraw.Draw(im)
    line = "The quick brown fox jumps over the lazy dog 0123456789 " * 6
    for y in range(10, 1800, 18):
        draw.text((10, y), line, fill=(0, 0, 0))
    draw.rectangle((1200, 0, 2400, 600), fill=(200, 30, 30))
    page = np.array(im)
    if photo is not None:
        page[-photo.shape[0] :, : photo.shape[1]] = photo
    return page


def screen_content(data: Path, qualities: list[int]) -> list[dict]:
    """Sampled against whole-image decisions on a text page, with and without a photograph, default save."""
    photo = centre_crops(sorted(data.glob("*.png")), 512, 768)[0]
    rows = []
    for name, page in (("text page", _page(None)), ("text page with a photograph", _page(photo))):
        tables = pipeline.default_tables(page)
        for q in qualities:
            enc = pipeline.encode_pixels(page, "RGB", q, deblock=True, reconstruct=True)
            decoded, model = enc.reconstruction, enc.container.header.models[-1]
            cost = pipeline.deblocking_cost(q, tables, model)
            gain = pipeline.restoration_gain(page, decoded, q, model)
            before, after, area = pipeline.sampled_sse(page, decoded, q, model)
            rows.append(
                {
                    "image": name,
                    "tables": tables,
                    "quality": q,
                    "whole": bool(gain > cost),
                    "whole_gain": round(gain / sse(decoded, page), 4),
                    "sample_gain": round(1 - after / before, 4),
                    "samples_decide": pipeline.samples_decide(before, after, area, page.shape[0] * page.shape[1], cost),
                }
            )
    return rows


def timing(data: Path, rounds: int) -> dict:
    """A 12-megapixel default save with the whole-image check and with the sampled one, alternating."""
    crop = centre_crops(sorted(data.glob("*.png")), 512, 768)[0]
    big = np.ascontiguousarray(np.pad(crop, ((0, 3000 - 512), (0, 4000 - 768), (0, 0)), mode="symmetric"))
    saved = pipeline.SAMPLE_ABOVE
    times: dict[str, list[float]] = {"whole": [], "sampled": []}
    files: dict[str, bytes] = {}
    try:
        for _ in range(rounds):
            for name, above in (("whole", big.size), ("sampled", saved)):
                pipeline.SAMPLE_ABOVE = above
                out = io.BytesIO()
                started = time.perf_counter()
                Image.fromarray(big).save(out, "BCNN", quality=30)
                times[name].append(time.perf_counter() - started)
                files[name] = out.getvalue()
    finally:
        pipeline.SAMPLE_ABOVE = saved
    return {
        "image": f"{data}: the first training PNG's centre 768x512 crop, mirror-tiled to 4000x3000, quality 30",
        "seconds": times,
        "best_ratio_sampled_over_whole": min(times["sampled"]) / min(times["whole"]),
        "same_bytes": files["whole"] == files["sampled"],
        "bytes": len(files["sampled"]),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=DATA, help="where the timing's and the text page's photograph come from"
    )
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--qualities", type=int, nargs="+", default=[20, 50, 80, 90, 95])
    ap.add_argument("--cell", type=int, default=160, help="SAMPLE_CELL for the crops (the shipped one is 1024)")
    ap.add_argument("--side", type=int, default=64, help="SAMPLE_SIDE for the crops (the shipped one is 256)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    crops = centre_crops(split()[1], 320, 480, count=args.images, either_orientation=True)
    started = time.perf_counter()
    return emit(
        {
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "data": f"centre 320x480 crops (portrait ones turned) of {len(crops)} of the 24 held-out "
            f"images (split seed 1234); windows of {args.side} in cells of {args.cell}",
            "shipped": {
                "SAMPLE_ABOVE": pipeline.SAMPLE_ABOVE,
                "SAMPLE_CELL": pipeline.SAMPLE_CELL,
                "SAMPLE_SIDE": pipeline.SAMPLE_SIDE,
                "SAMPLE_MARGIN": pipeline.SAMPLE_MARGIN,
            },
            "agreement": agreement(crops, sorted(args.qualities), args.cell, args.side),
            "screen_content": screen_content(args.data, [30, 75, 90]),
            "timing": timing(args.data, args.rounds) if args.rounds else None,
            "wall_s": time.perf_counter() - started,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
