"""Speed of the packaged deblocking models through the public API, side by side on one machine.

Usage: ``python -m export.evaluation.bench_deblock --models dblk-3 dblk-4 --json results/deblock/bench_deblock.json``
(``--candidate runs/x.onnx`` adds an unshipped ONNX deblocker, measured through the same API).

``pillow_blockcnn.deblock()`` on a 768x512 RGB JPEG (the issue's reference size: >= 0.5 MP/s on 2 CPU threads),
colour conversion, padding and tiling included. The runs of the models are interleaved (A, B, A, B, ...) and
the median is reported, because the speed of a shared virtual machine drifts by 10% within minutes: measured
one after the other, two models would be compared across different machine states. The image is the bundled
sample scaled to 768x512 (speed does not depend on the content).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

import pillow_blockcnn
from export.evaluation.candidates import installed
from pillow_blockcnn import options, runtime
from pillow_blockcnn.runtime.machine import machine

SIZE = (768, 512)


def reference_jpeg(quality: int = 20) -> Image.Image:
    """The bundled sample scaled to 768x512 and saved as a 4:2:0 JPEG."""
    sample = resources.files("pillow_blockcnn") / "samples" / "parrots.png"
    with resources.as_file(sample) as path, Image.open(path) as im:
        scaled = im.convert("RGB").resize(SIZE, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    scaled.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    jpeg = Image.open(buf)
    jpeg.load()
    return jpeg


def bench(model_ids: list[str], threads: int, reps: int, provider: str = "CPUExecutionProvider"
          ) -> dict[str, dict[str, float]]:
    """Median and best seconds per ``deblock()`` call and MP/s for each model, runs interleaved."""
    image = reference_jpeg()
    saved = options.current()
    options.update(threads=threads, providers=[provider])
    runtime.clear_sessions()
    times: dict[str, list[float]] = {mid: [] for mid in model_ids}
    try:
        for mid in model_ids:  # session creation and first-run allocations are paid once, not per image
            pillow_blockcnn.deblock(image, model=mid)
        for _ in range(reps):
            for mid in model_ids:
                t = time.perf_counter()
                pillow_blockcnn.deblock(image, model=mid)
                times[mid].append(time.perf_counter() - t)
    finally:
        options.update(**saved)
        runtime.clear_sessions()
    mp = SIZE[0] * SIZE[1] / 1e6
    return {mid: {"median_s": float(np.median(ts)), "best_s": min(ts), "mp_per_s": mp / float(np.median(ts)),
                  "file_mb": round(len(runtime.model_bytes(mid)) / 1e6, 2)}
            for mid, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=[m.id for m in runtime.models("deblock")])
    ap.add_argument("--candidate", type=Path, action="append", default=[], help="an unshipped ONNX deblocker")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--provider", default="CPUExecutionProvider")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    res = {"date": date.today().isoformat(), "machine": f"{machine()}, {args.provider}, {args.threads} threads",
           "image": f"bundled sample scaled to {SIZE[0]}x{SIZE[1]}, JPEG q20 4:2:0", "reps": args.reps,
           "command": f"python -m export.evaluation.bench_deblock --models {' '.join(args.models)} "
                      f"{''.join(f'--candidate {c} ' for c in args.candidate)}--threads {args.threads} "
                      f"--provider {args.provider} --reps {args.reps} --json {args.json}",
           "models": {}}
    candidates = {str(path): ("deblock", path.read_bytes(), ["jpeg", "mse"]) for path in args.candidate}
    with installed(candidates):
        res["models"] = bench([*args.models, *candidates], args.threads, args.reps, args.provider)
    lines = [f"# deblock() speed, {res['image']}", "", (f"{res['date']}, {res['machine']}; median of {args.reps} "
             f"interleaved runs. Command: `{res['command']}`."), "",
             "| model | median s | best s | MP/s | file MB |", "|---|---|---|---|---|"]
    for mid, r in res["models"].items():
        lines.append(f"| `{mid}` | {r['median_s']:.3f} | {r['best_s']:.3f} | {r['mp_per_s']:.2f} | {r['file_mb']} |")
    md = "\n".join(lines) + "\n"
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2) + "\n")
    args.json.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
