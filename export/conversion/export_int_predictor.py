"""Integer predictor checkpoint -> ONNX graph of exact integer arithmetic in float32.

    python -m export.conversion.export_int_predictor --ckpt runs/predict_v2/best.pt --out runs/predict_v2.onnx

The graph takes ``x`` ``[N, 262]`` (the centred, integer-valued inputs of
:func:`export.networks.int_predictor.centred_inputs`, computed by the decoder's adapter; ``[N, 582]`` with
:func:`~export.networks.int_predictor.centred_guide`'s after them for a luma-guided network) and returns
``delta`` ``[N, 64]``, integer-valued offsets from the block's ``base``. Each layer is
``Floor(Gemm(a, 2^-s W, 2^-s B + 1/2))`` (``2^-s B`` alone when s <= 0; then ``Clip(0, 127)`` for hidden
layers): the weights and bias scaled by the layer's power of two, so every partial sum is an integer below
2^24 (:func:`~export.networks.int_predictor.accumulator_bound`, checked here, the rounding half included)
times that power of two, which float32 holds exactly: onnxruntime computes it exactly whatever it fuses or
reorders. Three operators per layer instead of MatMul, Add, Mul, Add, Floor (and Clip): on a front of a few
dozen blocks each node costs about as much as a sixth of the layer's product. The shifts are in the
metadata (``shifts``), so :func:`integer_layers` reads the integer layers back. The graph is built node by
node with ``onnx.helper`` rather than traced, so nothing but these operators can appear in it.

    python -m export.conversion.export_int_predictor --from-onnx old.onnx --out new.onnx  # same integers
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from export.networks.int_predictor import ACT_MAX, EXACT_LIMIT, INPUTS, IntPredictorNet, accumulator_bound

__all__ = ["export_int_predictor", "int_predictor_graph", "integer_layers"]


def int_predictor_graph(layers: list[tuple[np.ndarray, np.ndarray, int]], metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """The ONNX model of ``layers`` ((W int [out, in], B int [out], shift) each); refuses inexact ones."""
    bound = accumulator_bound(layers)
    if bound >= EXACT_LIMIT:
        msg = f"an accumulator can reach {bound}, not below 2^24: float32 would round it"
        raise ValueError(msg)
    nodes, inits, a = [], [], "x"
    for i, (w, b, shift) in enumerate(layers):
        last = i == len(layers) - 1
        scale = np.float32(2.0**-shift)
        inits += [
            numpy_helper.from_array(w.T.astype(np.float32) * scale, f"W{i}"),
            numpy_helper.from_array(b.astype(np.float32) * scale + np.float32(0.5 if shift > 0 else 0), f"B{i}"),
        ]
        nodes += [
            helper.make_node("Gemm", [a, f"W{i}", f"B{i}"], [f"g{i}"]),
            helper.make_node("Floor", [f"g{i}"], ["delta" if last else f"f{i}"]),
        ]
        if not last:
            nodes.append(helper.make_node("Clip", [f"f{i}", "zero", "act_max"], [f"a{i}"]))
            a = f"a{i}"
    inits += [
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
    declared = {
        "task": "predict",
        "arithmetic": "integer",
        "accumulator_bound": str(bound),
        "shifts": ",".join(str(shift) for _, _, shift in layers),
    }
    if layers[0][0].shape[1] > INPUTS:
        declared["guide"] = "luma"  # docs/FORMAT.md §5.3: the manifest entry of such a model says so too
    for key, value in {**declared, **(metadata or {})}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def integer_layers(model: onnx.ModelProto) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The integer layers ((W [out, in], B [out], shift) each, int64) of a graph :func:`int_predictor_graph`
    wrote: its scaled weights and biases with their shifts undone. Graphs of the exporter's first form
    (MatMul, Add, Mul by ``S{i}`` = 2^-s, Add 1/2, Floor: ``pred-2`` until 2026-12-03) are read too."""
    meta = {p.key: p.value for p in model.metadata_props}
    arrays = {init.name: numpy_helper.to_array(init).astype(np.float64) for init in model.graph.initializer}
    if meta.get("arithmetic") != "integer" or not ("shifts" in meta or "S0" in arrays):
        msg = "not an integer predictor graph of this exporter (its metadata says no integer arithmetic)"
        raise ValueError(msg)
    first_form = "shifts" not in meta
    if first_form:
        count = sum(name.startswith("S") and name[1:].isdigit() for name in arrays)
        shifts = [int(round(-np.log2(arrays[f"S{i}"]))) for i in range(count)]
    else:
        shifts = [int(v) for v in meta["shifts"].split(",")]
    layers = []
    for i, shift in enumerate(shifts):
        if first_form:
            w, b = arrays[f"W{i}"].T, arrays[f"B{i}"]
        else:
            w = arrays[f"W{i}"].T * 2.0**shift
            b = (arrays[f"B{i}"] - (0.5 if shift > 0 else 0)) * 2.0**shift
        if not (np.array_equal(w, np.rint(w)) and np.array_equal(b, np.rint(b))):
            msg = f"layer {i}'s weights are not integers times 2^-{shift}"
            raise ValueError(msg)
        layers.append((w.astype(np.int64), b.astype(np.int64), shift))
    return layers


def export_int_predictor(model: IntPredictorNet, out: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model``'s integer graph to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(int_predictor_graph(model.integer_layers(), metadata), str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", type=Path)
    source.add_argument("--from-onnx", type=Path, help="re-export an integer graph (same integers, same metadata)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.from_onnx:
        old = onnx.load(str(args.from_onnx))
        kept = {p.key: p.value for p in old.metadata_props if p.key not in ("accumulator_bound", "shifts")}
        onnx.save(int_predictor_graph(integer_layers(old), kept), str(args.out))
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) from {args.from_onnx}")
        return
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    spec = {k: v for k, v in ck["config"]["model"].items() if k != "arch"}
    model = IntPredictorNet(**spec)
    model.load_state_dict(ck["model"])
    export_int_predictor(model, args.out, {"step": str(ck["step"])})
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), step {ck['step']}")


if __name__ == "__main__":
    main()
