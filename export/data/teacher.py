"""A teacher's restorations of a data pack's training crops: the targets of a distilled run.

    python -m export.data.teacher --pack runs/bcnn_pack_balanced.npz --model pillow_blockcnn/models/dblk-9.onnx \\
        --out runs/bcnn_teacher_dblk-9.npz

Why a file of its own: the teacher is the shipped ONNX model, run once by onnxruntime exactly as a user's
decode runs it (its int8 layers included), instead of a second network in every training step (which would
double the step's cost on two cores). The restorations are stored as the decoder would hand them to a user,
RGB uint8 ``[N, S, S, 3]`` under ``teacher``, index for index with the pack's ``decoded``, so the sampler
rotates and flips them with the crop they belong to. The file also records the teacher's sha256.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from export.conversion.export_onnx import make_session
from export.data.bcnn_pack import load
from export.data.crops import make_input
from pillow_blockcnn.runtime.jfif import rgb_to_ycbcr_float, to_uint8, ycbcr_to_rgb_float


def restore(model: Path, decoded: np.ndarray, quality: np.ndarray, batch: int = 16, threads: int = 2) -> np.ndarray:
    """``model``'s restorations (RGB uint8) of the equally sized RGB uint8 crops ``decoded`` at ``quality``."""
    session = make_session(model, threads)
    name = session.get_inputs()[0].name
    out = np.empty_like(decoded)
    for i in range(0, len(decoded), batch):
        x = np.stack([make_input(rgb_to_ycbcr_float(d), int(q)) for d, q in zip(decoded[i : i + batch], quality[i : i + batch])])
        y = session.run(None, {name: x})[0]
        out[i : i + batch] = [to_uint8(ycbcr_to_rgb_float(v.transpose(1, 2, 0) * 255.0)) for v in y]
    return out


def load_targets(path: Path, n: int) -> np.ndarray:
    """The ``teacher`` array of ``path``, checked to match a pack of ``n`` crops."""
    with np.load(path) as data:
        teacher = data["teacher"]
    if len(teacher) != n:
        msg = f"{path} holds {len(teacher)} teacher crops for a pack of {n}: rebuild it with export.data.teacher"
        raise SystemExit(msg)
    return teacher


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="the teacher: a deblocker ONNX file")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    pack = load(args.pack)
    teacher = restore(args.model, pack["decoded"], pack["quality"], threads=args.threads)
    sha = hashlib.sha256(args.model.read_bytes()).hexdigest()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, teacher=teacher, model_sha256=np.array(sha))
    print(f"wrote {args.out}: {len(teacher)} restorations by {args.model.name} ({sha[:12]})")


if __name__ == "__main__":
    main()
