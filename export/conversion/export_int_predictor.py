"""Integer predictor checkpoint -> ONNX graph of exact integer arithmetic in float32.

    python -m export.conversion.export_int_predictor --ckpt runs/predict_v2/best.pt --out runs/predict_v2.onnx

The graph takes ``x`` ``[N, 262]`` (the centred, integer-valued inputs of
:func:`export.networks.int_predictor.centred_inputs`, computed by the decoder's adapter; ``[N, 582]`` with
:func:`~export.networks.int_predictor.centred_guide`'s after them for a luma-guided network) and returns
``delta`` ``[N, 64]``, integer-valued offsets from the block's ``base``. Each layer is
``Floor((MatMul(a, W) + B) * 2^-s + 0.5)`` (then ``Clip(0, 127)`` for hidden layers): only integers and
powers of two, every sum below 2^24 (:func:`~export.networks.int_predictor.accumulator_bound`, checked here),
so onnxruntime computes it exactly whatever it fuses or reorders. It is built node by node with
``onnx.helper`` rather than traced, so nothing but these operators can appear in it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from export.networks.int_predictor import ACT_MAX, EXACT_LIMIT, INPUTS, IntPredictorNet, accumulator_bound

__all__ = ["int_predictor_graph", "export_int_predictor"]


def int_predictor_graph(layers: list[tuple[np.ndarray, np.ndarray, int]], metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """The ONNX model of ``layers`` ((W int [out, in], B int [out], shift) each); refuses inexact ones."""
    bound = accumulator_bound(layers)
    if bound >= EXACT_LIMIT:
        msg = f"an accumulator can reach {bound}, not below 2^24: float32 would round it"
        raise ValueError(msg)
    nodes, inits, a = [], [], "x"
    for i, (w, b, shift) in enumerate(layers):
        last = i == len(layers) - 1
        inits += [
            numpy_helper.from_array(w.T.astype(np.float32), f"W{i}"),
            numpy_helper.from_array(b.astype(np.float32), f"B{i}"),
            numpy_helper.from_array(np.array(2.0**-shift, dtype=np.float32), f"S{i}"),
        ]
        nodes += [
            helper.make_node("MatMul", [a, f"W{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"B{i}"], [f"acc{i}"]),
            helper.make_node("Mul", [f"acc{i}", f"S{i}"], [f"scaled{i}"]),
            helper.make_node("Add", [f"scaled{i}", "half"], [f"r{i}"]),
            helper.make_node("Floor", [f"r{i}"], ["delta" if last else f"f{i}"]),
        ]
        if not last:
            nodes.append(helper.make_node("Clip", [f"f{i}", "zero", "act_max"], [f"a{i}"]))
            a = f"a{i}"
    inits += [
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(np.array(float(ACT_MAX), dtype=np.float32), "act_max"),
    ]
    graph = helper.make_graph(
        nodes,
        "int_predictor",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", int(layers[0][0].shape[1])])],
        [helper.make_tensor_value_info("delta", TensorProto.FLOAT, ["N", 64])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pillow-blockcnn")
    model.ir_version = 8
    declared = {"task": "predict", "arithmetic": "integer", "accumulator_bound": str(bound)}
    if layers[0][0].shape[1] > INPUTS:
        declared["guide"] = "luma"  # docs/FORMAT.md §5.3: the manifest entry of such a model says so too
    for key, value in {**declared, **(metadata or {})}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def export_int_predictor(model: IntPredictorNet, out: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model``'s integer graph to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(int_predictor_graph(model.integer_layers(), metadata), str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    spec = {k: v for k, v in ck["config"]["model"].items() if k != "arch"}
    model = IntPredictorNet(**spec)
    model.load_state_dict(ck["model"])
    export_int_predictor(model, args.out, {"step": str(ck["step"])})
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), step {ck['step']}")


if __name__ == "__main__":
    main()
