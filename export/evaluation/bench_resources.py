"""Peak memory and time of encoding and decoding a large image, each in a fresh process.

    python -m export.evaluation.bench_resources --megapixels 24 --json results/resources/resources.json

The image is the bundled sample tiled up to the requested size (real photo
content, so the coded size is realistic). Each step runs in its own Python
process, and its peak resident memory (``ru_maxrss``) is that process's whole
footprint: interpreter, numpy, Pillow, onnxruntime and the image.

The peak of a decode varies between runs of the same file by tens of megabytes (glibc's heap fragments
differently as the threads' allocations interleave), so ``--decodes N`` decodes it in N fresh processes
and reports each peak and the largest.

``--malloc-mmap-threshold BYTES`` runs the steps with glibc's ``MALLOC_MMAP_THRESHOLD_`` fixed (Linux): by
default malloc raises its threshold to the size of each large block freed, and the allocations below it then
come from a heap that fragments and keeps its pages; the option shows what that costs a process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from export.evaluation.report import emit, machine

_STEP = r"""
import resource, sys, time
import numpy as np
from PIL import Image
import pillow_blockcnn
Image.MAX_IMAGE_PIXELS = None
step, src, dst, quality = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
start = time.perf_counter()
with Image.open(src) as im:
    if step == "encode":
        im.save(dst, quality=quality)
    else:
        im.load()
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def _make_image(megapixels: float, path: Path) -> tuple[int, int]:
    from importlib import resources

    import numpy as np
    from PIL import Image

    with resources.as_file(resources.files("pillow_blockcnn") / "samples" / "parrots.png") as sample:
        tile = np.asarray(Image.open(sample).convert("RGB"))
    width = int((megapixels * 1e6 * 3 / 2) ** 0.5) // 8 * 8
    height = int(megapixels * 1e6 / width) // 8 * 8
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]), 1)
    big = np.tile(tile, reps)[:height, :width]
    Image.fromarray(big).save(path, compress_level=1)
    return width, height


def _run_step(step: str, src: Path, dst: Path, quality: int, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _STEP, step, str(src), str(dst), str(quality)], capture_output=True, text=True,
        check=True, env=env,
    )
    elapsed, rss = map(float, out.stdout.split())
    return {"seconds": round(elapsed, 2), "peak_rss_mb": round(rss, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--quality", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--decodes", type=int, default=1, help="decode the file in this many fresh processes")
    parser.add_argument("--malloc-mmap-threshold", type=int, default=None, metavar="BYTES",
                        help="run the steps with MALLOC_MMAP_THRESHOLD_=BYTES (glibc)")
    args = parser.parse_args(argv)
    env = None
    if args.malloc_mmap_threshold is not None:
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(args.malloc_mmap_threshold)}
    with tempfile.TemporaryDirectory() as tmp:
        png, bcnn = Path(tmp) / "big.png", Path(tmp) / "big.bcnn"
        width, height = _make_image(args.megapixels, png)
        result = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "image": f"{width}x{height} ({width * height / 1e6:.1f} MP), the bundled sample tiled",
            "quality": args.quality,
            "encode": _run_step("encode", png, bcnn, args.quality, env),
            "file_bytes": bcnn.stat().st_size,
        }
        decodes = [_run_step("decode", bcnn, bcnn, args.quality, env) for _ in range(max(1, args.decodes))]
        result["decode"] = max(decodes, key=lambda d: d["peak_rss_mb"])  # the worst run: what a limit must allow
        if len(decodes) > 1:
            result["decode_runs"] = decodes
        if env is not None:
            result["malloc_mmap_threshold"] = args.malloc_mmap_threshold
        from pillow_blockcnn import runtime

        result["deblocking_model"] = (runtime.default_model("deblock") or runtime.ModelInfo("none", "", "", "")).id
    return emit(result, args.json)


if __name__ == "__main__":
    main()
