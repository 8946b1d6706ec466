"""Which encoder settings should the default save use, judged as issue 19 judges it: BD-rate against Pillow's
JPEG on PSNR-RGB *and* MS-SSIM, against AVIF measured in the same run, on held-out training images only
(never Kodak, LIVE1 or Classic5).

    python -m export.studies.tune_default --json results/studies/tune_default.json \
        --variant psnr=mse:0.33:1 --variant ssim=ssim:0.33:1 --variant ssim-dz45=ssim:0.45:1

A variant is ``name=tables:deadzone:lambda_scale[:trellis[:subsampling]]``: the table set, ``quantise.DEADZONE``
(the rounding offset of AC levels, 0.33 by default; larger keeps more of a texture's energy, which MS-SSIM
rewards and PSNR pays for in bits), a factor on ``quantise.RD_LAMBDA``, optionally ``quantise.TRELLIS`` (0 or 1;
``-`` or omitted: the shipped setting) and the chroma subsampling (``420``, ``422`` or ``444``; omitted: the
save's default). Every variant codes through ``Image.save`` as users do
(prediction where it pays, deblocking forced on as in ``evaluate_compression``'s ``bcnn-*`` rows), on centre
crops of the 24 images the restorers and predictors never trained on (split seed 1234), and is scored by the
same code as the Kodak table (``export.evaluation.evaluate_compression``): its BD-rates against JPEG on both
metrics, the same for AVIF, and the margin by which the variant beats AVIF on each (positive = better).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from PIL import Image

from export.data.bcnn_pack import split
from export.data.crops import centre_crops
from export.evaluation import evaluate_compression as ev
from export.evaluation.report import emit
from pillow_blockcnn.codec import quantise

SUBSAMPLING = {"420": "4:2:0", "422": "4:2:2", "444": "4:4:4"}


@contextlib.contextmanager
def _rdo(deadzone: float, lambda_scale: float, trellis: bool) -> Iterator[None]:
    saved = quantise.DEADZONE, quantise.RD_LAMBDA, quantise.TRELLIS
    quantise.DEADZONE, quantise.RD_LAMBDA, quantise.TRELLIS = deadzone, saved[1] * lambda_scale, trellis
    try:
        yield
    finally:
        quantise.DEADZONE, quantise.RD_LAMBDA, quantise.TRELLIS = saved


def variant_codec(spec: str) -> ev.Codec:
    """``name=tables:deadzone:lambda_scale[:trellis[:subsampling]]`` -> a codec for ``evaluate_compression``."""
    name, _, params = spec.partition("=")
    tables, deadzone, scale, *rest = params.split(":")
    dz, ls = float(deadzone), float(scale)
    trellis = bool(int(rest[0])) if rest and rest[0] != "-" else quantise.TRELLIS
    extra = {"subsampling": SUBSAMPLING[rest[1]]} if len(rest) > 1 else {}
    base = ev.CODECS[f"bcnn-predict-deblock-{tables}"]

    def save(im: Image.Image, quality: int) -> bytes:
        with _rdo(dz, ls, trellis):
            out = io.BytesIO()
            im.save(out, "BCNN", quality=quality, tables=tables, deblock=True, **extra)
            return out.getvalue()

    return replace(base, name=f"bcnn-{name}", description=f".bcnn default save, tables={tables}, "
                   f"DEADZONE={dz}, RD_LAMBDA x{ls}, TRELLIS={trellis}, "
                   f"subsampling {extra.get('subsampling', 'default')}, deblock forced on", save=save)


def margins(bd: dict[str, dict], name: str) -> dict[str, float]:
    """By how many BD-rate points against JPEG ``name`` beats AVIF on each metric (positive = better)."""
    out = {}
    for key, label in (("bd_rate_cubic_pct", "psnr_rgb"), ("ms_ssim_bd_rate_cubic_pct", "ms_ssim")):
        out[f"{label}_vs_jpeg_pct"] = bd[name][key]
        out[f"{label}_margin_over_avif_points"] = bd["avif"][key] - bd[name][key]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=12, help="how many of the 24 held-out images")
    ap.add_argument("--size", type=int, nargs=2, default=(384, 512), metavar=("HEIGHT", "WIDTH"))
    ap.add_argument("--either-orientation", action="store_true",
                    help="crop portrait images too, turned (HEIGHT x WIDTH becomes WIDTH x HEIGHT)")
    ap.add_argument("--variant", action="append", required=True, help="name=tables:deadzone:lambda_scale[:trellis[:subsampling]]")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    held_out = split()[1]  # the 24 images no restorer or predictor trained on
    crops = centre_crops(held_out, *args.size, count=args.images, either_orientation=args.either_orientation)
    variants = [variant_codec(s) for s in args.variant]
    for codec in variants:
        ev.CODECS[codec.name] = codec
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, rgb in enumerate(crops):
            paths.append(Path(tmp) / f"heldout_{i:02d}.png")
            Image.fromarray(rgb).save(paths[-1])
        result = ev.evaluate(paths, ["jpeg", "avif", *[c.name for c in variants]])
    bd = result["bd_rate"]
    rows = [{"variant": spec, **margins(bd, c.name)} for spec, c in zip(args.variant, variants, strict=True)]
    for row in rows:
        print(row, file=sys.stderr)
    return emit({
        "data": f"the held-out training images: centre {args.size[0]}x{args.size[1]} crops"
        f"{' (portrait ones turned)' if args.either_orientation else ''} of {len(crops)} of the 24 held-out "
        "images (split seed 1234)",
        "avif": margins(bd, "avif"),
        "variants": rows,
        "wall_s": time.perf_counter() - started,
        "evaluation": {k: result[k] for k in ("date", "machine", "versions", "codecs", "qualities", "summary",
                                               "bd_rate")},
    }, args.json)


if __name__ == "__main__":
    main()
