"""Encode and decode time of this checkout against an older one, interleaved in one run on one machine.

    git worktree add /tmp/bcnn-7bfee33 7bfee33
    python -m export.evaluation.bench_versions --old /tmp/bcnn-7bfee33 --json results/speed/versions_7bfee33.json

Speed targets are ratios (machines here differ by 2x between days), so both versions run here, in fresh
processes that alternate (old, new, old, new, ...), each timing its fastest of ``--reps`` in-process
repetitions of: the default save at ``--quality``, and ``Image.open(...).load()`` with and without
deblocking. The image is a centre crop of the first training image at least ``--size`` large
(``../shared/data/train``), so no benchmark image is involved.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from export.data.crops import centre_crops
from export.evaluation.report import emit, machine

_STEP = r"""
import io, json, sys, time
sys.path.insert(0, sys.argv[1])
from PIL import Image
import pillow_blockcnn
Image.MAX_IMAGE_PIXELS = None
src, quality, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
restorer = sys.argv[5] if len(sys.argv) > 5 else ""  # a decoder-chosen restorer's id, or the file's
im = Image.open(src); im.load()
def best(fn):
    t = float("inf")
    for _ in range(reps):
        s = time.perf_counter(); out = fn(); t = min(t, time.perf_counter() - s)
    return t, out
def save():
    b = io.BytesIO(); im.save(b, "BCNN", quality=quality); return b.getvalue()
encode_s, data = best(save)
def load(deblock):
    pillow_blockcnn.options.update(deblock=deblock) if hasattr(pillow_blockcnn.options, "update") else None
    with Image.open(io.BytesIO(data)) as x:
        x.load()
decode_s, _ = best(lambda: load(restorer or True))
decode_nodeblock_s, _ = best(lambda: load(False))
pillow_blockcnn.options.update(deblock=True) if hasattr(pillow_blockcnn.options, "update") else None
def thumb():
    with Image.open(io.BytesIO(data)) as x:
        x.thumbnail((256, 256))
thumbnail_s, _ = best(thumb)
print(json.dumps({"encode_s": encode_s, "decode_s": decode_s, "decode_no_deblock_s": decode_nodeblock_s,
                  "thumbnail_s": thumbnail_s,
                  "bytes": len(data), "version": pillow_blockcnn.__version__, "path": pillow_blockcnn.__file__}))
"""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="a checkout (git worktree) of the older version")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    parser.add_argument("--size", type=int, nargs=2, default=[512, 768], metavar=("H", "W"))
    parser.add_argument(
        "--tile-to", type=int, nargs=2, default=None, metavar=("H", "W"),
        help="mirror-tile the crop up to this size (e.g. 3000 4000: a 12-megapixel photo's size and coding load)",
    )
    parser.add_argument("--quality", type=int, default=30)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--new-deblock", nargs="*", default=[], metavar="MODEL_ID",
                        help="also time this checkout decoding with these restorers (options.update(deblock=ID))")
    args = parser.parse_args(argv)
    new = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "image.png"
        found = centre_crops(sorted(args.data.glob("*.png")), *args.size)
        if not found:
            msg = f"no training image of at least {args.size[1]}x{args.size[0]} in {args.data}"
            raise SystemExit(msg)
        pixels = found[0]
        if args.tile_to is not None:
            h, w = args.tile_to
            pixels = np.pad(pixels, ((0, max(0, h - pixels.shape[0])), (0, max(0, w - pixels.shape[1])), (0, 0)), mode="symmetric")[:h, :w]
        Image.fromarray(np.ascontiguousarray(pixels)).save(src)
        variants = [("old", args.old.resolve(), ""), ("new", new, "")]
        variants += [(f"new_deblock_{r}", new, r) for r in args.new_deblock]
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
        for _ in range(args.rounds):
            for name, root, restorer in variants:
                out = subprocess.run(
                    [sys.executable, "-c", _STEP, str(root), str(src), str(args.quality), str(args.reps), restorer],
                    capture_output=True, text=True, check=True, cwd=root,
                )
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = ("encode_s", "decode_s", "decode_no_deblock_s", "thumbnail_s")
    best = {name: {k: min(r[k] for r in rs) for k in keys} | {"bytes": rs[0]["bytes"]} for name, rs in runs.items()}
    ratios = {f"{k}_{name}_over_old": best[name][k] / best["old"][k]
              for name in runs if name != "old" for k in keys}
    size = f"{args.size[1]}x{args.size[0]}" + (f" mirror-tiled to {args.tile_to[1]}x{args.tile_to[0]}" if args.tile_to else "")
    return emit({"machine": machine(), "old": str(args.old), "image": f"{args.data} centre crop {size}",
                 "quality": args.quality, "best": best, "ratios": ratios, "runs": runs}, args.json)


if __name__ == "__main__":
    main()
