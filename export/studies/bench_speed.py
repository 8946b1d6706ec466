"""Measure onnxruntime CPU speed of a (random-init) model config on a 768x512 input.

Usage: ``python -m export.studies.bench_speed --config export/configs/deblock/deblock_v1.json [--threads 2]
[--precision int8-partial]``, or ``--design 32,64,128:1,2,3:1,1`` (channels : encoder blocks : decoder blocks)
for a design with no config yet, or ``--onnx pillow_blockcnn/models/dblk-9.onnx`` for a shipped model; several
``--design``/``--onnx`` are timed in turns, in one process, so their ratios are comparable.

Sizes a network against the speed targets before training it. ``--precision`` times it as it would ship:
``float``, ``int8-partial`` (``export.conversion.quantize``'s default: the half-resolution layers float) or
``int8`` (everything); the int8 graphs are calibrated on random inputs, which changes the ranges but not the
work.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from export.conversion.export_onnx import export_model, make_session
from export.conversion.quantize import KEEP_FLOAT, quantize
from export.networks.deblocker import build_model, count_params

PRECISIONS = {"float": None, "int8-partial": KEEP_FLOAT, "int8": ()}


def export_design(spec: dict, out: Path, precision: str = "float") -> Path:
    """``spec`` with random weights as an ONNX file at ``out``, quantised as ``precision`` says."""
    torch.manual_seed(0)
    model = build_model(spec)
    for p in model.parameters():  # non-zero weights everywhere (the tail is zero-initialised)
        torch.nn.init.normal_(p, std=0.02)
    path = export_model(model, out.with_suffix(".float.onnx"))
    keep = PRECISIONS[precision]
    if keep is None:
        return path
    rng = np.random.default_rng(0)
    return quantize(path, out, [rng.random((2, 4, 64, 64), dtype=np.float32) for _ in range(2)], keep)


def time_session(path: Path, threads: int = 2, hw: tuple[int, int] = (512, 768), reps: int = 5) -> list[float]:
    """Seconds per run of the ONNX model at ``path`` on one ``hw`` image, ``reps`` runs after a warm-up."""
    sess = make_session(path, threads)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 4, *hw), dtype=np.float32)
    sess.run(None, {name: x})
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t)
    return times


def bench(spec: dict, threads: int = 2, hw: tuple[int, int] = (512, 768), reps: int = 5,
          precision: str = "float") -> dict[str, float]:
    """Export ``spec`` with random weights and return params, best/median seconds and MP/s for one image."""
    with tempfile.TemporaryDirectory() as d:
        times = time_session(export_design(spec, Path(d) / "m.onnx", precision), threads, hw, reps)
    mp = hw[0] * hw[1] / 1e6
    return {"params": count_params(build_model(spec)), "best_s": min(times), "median_s": float(np.median(times)),
            "mp_per_s": mp / float(np.median(times))}


def parse_design(text: str) -> dict:
    """``"32,64,128:1,2,3:1,1"`` -> a BlockUNet spec."""
    ch, enc, dec = (list(map(int, part.split(","))) for part in text.split(":"))
    return {"arch": "BlockUNet", "ch": ch, "enc_blocks": enc, "dec_blocks": dec}


def compare(designs: list[str], onnx_files: list[Path], precision: str, threads: int, rounds: int,
            hw: tuple[int, int] = (512, 768)) -> list[dict]:
    """Median seconds per ``hw`` image of each design and ONNX file, timed in ``rounds`` alternating turns."""
    with tempfile.TemporaryDirectory() as d:
        paths = {text: export_design(parse_design(text), Path(d) / f"d{i}.onnx", precision) for i, text in enumerate(designs)}
        paths |= {str(p): p for p in onnx_files}
        times: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(rounds):
            for k, p in paths.items():
                times[k] += time_session(p, threads, hw, reps=3)
    return [{"model": k, "precision": precision if k in designs else "as shipped", "median_s": float(np.median(v)),
             "macs_per_pixel": macs_per_pixel(parse_design(k)) if k in designs else None} for k, v in times.items()]


def macs_per_pixel(spec: dict) -> int:
    """Multiply-adds per input pixel of a BlockUNet spec (biases and activations not counted)."""
    (c1, c2, c3), enc, dec = spec["ch"], spec["enc_blocks"], spec["dec_blocks"]
    half, quarter, eighth = 1 / 4, 1 / 16, 1 / 64
    block = lambda c, area: 2 * c * c * 9 * area  # noqa: E731
    total = 16 * c1 * 9 * half + c1 * 12 * 9 * half  # head, tail
    total += (enc[0] + dec[1]) * block(c1, half) + (enc[1] + dec[0]) * block(c2, quarter) + enc[2] * block(c3, eighth)
    total += 2 * c1 * c2 * 4 * quarter + 2 * c2 * c3 * 4 * eighth + 256 * c3 * eighth  # down/up samplings, block_in
    return round(total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path)
    ap.add_argument("--design", action="append", default=[], help="channels:encoder blocks:decoder blocks")
    ap.add_argument("--onnx", action="append", type=Path, default=[])
    ap.add_argument("--precision", choices=sorted(PRECISIONS), default="float")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.config is not None:
        spec = json.loads(args.config.read_text())["model"]
        print(json.dumps({"model": spec, **bench(spec, args.threads, precision=args.precision)}))
    if args.design or args.onnx:
        for row in compare(args.design, args.onnx, args.precision, args.threads, args.rounds):
            print(json.dumps(row))


if __name__ == "__main__":
    main()
