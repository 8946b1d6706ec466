"""Compare deblocking ONNX models on the held-out *training* images, to choose between variants (checkpoints,
ensembles) without looking at the benchmarks.

Usage: ``python -m export.evaluation.validate_deblock runs/a.onnx runs/b.onnx --out results/validation/validation_x.json``

The colour protocol of ``export.evaluation.evaluate_deblock`` (Pillow JPEG 4:2:0, RGB out; Y-PSNR on MATLAB's BT.601 Y and
RGB-PSNR) at q10/20/30/40, on grid-aligned centre crops of the validation split of a training config (the
images ``export.training.train_deblocker`` validates on and never samples). Also writes ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from export.data.crops import jpeg_roundtrip, validation_crops
from export.evaluation.evaluate_deblock import QUALITIES, Restorer, onnx_restorer
from export.evaluation.metrics import psnr, rgb_to_y_matlab
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float
from pillow_blockcnn.runtime.machine import machine


def add_held_out_options(ap: argparse.ArgumentParser) -> None:
    """The options every held-out comparison takes: which split, how large the crops, threads, where to write."""
    ap.add_argument("--config", type=Path, default=Path("export/configs/deblock/deblock_v1.json"),
                    help="training config whose validation split is used")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)


def report(args: argparse.Namespace, n_images: int, command: str, **fields: Any) -> dict[str, Any]:
    """What was measured, where and how to rerun it (``command``: the module and its own arguments)."""
    return {"split": f"{args.config.name} validation split", "n_images": n_images, "crop": args.crop,
            "date": date.today().isoformat(), "machine": f"{machine()}, {args.threads} onnxruntime threads",
            "command": f"python -m {command} --threads {args.threads} --out {args.out}", **fields}


def write_report(out: Path, res: dict[str, Any], md: str) -> None:
    """``out`` (JSON) and ``out`` with ``.md``; the markdown is printed too."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(md)
    print(md)


def score(images: list[np.ndarray], restore: Restorer) -> dict[str, float]:
    """Mean Y and RGB gains over JPEG per quality and over all of them; seconds spent restoring."""
    out: dict[str, float] = {}
    spent = 0.0
    for q in QUALITIES:
        gy, grgb = [], []
        for rgb in images:
            jpg = jpeg_roundtrip(rgb, q)
            t = time.perf_counter()
            res = to_uint8(ycbcr_to_rgb_float(restore(rgb_to_ycbcr_float(jpg), q)))
            spent += time.perf_counter() - t
            y = rgb_to_y_matlab(rgb)
            gy.append(psnr(rgb_to_y_matlab(res), y) - psnr(rgb_to_y_matlab(jpg), y))
            grgb.append(psnr(res, rgb) - psnr(jpg, rgb))
        out[f"q{q}_gain_y"], out[f"q{q}_gain_rgb"] = float(np.mean(gy)), float(np.mean(grgb))
    out["gain_y"] = float(np.mean([out[f"q{q}_gain_y"] for q in QUALITIES]))
    out["gain_rgb"] = float(np.mean([out[f"q{q}_gain_rgb"] for q in QUALITIES]))
    out["restore_s"] = spent
    return out


def markdown(res: dict) -> str:
    lines = [f"# Deblocking models on held-out training images ({res['split']})", "",
             (f"{res['n_images']} images, centre crops of at most {res['crop']} px, Pillow JPEG 4:2:0 at "
              f"q10/20/30/40; {res['date']}, {res['machine']}. Command: `{res['command']}`."), "",
             "| model | gain Y (dB) | gain RGB (dB) | restore time (s) |", "|---|---|---|---|"]
    for name, s in res["models"].items():
        lines.append(f"| `{name}` | {s['gain_y']:+.3f} | {s['gain_rgb']:+.3f} | {s['restore_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", type=Path, nargs="+")
    add_held_out_options(ap)
    args = ap.parse_args()
    images = validation_crops(args.config, args.crop)
    res = report(args, len(images), f"export.evaluation.validate_deblock {' '.join(map(str, args.models))}",
                 models={str(m): score(images, onnx_restorer(m, args.threads)) for m in args.models})
    write_report(args.out, res, markdown(res))


if __name__ == "__main__":
    main()
