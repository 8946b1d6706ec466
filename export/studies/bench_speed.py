"""Measure onnxruntime CPU speed of a (random-init) model config on a 768x512 input.

Usage: ``python -m export.studies.bench_speed --config export/configs/deblock/deblock_v1.json [--threads 2]``
Sizes the shipped network against the target (>= 0.5 MP/s on 2 cores for a 768x512 RGB image).
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
from export.networks.deblocker import build_model, count_params


def bench(spec: dict, threads: int = 2, hw: tuple[int, int] = (512, 768), reps: int = 5) -> dict[str, float]:
    """Export ``spec`` with random weights and return params, best/median seconds and MP/s for one image."""
    torch.manual_seed(0)
    model = build_model(spec)
    for p in model.parameters():  # non-zero weights everywhere (the tail is zero-initialised)
        torch.nn.init.normal_(p, std=0.02)
    with tempfile.TemporaryDirectory() as d:
        path = export_model(model, Path(d) / "m.onnx")
        sess = make_session(path, threads)
        x = np.random.default_rng(0).random((1, 4, *hw), dtype=np.float32)
        sess.run(["y"], {"x": x})
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            sess.run(["y"], {"x": x})
            times.append(time.perf_counter() - t)
    mp = hw[0] * hw[1] / 1e6
    return {"params": count_params(model), "best_s": min(times), "median_s": float(np.median(times)),
            "mp_per_s": mp / float(np.median(times))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    spec = json.loads(args.config.read_text())["model"]
    print(json.dumps({"model": spec, **bench(spec, args.threads)}))


if __name__ == "__main__":
    main()
