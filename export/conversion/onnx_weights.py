"""A shipped deblocker's weights read back from its ONNX file, as a torch state dict.

The packaged models are what users run; their training checkpoints live in ``runs/`` and may be gone (only
float16 snapshots of some steps are committed). Reading the ONNX file recovers exactly the shipped network,
int8 layers included (their weights dequantised: ``(q - zero_point) * scale`` per output channel, the values
onnxruntime multiplies with), so a shipped model can seed a new run (``export.training.prune``) or serve as a
distillation teacher without its checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

_SUFFIXES = ("weight", "bias")


def _dequantize(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * values.ndim
    if scale.ndim:
        shape[axis] = -1
    return (values.astype(np.float64) - zero_point.astype(np.float64).reshape(shape)) * scale.astype(np.float64).reshape(shape)


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """``{parameter name: float32 tensor}`` for every ``*.weight`` / ``*.bias`` of the ONNX model at ``path``.

    Float initialisers are taken as they are; QDQ ones (``<name>_quantized`` with its ``_scale`` and ``_zero_point``,
    as onnxruntime's quantiser in ``export.conversion.quantize`` writes them) are dequantised along their channel axis (0 for Conv
    weights and biases, 1 for ConvTranspose weights, whose layout is (in, out, kh, kw))."""
    model = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    transposed = {n.input[1] for n in model.graph.node if n.op_type == "ConvTranspose"}
    transposed |= {n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"
                   and any(n.output[0] == m.input[1] for m in model.graph.node if m.op_type == "ConvTranspose")}
    out: dict[str, torch.Tensor] = {}
    for name, value in init.items():
        if name.endswith(_SUFFIXES):
            out[name] = torch.from_numpy(value.astype(np.float32))
        elif name.endswith("_quantized") and name[: -len("_quantized")].endswith(_SUFFIXES):
            base = name[: -len("_quantized")]
            # onnxruntime names a weight's parameters after the float name, a bias's after the quantised one
            key = name if name + "_scale" in init else base
            axis = 1 if name in transposed else 0
            real = _dequantize(value, init[key + "_scale"], init[key + "_zero_point"], axis)
            out[base] = torch.from_numpy(real.astype(np.float32))
    if not out:
        msg = f"{path}: no '*.weight' or '*.bias' initialisers; is it a deblocker exported by export.conversion?"
        raise ValueError(msg)
    return out
