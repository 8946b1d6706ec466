"""Block predictor checkpoint -> single-file ONNX with a torch-vs-onnxruntime parity check.

    python -m export.conversion.export_predictor --ckpt runs/predict_v1/best.pt --out pillow_blockcnn/models/pred-1.onnx

Same export choices as the deblocker (``export/conversion/export_onnx.py``): one self-contained
file (``external_data=False``) that loads from bytes, a dynamic batch dimension,
a pinned opset. Inputs ``context`` [N, 24, 24] and ``info`` [N, 6], output ``block`` [N, 8, 8].
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from export.conversion.export_onnx import export_program
from export.networks.predictor import INFO, BlockPredictorNet


def export_predictor(model: BlockPredictorNet, out: Path, metadata: dict[str, str] | None = None) -> Path:
    context, info = torch.rand(4, 24, 24), torch.rand(4, INFO)
    n = torch.export.Dim("N", min=1, max=1 << 20)
    return export_program(model, (context, info), out, ["context", "info"], ["block"], ({0: n}, {0: n}), metadata)


def parity(model: BlockPredictorNet, path: Path) -> float:
    """Max abs difference (pixel units) between torch and onnxruntime on random inputs of two batch sizes."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for n in (1, 37):
        context = torch.rand(n, 24, 24, generator=gen)
        info = (torch.rand(n, INFO, generator=gen) > 0.3).float()
        with torch.no_grad():
            expected = model.eval()(context, info).numpy()
        (got,) = session.run(["block"], {"context": context.numpy(), "info": info.numpy()})
        worst = max(worst, float(np.abs(expected - got).max()))
    if worst > 1e-3:
        msg = f"ONNX parity failed: max abs diff {worst:g} (pixel units)"
        raise AssertionError(msg)
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    model = BlockPredictorNet(**ck["config"]["model"])
    model.load_state_dict(ck["model"])
    meta = {
        "task": "predict",
        "arch": json.dumps({"arch": "BlockPredictorNet", **ck["config"]["model"]}, sort_keys=True),
        "params": str(sum(p.numel() for p in model.parameters())),
        "training_iterations": str(ck["step"]),
        "config_name": ck["config"]["name"],
        "val": json.dumps(ck.get("val", {})),
    }
    export_predictor(model, args.out, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), step {ck['step']}, parity {parity(model, args.out):.3g}")


if __name__ == "__main__":
    main()
