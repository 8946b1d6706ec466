"""Check that a refactoring changed no file bytes and no decoded pixels: encode and decode the same images with
two checkouts of the package, each in its own process, and compare.

    git worktree add /tmp/v01 318722e
    python -m export.studies.same_output --old /tmp/v01 --json results/studies/same_output_318722e.json

Images are crops of the bundled sample in every stored mode; options cover qualities, subsamplings, the JPEG
and default table sets, prediction on and off, and deblocking recommended or not; each file is decoded with and without
deblocking. Every option is passed explicitly, so a changed default shows up as a difference only where a
caller relied on it (a default is checked by the "defaults" case).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CASES: list[tuple[str, str, dict[str, object]]] = [
    ("defaults", "RGB", {}),
    ("rgb-q5-plain-jpeg", "RGB", {"quality": 5, "predict": False, "deblock": False, "tables": "jpeg"}),
    ("rgb-q50-predict", "RGB", {"quality": 50, "predict": True, "deblock": False}),
    ("rgb-q20-deblock", "RGB", {"quality": 20, "predict": False, "deblock": True}),
    ("rgb-q30-444", "RGB", {"quality": 30, "subsampling": "4:4:4"}),
    ("rgb-q60-422-jpeg", "RGB", {"quality": 60, "subsampling": "4:2:2", "tables": "jpeg"}),
    ("gray-q40", "L", {"quality": 40}),
    ("rgba-q70", "RGBA", {"quality": 70}),
    ("rgb-q95-auto", "RGB", {"quality": 95}),
]

#: Runs inside each checkout's process: prints one JSON object per case.
WORKER = r"""
import hashlib, io, json, sys
from importlib import resources
import numpy as np
from PIL import Image
import pillow_blockcnn
cases = json.loads(sys.argv[1])
with resources.as_file(resources.files("pillow_blockcnn") / "samples" / "parrots.png") as path, Image.open(path) as im:
    base = im.convert("RGB").crop((37, 21, 37 + 203, 21 + 141))
out = {}
for name, mode, params in cases:
    src = base.convert(mode)
    if mode == "RGBA":
        alpha = np.linspace(0, 255, src.width * src.height).astype(np.uint8).reshape(src.height, src.width)
        src.putalpha(Image.fromarray(alpha, "L"))
    buf = io.BytesIO()
    src.save(buf, "BCNN", **params)
    data = buf.getvalue()
    decoded = {}
    for deblock in (True, False):
        pillow_blockcnn.register_bcnn_opener(deblock=deblock)
        with Image.open(io.BytesIO(data)) as im:
            decoded[str(deblock)] = hashlib.sha256(np.asarray(im).tobytes()).hexdigest()
    out[name] = {"file_sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "pixels_sha256": decoded}
print(json.dumps(out))
"""


def run(checkout: Path) -> dict[str, object]:
    """The results of :data:`WORKER` with ``checkout``'s package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(CASES)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="checkout of the version to compare against")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parents[2], help="default: this tree")
    parser.add_argument("--json", type=Path, help="write the comparison here")
    args = parser.parse_args(argv)
    old, new = run(args.old), run(args.new)
    differ = sorted(name for name in old if old[name] != new.get(name))
    report = {
        "old": str(args.old),
        "old_commit": _commit(args.old),
        "new_commit": _commit(args.new),
        "cases": len(CASES),
        "differ": differ,
        "results": {"old": old, "new": new},
    }
    for name in sorted(old):
        print(f"{name:22s} {'same' if name not in differ else 'DIFFERENT'}  {old[name]['bytes']} bytes")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if differ else 0


def _commit(checkout: Path) -> str:
    proc = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain"], capture_output=True, text=True)
    return proc.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    sys.exit(main())
