"""Checkpoint -> single-file ONNX, with metadata and a torch-vs-onnxruntime parity check.

Usage: ``python -m export.conversion.export_onnx --ckpt runs/deblock_v1/best.pt --out models/deblock_v1.onnx``

Why these options (see shared/notes/ecosystem.md 2.8): torch 2.13 defaults to ``external_data=True``, which
writes a side ``.data`` file that breaks ``InferenceSession(bytes)``; we force one self-contained file. Dynamic
batch/height/width go through ``dynamic_shapes`` (dynamo exporter), and the opset is pinned.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from export.networks.deblocker import FlipEnsemble, build_model, count_params

OPSET = 18
INPUT_LAYOUT = "[N,4,H,W] Y,Cb,Cr /255 + quality/100"


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every Conv2d directly followed by BatchNorm2d inside an nn.Sequential (BlockCNN); no-op otherwise."""
    for mod in model.modules():
        if not isinstance(mod, nn.Sequential):
            continue
        keys = list(mod._modules.keys())
        for k1, k2 in itertools.pairwise(keys):
            conv, bn = mod._modules[k1], mod._modules[k2]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                mod._modules[k1] = torch.nn.utils.fusion.fuse_conv_bn_eval(conv.eval(), bn.eval())
                mod._modules[k2] = nn.Identity()
    return model


def export_program(
    model: nn.Module,
    example_args: tuple[torch.Tensor, ...],
    out: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes: tuple[dict[int, Any], ...],
    metadata: dict[str, str] | None = None,
    opset: int = OPSET,
) -> Path:
    """One self-contained ONNX file (no external data) with ``metadata`` in ``metadata_props``, checked."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        prog = torch.onnx.export(
            model.eval(),
            example_args,
            dynamo=True,
            external_data=False,
            input_names=input_names,
            output_names=output_names,
            opset_version=opset,
            dynamic_shapes=dynamic_shapes,
            optimize=True,
            verbose=False,
        )
    prog.save(str(out), external_data=False)
    proto = onnx.load(str(out))
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return out


def export_model(
    model: nn.Module,
    out: Path,
    metadata: dict[str, str] | None = None,
    sample_hw: tuple[int, int] = (64, 96),
    opset: int = OPSET,
) -> Path:
    """Export a deblocker (input ``x`` (N,4,H,W) -> output ``y``) to one ONNX file with dynamic N, H, W."""
    model = fold_batchnorm(model.eval())
    n, h, w = torch.export.Dim("N", min=1, max=1024), torch.export.Dim.AUTO, torch.export.Dim.AUTO
    x = torch.rand(1, 4, *sample_hw)
    return export_program(model, (x,), out, ["x"], ["y"], ({0: n, 2: h, 3: w},), metadata, opset)


def make_session(path: Path | str, threads: int = 2) -> ort.InferenceSession:
    """CPU onnxruntime session with a fixed intra-op thread count."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def parity_check(model: nn.Module, onnx_path: Path, shapes: tuple[tuple[int, int, int], ...] = ((1, 48, 64), (2, 40, 88))) -> float:
    """Max abs diff torch vs onnxruntime over random inputs of several (N, H, W); raises if >= 1e-4."""
    sess = make_session(onnx_path)
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    model = model.eval()
    for n, h, w in shapes:
        x = torch.rand(n, 4, h, w, generator=gen)
        with torch.no_grad():
            ref = model(x).numpy()
        got = sess.run(["y"], {"x": x.numpy()})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    assert worst < 1e-4, f"ONNX parity failed: max abs diff {worst:g}"
    return worst


def load_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Model in eval mode (from the checkpoint's ``model`` state and config) and the raw checkpoint dict."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(ck["config"]["model"])
    model.load_state_dict(ck["model"])
    return model.eval(), ck


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--flip-ensemble", action="store_true",
                    help="export the mean of the network on the image and its mirror image (2x the compute)")
    args = ap.parse_args()
    model, ck = load_checkpoint(args.ckpt)
    if args.flip_ensemble:
        model = FlipEnsemble(model).eval()  # export_model folds BatchNorm inside it too
    spec = ck["config"]["model"]
    meta = {
        "task": "deblock",
        "colour": "ycbcr-jfif",
        "input_layout": INPUT_LAYOUT,
        "pad_multiple": "8",
        "arch": json.dumps(spec, sort_keys=True),
        "params": str(count_params(model)),
        "training_iterations": str(ck["step"]),
        "config_name": ck["config"]["name"],
        "val_gain_rgb_db": f"{ck.get('val', {}).get('gain_rgb', float('nan')):.4f}",
        "ensemble": "hflip" if args.flip_ensemble else "none",
    }
    export_model(model, args.out, meta)
    diff = parity_check(model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), params {meta['params']}, "
          f"step {ck['step']}, parity max abs diff {diff:.3g}")


if __name__ == "__main__":
    main()
